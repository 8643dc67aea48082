// Agent search page: search as you type, keyboard navigation, article pane,
// placeholders filled from the current chat, one-click copy. No dependencies.
(function () {
  "use strict";
  var box = document.getElementById("q");
  var category = document.getElementById("category");
  var list = document.getElementById("results");
  var statusEl = document.getElementById("status");
  var pane = document.getElementById("pane");
  var selected = -1;
  var timer = null;
  var inflight = null;
  var VALUES_KEY = "kbcoach.placeholders";

  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined) n.textContent = text;
    return n;
  }

  function loadValues() {
    try { return JSON.parse(sessionStorage.getItem(VALUES_KEY) || "{}"); } catch (e) { return {}; }
  }
  function saveValues(v) {
    try { sessionStorage.setItem(VALUES_KEY, JSON.stringify(v)); } catch (e) { /* private mode */ }
  }

  function fill(text, values) {
    return text.replace(/\{([^{}\s]{1,20})\}/g, function (m, name) {
      var v = values[name];
      return v ? v : m;
    });
  }

  function copyText(text) {
    function done() {
      var live = document.getElementById("copied");
      if (!live) { live = el("div", "toast"); live.id = "copied"; live.setAttribute("aria-live", "polite"); document.body.appendChild(live); }
      live.textContent = "已复制：" + text;
      live.dataset.text = text;
      live.classList.add("show");
      setTimeout(function () { live.classList.remove("show"); }, 1500);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text); done(); });
    } else { fallbackCopy(text); done(); }
  }
  function fallbackCopy(text) {
    var ta = el("textarea"); ta.value = text; ta.setAttribute("readonly", "");
    ta.style.position = "fixed"; ta.style.opacity = "0"; document.body.appendChild(ta);
    ta.select(); try { document.execCommand("copy"); } catch (e) { /* ignored */ }
    document.body.removeChild(ta);
  }

  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest && ev.target.closest("button.copy");
    if (btn) { copyText(btn.dataset.filled || btn.dataset.text || ""); }
  });

  if (!box) return; // article page: only the copy buttons

  function items() { return list.querySelectorAll("li.hit"); }
  function select(i) {
    var all = items();
    if (!all.length) { selected = -1; return; }
    selected = Math.max(0, Math.min(i, all.length - 1));
    all.forEach(function (li, j) { li.classList.toggle("selected", j === selected); li.setAttribute("aria-selected", j === selected ? "true" : "false"); });
    all[selected].scrollIntoView({ block: "nearest" });
  }

  function renderHits(data, q) {
    list.textContent = "";
    selected = -1;
    if (!data.hits.length) {
      list.appendChild(el("li", "empty", "没有找到与「" + q + "」相关的文章，换个说法试试。"));
    }
    data.hits.forEach(function (h) {
      var li = el("li", "hit"); li.dataset.id = h.id; li.setAttribute("role", "option");
      li.dataset.doctype = h.doctype || "article";
      var a = el("a", "hit-title"); a.href = h.url || "#"; a.innerHTML = h.title_html; // server-escaped, <mark> only
      li.appendChild(a);
      if (h.doctype === "script") {
        li.appendChild(el("span", "badge script", "话术"));
        if (h.shortcut) li.appendChild(el("kbd", null, h.shortcut));
      } else {
        li.appendChild(el("span", "badge", ({product: "产品", industry: "行业", phrasing: "标准话术", norm: "服务规范"})[h.category] || h.category));
      }
      var p = el("p", "snippet"); p.innerHTML = h.snippet; li.appendChild(p); // server-escaped
      li.hit = h;
      li.addEventListener("click", function (ev) { ev.preventDefault(); openHit(li, { focus: true }); });
      list.appendChild(li);
    });
    statusEl.textContent = "共 " + data.total + " 条，用时 " + data.took_ms.toFixed(1) + " 毫秒";
    if (data.hits.length) select(0);
    if (data.shortcut) {
      // The query is exactly a shortcut code (/dd): jump straight to its script.
      statusEl.textContent = "快捷码 " + data.shortcut.shortcut + "：" + data.shortcut.title + "，按 Enter 填写并复制";
      if (window.KbScripts) window.KbScripts.openHit(data.shortcut);
    }
  }

  function openHit(li, opts) {
    if (li.dataset.doctype === "script" && window.KbScripts) {
      window.KbScripts.openHit(li.hit || { id: li.dataset.id }, opts);
    } else {
      openArticle(li.dataset.id);
    }
  }

  function runSearch() {
    var q = box.value.trim();
    var url = new URL(window.location.href);
    url.searchParams.set("q", q);
    if (category.value) url.searchParams.set("category", category.value); else url.searchParams.delete("category");
    history.replaceState(null, "", url.pathname + "?" + url.searchParams.toString());
    if (!q) { list.textContent = ""; statusEl.textContent = "↑/↓ 选择，Enter 打开，/ 聚焦搜索框，/快捷码 直达话术"; return; }
    if (inflight) inflight.abort();
    inflight = new AbortController();
    var api = "/api/v1/search?limit=10&q=" + encodeURIComponent(q) + (category.value ? "&category=" + category.value : "");
    fetch(api, { signal: inflight.signal, headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        if (!data.ok) { list.textContent = ""; statusEl.textContent = data.error; return; }
        renderHits(data, q);
      })
      .catch(function (e) { if (e.name !== "AbortError") statusEl.textContent = "搜索失败，请重试"; });
  }

  function openArticle(id) {
    fetch("/api/v1/articles/" + encodeURIComponent(id), { headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (data) { if (data.ok) renderArticle(data.article); else pane.textContent = data.error; });
  }

  function renderArticle(art) {
    pane.textContent = "";
    var h = el("h2", "pane-title", art.title); pane.appendChild(h);
    var meta = el("p", "meta");
    meta.appendChild(el("span", "badge", art.category_label));
    art.tags.forEach(function (t) { meta.appendChild(el("span", "tag", t)); });
    var open = el("a", "open-full", "打开全文页"); open.href = "/articles/" + encodeURIComponent(art.id); meta.appendChild(open);
    pane.appendChild(meta);
    if (art.wordings.length) {
      var sec = el("section", "wordings"); sec.appendChild(el("h3", null, "标准话术（一键复制）"));
      var values = loadValues();
      var inputs = {};
      if (art.placeholders.length) {
        var form = el("div", "placeholders");
        art.placeholders.forEach(function (name) {
          var label = el("label", null, name + " ");
          var input = el("input"); input.type = "text"; input.name = name; input.value = values[name] || "";
          input.placeholder = "填写" + name;
          input.addEventListener("input", function () { values[name] = input.value; saveValues(values); refresh(); });
          label.appendChild(input); form.appendChild(label); inputs[name] = input;
        });
        sec.appendChild(form);
      }
      var ul = el("ul");
      var rows = art.wordings.map(function (w) {
        var li = el("li"); var span = el("span", "wording-text"); var btn = el("button", "copy", "复制");
        btn.type = "button"; btn.dataset.text = w;
        li.appendChild(span); li.appendChild(document.createTextNode(" ")); li.appendChild(btn); ul.appendChild(li);
        return { w: w, span: span, btn: btn };
      });
      function refresh() {
        rows.forEach(function (r) { var t = fill(r.w, values); r.span.textContent = t; r.btn.dataset.filled = t; });
      }
      refresh();
      sec.appendChild(ul); pane.appendChild(sec);
    }
    var body = el("div", "article-body"); body.innerHTML = art.html; // sanitised on the server (nh3)
    pane.appendChild(body);
  }

  box.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(runSearch, 150); });
  category.addEventListener("change", runSearch);
  box.form.addEventListener("submit", function (ev) { ev.preventDefault(); clearTimeout(timer); runSearch(); });
  list.querySelectorAll("li.hit").forEach(function (li) {
    li.addEventListener("click", function (ev) { ev.preventDefault(); openHit(li, { focus: true }); });
  });
  if (items().length) select(0);

  document.addEventListener("keydown", function (ev) {
    var typing = ev.target.tagName === "INPUT" || ev.target.tagName === "TEXTAREA" || ev.target.tagName === "SELECT";
    if (ev.key === "/" && !typing) { ev.preventDefault(); box.focus(); box.select(); return; }
    if (ev.target !== box && typing) return;
    // Keys on the pane's and the scripts panel's own buttons and links keep their meaning.
    if (ev.target !== box && ev.target.closest && ev.target.closest("#pane, #scripts-panel, button, a")) return;
    if (ev.key === "ArrowDown") { ev.preventDefault(); select(selected + 1); }
    else if (ev.key === "ArrowUp") { ev.preventDefault(); select(selected - 1); }
    else if (ev.key === "Enter" && selected >= 0) {
      ev.preventDefault(); clearTimeout(timer);
      openHit(items()[selected], { focus: true });
    }
  });
})();
