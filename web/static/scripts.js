// Standard scripts on the agent page: panel grouped by scenario, filter as you type,
// placeholders filled in a small form (remembered for the current chat), one-click copy
// through search.js's `button.copy` handler, copy events, personal scripts. No dependencies.
(function () {
  "use strict";
  var CHANNEL_KEY = "kbcoach.channel";
  var PH = /\{([^{}\s]{1,32})\}/g;
  var panel = document.getElementById("scripts-panel");
  var pane = document.getElementById("pane");
  var csrf = (document.querySelector("meta[name=csrf-token]") || {}).content || "";
  var shared = {}; // id -> payload
  var mine = []; // personal payloads
  var current = null; // payload shown in the pane

  var el = window.kbcoach.el; // from search.js, loaded first
  var loadValues = window.kbcoach.loadValues;
  var saveValues = window.kbcoach.saveValues;
  function channel() {
    var sel = document.getElementById("scripts-channel");
    return sel ? sel.value : "";
  }
  function api(method, url, body) {
    var opts = { method: method, headers: { Accept: "application/json" } };
    if (method !== "GET") { opts.headers["X-CSRFToken"] = csrf; }
    if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    return fetch(url, opts).then(function (r) {
      return r.json().catch(function () { return { ok: false, error: "服务器返回了无法识别的内容", status: r.status }; });
    });
  }

  // -- rendering a script: the same rules as scripts_lib.render -------------------

  function parts(s, values) {
    var names = {};
    s.placeholders.forEach(function (p) { names[p.name] = p.prompt; });
    var out = [];
    var pos = 0;
    s.text.replace(PH, function (m, name, at) {
      if (!(name in names)) return m;
      if (at > pos) out.push({ kind: "text", text: s.text.slice(pos, at) });
      var v = (values[name] || "").trim();
      out.push(v ? { kind: "value", text: v, name: name } : { kind: "missing", text: "【" + names[name] + "】", name: name });
      pos = at + m.length;
      return m;
    });
    if (pos < s.text.length) out.push({ kind: "text", text: s.text.slice(pos) });
    return out;
  }

  function showScript(s, opts) {
    opts = opts || {};
    current = s;
    markOpen();
    var values = loadValues();
    pane.textContent = "";
    delete pane.dataset.articleId;
    var view = el("div", "script-view"); view.dataset.scriptId = String(s.id); view.dataset.origin = s.origin;
    if (!opts.bare) { // the script page has its own heading
      view.appendChild(el("h2", "pane-title", s.title));
      var meta = el("p", "meta");
      meta.appendChild(el("span", "badge script", s.scenario_title || "话术"));
      if (s.shortcut) meta.appendChild(el("kbd", null, s.shortcut));
      s.tags.forEach(function (t) { meta.appendChild(el("span", "tag", t)); });
      if (s.url) { var a = el("a", "open-full", "打开话术页"); a.href = s.url; meta.appendChild(a); }
      view.appendChild(meta);
    }

    var inputs = [];
    if (s.placeholders.length) {
      var form = el("form", "fields"); form.setAttribute("aria-label", "填写占位内容");
      s.placeholders.forEach(function (p, i) {
        var id = "ph-" + i;
        var label = el("label", null, p.name); label.htmlFor = id;
        var input = el("input"); input.id = id; input.name = p.name; input.type = "text";
        input.placeholder = p.prompt; input.maxLength = 500; input.autocomplete = "off";
        input.value = values[p.name] || "";
        input.addEventListener("input", function () {
          values = loadValues(); values[p.name] = input.value; saveValues(values); refresh();
        });
        form.appendChild(label); form.appendChild(input); inputs.push(input);
      });
      form.addEventListener("submit", function (ev) { ev.preventDefault(); });
      // Enter moves to the next empty field, and copies once none is left
      // (Ctrl+Enter copies from anywhere in the pane: see the document handler).
      form.addEventListener("keydown", function (ev) {
        if (ev.key !== "Enter" || ev.ctrlKey || ev.metaKey) return;
        ev.preventDefault();
        var empties = inputs.filter(function (i) { return !i.value.trim(); });
        if (!empties.length) { copyBtn.click(); return; }
        var here = inputs.indexOf(ev.target);
        var after = empties.filter(function (i) { return inputs.indexOf(i) > here; })[0];
        (after || empties[0]).focus();
      });
      view.appendChild(form);
    }
    var preview = el("p", "script-preview"); preview.id = "script-preview";
    view.appendChild(preview);
    var actions = el("div", "script-actions");
    var copyBtn = el("button", "copy", "复制"); copyBtn.type = "button";
    copyBtn.dataset.text = s.text;
    copyBtn.title = "Ctrl+Enter";
    var status = el("span", "fill-status"); status.setAttribute("aria-live", "polite");
    actions.appendChild(copyBtn); actions.appendChild(status);
    if (s.origin === "personal") {
      var edit = el("button", "small", "编辑"); edit.type = "button";
      edit.addEventListener("click", function () { showEditor(s); });
      var del = el("button", "small", "删除"); del.type = "button";
      del.addEventListener("click", function () { removeMine(s); });
      actions.appendChild(edit); actions.appendChild(del);
    }
    view.appendChild(actions);
    pane.appendChild(view);

    function refresh() {
      values = loadValues();
      var ps = parts(s, values);
      preview.textContent = "";
      ps.forEach(function (p) {
        if (p.kind === "text") { preview.appendChild(document.createTextNode(p.text)); return; }
        var span = el("span", p.kind === "missing" ? "ph-missing" : "ph-value", p.text);
        span.dataset.placeholder = p.name; preview.appendChild(span);
      });
      var missing = ps.filter(function (p) { return p.kind === "missing"; }).map(function (p) { return p.name; });
      missing = missing.filter(function (n, i) { return missing.indexOf(n) === i; });
      inputs.forEach(function (i) { i.classList.toggle("empty-value", !i.value.trim()); });
      var text = ps.map(function (p) { return p.text; }).join("").trim();
      copyBtn.dataset.filled = missing.length ? "" : text;
      copyBtn.dataset.missing = missing.join(",");
      status.classList.toggle("warn", missing.length > 0);
      status.textContent = missing.length ? "还需填写：" + missing.join("、") : "可复制（Ctrl+Enter）";
    }
    // Runs before search.js's document-level copy handler: refuse to copy a half-filled text.
    copyBtn.addEventListener("click", function (ev) {
      refresh();
      if (copyBtn.dataset.missing) {
        ev.stopPropagation();
        status.textContent = "请先填写：" + copyBtn.dataset.missing.split(",").join("、");
        var first = inputs.filter(function (i) { return !i.value.trim(); })[0];
        if (first) first.focus();
        return;
      }
      if (s.origin !== "personal") recordUse(s);
    });
    refresh();
    if (opts.focus) {
      var empty = inputs.filter(function (i) { return !i.value.trim(); })[0];
      (empty || copyBtn).focus();
    }
    return view;
  }

  function recordUse(s) {
    var ch = channel();
    if (!ch && s.channels.length === 1) ch = s.channels[0];
    api("POST", "/api/v1/scripts/" + encodeURIComponent(s.id) + "/used", ch ? { channel: ch } : {})
      .catch(function () { /* statistics only: never block the agent */ });
  }

  function openScript(id, opts) {
    if (shared[id]) return Promise.resolve(showScript(shared[id], opts));
    return api("GET", "/api/v1/scripts/" + encodeURIComponent(id)).then(function (data) {
      if (!data.ok) { pane.textContent = data.error; return null; }
      shared[id] = data.script;
      return showScript(data.script, opts);
    });
  }
  function openMine(id, opts) {
    var s = mine.filter(function (m) { return String(m.id) === String(id); })[0];
    if (s) return Promise.resolve(showScript(s, opts));
    return loadMine().then(function () {
      var found = mine.filter(function (m) { return String(m.id) === String(id); })[0];
      return found ? showScript(found, opts) : null;
    });
  }
  // Used by search.js for script hits and for a shortcut typed in the search box.
  window.KbScripts = {
    openHit: function (hit, opts) {
      if (hit.origin === "personal") return openMine(hit.id, opts);
      if (hit.placeholders) { shared[hit.id] = hit; return Promise.resolve(showScript(hit, opts)); }
      return openScript(hit.id, opts);
    },
    open: openScript,
    // For the draft check (desk.js): a shared script's payload (null when not allowed
    // or gone) and its text in parts, placeholders filled from the chat's values.
    get: function (id) {
      if (shared[id]) return Promise.resolve(shared[id]);
      return api("GET", "/api/v1/scripts/" + encodeURIComponent(id))
        .then(function (data) { return data.ok ? (shared[id] = data.script) : null; })
        .catch(function () { return null; });
    },
    parts: parts
  };

  // -- personal scripts -------------------------------------------------------------

  function loadMine() {
    return api("GET", "/api/v1/my/scripts").then(function (data) {
      if (!data.ok) return;
      mine = data.scripts;
      renderMine();
    });
  }

  function renderMine() {
    var ul = document.getElementById("my-scripts");
    if (!ul) return;
    ul.textContent = "";
    if (!mine.length) { ul.appendChild(el("li", "empty", "还没有个人话术，点击“新建个人话术”添加常用说法。")); }
    mine.forEach(function (s) {
      var li = el("li", "script-item"); li.dataset.id = String(s.id); li.dataset.origin = "personal";
      li.dataset.channels = s.channels.join(" ");
      li.dataset.search = [s.title, s.text, s.tags.join(" "), s.shortcut].join(" ").toLowerCase();
      var a = el("a"); a.href = "#"; a.tabIndex = -1;
      a.appendChild(el("span", "script-title", s.title));
      if (s.shortcut) a.appendChild(el("kbd", null, s.shortcut));
      li.appendChild(a); li.appendChild(el("p", "script-text", s.text));
      ul.appendChild(li);
    });
    applyFilter(lastMatch);
  }

  function showEditor(s) {
    current = null; markOpen();
    pane.textContent = "";
    delete pane.dataset.articleId;
    var form = el("form", "script-editor");
    form.appendChild(el("h2", "pane-title", s ? "编辑个人话术" : "新建个人话术"));
    function field(label, name, value, hint, multiline) {
      var l = el("label", null, label);
      var input = el(multiline ? "textarea" : "input"); input.name = name; input.value = value || "";
      l.appendChild(input);
      if (hint) l.appendChild(el("span", "hint", hint));
      form.appendChild(l);
      return input;
    }
    var title = field("标题", "title", s && s.title, "", false);
    var text = field("话术内容", "text", s && s.text, "可用 {客户称呼}、{订单号} 等占位，复制前填写。", true);
    var shortcut = field("快捷码（可选）", "shortcut", s && s.shortcut, "如 /wd1；不能与共享话术重复。", false);
    var tags = field("标签（可选，用逗号分隔）", "tags", s && s.tags.join("，"), "", false);
    title.required = true; text.required = true; title.maxLength = 60; text.maxLength = 1000;
    var actions = el("div", "script-actions");
    var save = el("button", "primary", "保存"); save.type = "submit"; // not .copy: search.js would copy it
    var cancel = el("button", "small", "取消"); cancel.type = "button";
    var msg = el("span", "fill-status"); msg.setAttribute("role", "alert");
    actions.appendChild(save); actions.appendChild(cancel); actions.appendChild(msg);
    form.appendChild(actions);
    cancel.addEventListener("click", function () { if (s) showScript(s); else pane.textContent = ""; });
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var body = {
        title: title.value, text: text.value, shortcut: shortcut.value.trim(),
        tags: tags.value.split(/[,，\s]+/).filter(Boolean)
      };
      if (s) body.updated_at = s.updated_at; // refused (409) if saved elsewhere since
      var req = s ? api("PUT", "/api/v1/my/scripts/" + s.id, body) : api("POST", "/api/v1/my/scripts", body);
      req.then(function (data) {
        if (!data.ok) { msg.classList.add("warn"); msg.textContent = data.error; return; }
        loadMine().then(function () { openMine(data.script.id, { focus: true }); });
      });
    });
    pane.appendChild(form);
    title.focus();
  }

  function removeMine(s) {
    if (!window.confirm("删除个人话术「" + s.title + "」？")) return;
    api("DELETE", "/api/v1/my/scripts/" + s.id).then(function (data) {
      if (!data.ok) { window.alert(data.error); return; }
      pane.textContent = "";
      delete pane.dataset.articleId;
      current = null;
      loadMine();
    });
  }

  // -- the panel: filter, selection, keyboard ---------------------------------------

  if (!panel) {
    // The script page works without JavaScript (a GET form); with it, the live form.
    var fill = document.getElementById("script-fill");
    if (fill) { pane = fill; openScript(fill.dataset.scriptId, { bare: true }); }
    return;
  }

  var filter = document.getElementById("scripts-filter");
  var channelSel = document.getElementById("scripts-channel");
  var statusEl = document.getElementById("scripts-status");
  var none = document.getElementById("scripts-none");
  var timer = null;
  var inflight = null;
  var lastMatch = null; // null: no filter; else set of shared ids
  var selected = -1; // nothing is selected until ↓; Enter opens `preferred` or the first shown
  var preferred = null; // the script of a shortcut typed exactly (/dd)
  var enterPending = false; // Enter pressed while the filter was still running

  function items() { return panel.querySelectorAll("li.script-item"); }
  function visibleItems() {
    return Array.prototype.filter.call(items(), function (li) { return !li.hidden; });
  }
  function markOpen() {
    if (!panel) return;
    items().forEach(function (li) {
      var on = current && li.dataset.id === String(current.id) &&
        (li.dataset.origin === "personal") === (current.origin === "personal");
      li.classList.toggle("open", !!on);
    });
  }

  function applyFilter(match) {
    lastMatch = match;
    var q = filter.value.trim().toLowerCase();
    var ch = channelSel.value;
    var filtering = !!(q || ch);
    var shown = 0;
    items().forEach(function (li) {
      var ok;
      if (li.dataset.origin === "personal") {
        ok = !q || q.split(/\s+/).every(function (w) { return li.dataset.search.indexOf(w.replace(/^\//, "")) >= 0; });
        ok = ok && (!ch || li.dataset.channels.split(" ").indexOf(ch) >= 0);
      } else {
        ok = match === null || match.has(li.dataset.id);
      }
      li.hidden = !ok;
      if (ok) shown++;
    });
    panel.querySelectorAll("section.scenario").forEach(function (sec) {
      var any = sec.querySelector("li.script-item:not([hidden])");
      sec.hidden = !any && (filtering || sec.dataset.scenario !== "mine");
    });
    none.hidden = shown > 0;
    statusEl.textContent = filtering ? "匹配 " + shown + " 条话术" : "↑/↓ 选择，Enter 填写，Ctrl+Enter 复制";
    preferred = null;
    select(-1);
  }

  function runFilter() {
    var q = filter.value.trim();
    var ch = channelSel.value;
    try { sessionStorage.setItem(CHANNEL_KEY, ch); } catch (e) { /* private mode */ }
    if (!q && !ch) { if (inflight) inflight.abort(); inflight = null; applyFilter(null); afterFilter(); return; }
    if (inflight) inflight.abort();
    var mine = inflight = new AbortController();
    var url = "/api/v1/scripts?q=" + encodeURIComponent(q) + (ch ? "&channel=" + ch : "");
    fetch(url, { signal: inflight.signal, headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        if (inflight === mine) inflight = null;
        if (!data.ok) { enterPending = false; statusEl.textContent = data.error; return; }
        var ids = new Set();
        data.scripts.forEach(function (s) { ids.add(s.id); shared[s.id] = s; });
        applyFilter(ids);
        // A shortcut typed exactly (/dd): Enter opens its script (nothing is selected).
        if (q.charAt(0) === "/" && data.scripts.length && data.scripts[0].shortcut === q.toLowerCase()) {
          preferred = visibleItems().filter(function (li) {
            return li.dataset.origin !== "personal" && li.dataset.id === data.scripts[0].id;
          })[0] || null;
          if (preferred) statusEl.textContent = "快捷码 " + data.scripts[0].shortcut + "：" + data.scripts[0].title + "，按 Enter 填写";
        }
        afterFilter();
      })
      .catch(function (e) {
        if (e.name === "AbortError") return;
        if (inflight === mine) inflight = null;
        enterPending = false; statusEl.textContent = "筛选失败，请重试";
      });
  }

  function select(i) {
    var all = visibleItems();
    items().forEach(function (li) { li.classList.remove("selected"); li.removeAttribute("aria-selected"); });
    if (!all.length || i < 0) { selected = -1; return; }
    selected = Math.max(0, Math.min(i, all.length - 1));
    all[selected].classList.add("selected");
    all[selected].setAttribute("aria-selected", "true");
    all[selected].scrollIntoView({ block: "nearest" });
  }

  function busy() { return !!timer || !!inflight; }
  function afterFilter() {
    if (!enterPending || busy()) return;
    enterPending = false;
    openDefault();
  }
  // Enter: the selected script, else the exact shortcut's, else the first shown.
  function openDefault() {
    var li = selected >= 0 ? visibleItems()[selected] : preferred || visibleItems()[0];
    if (li) openItem(li, { focus: true });
  }

  function openItem(li, opts) {
    if (li.dataset.origin === "personal") return openMine(li.dataset.id, opts);
    return openScript(li.dataset.id, opts);
  }

  filter.addEventListener("input", function () {
    clearTimeout(timer); enterPending = false;
    timer = setTimeout(function () { timer = null; runFilter(); }, 120);
  });
  channelSel.addEventListener("change", runFilter);
  filter.addEventListener("keydown", function (ev) {
    if (ev.key === "ArrowDown") { ev.preventDefault(); select(selected + 1); }
    else if (ev.key === "ArrowUp") { ev.preventDefault(); select(selected - 1); }
    else if (ev.key === "Enter") {
      ev.preventDefault();
      if (!busy()) { openDefault(); return; }
      enterPending = true; // open once the list matches what was typed
      if (timer) { clearTimeout(timer); timer = null; runFilter(); }
    } else if (ev.key === "Escape") { clearTimeout(timer); timer = null; filter.value = ""; runFilter(); }
  });
  panel.addEventListener("click", function (ev) {
    var li = ev.target.closest("li.script-item");
    if (!li) return;
    ev.preventDefault();
    var all = visibleItems();
    select(all.indexOf(li));
    openItem(li, { focus: true });
  });
  document.getElementById("my-new").addEventListener("click", function () { showEditor(null); });
  document.getElementById("new-chat").addEventListener("click", function () {
    saveValues({});
    if (current) showScript(current);
    statusEl.textContent = "已开始新会话：客户称呼、订单号等已清空";
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.altKey && (ev.key === "s" || ev.key === "S" || ev.code === "KeyS")) {
      ev.preventDefault(); filter.focus(); filter.select(); return;
    }
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && pane.contains(ev.target)) {
      var btn = pane.querySelector(".script-view button.copy");
      if (btn) { ev.preventDefault(); btn.click(); }
    }
    if (ev.key === "Escape" && pane.contains(ev.target) && ev.target.tagName === "INPUT") {
      filter.focus();
    }
  });

  try { channelSel.value = sessionStorage.getItem(CHANNEL_KEY) || ""; } catch (e) { /* private mode */ }
  if (channelSel.value) runFilter();
  loadMine();
})();
