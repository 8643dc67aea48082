// Agent search page: search as you type, suggestions, keyboard navigation, article
// pane, placeholders filled from the current chat, one-click copy. No dependencies.
(function () {
  "use strict";
  var box = document.getElementById("q");
  var category = document.getElementById("category");
  var list = document.getElementById("results");
  var statusEl = document.getElementById("status");
  var pane = document.getElementById("pane");
  var sugList = document.getElementById("suggest");
  var selected = -1; // nothing is selected until the agent presses ↓ (Enter opens the first)
  var shownKey = null; // the query and category the listed results are for
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
  // Shared with scripts.js (loaded after this file): one chat, one set of values.
  window.kbcoach = { el: el, loadValues: loadValues, saveValues: saveValues };

  function fill(text, values) {
    return text.replace(/\{([^{}\s]{1,20})\}/g, function (m, name) {
      var v = values[name];
      return v ? v : m;
    });
  }

  function toast(message, text) {
    var live = document.getElementById("copied");
    if (!live) { live = el("div", "toast"); live.id = "copied"; live.setAttribute("aria-live", "polite"); document.body.appendChild(live); }
    live.textContent = message;
    live.dataset.text = text;
    live.classList.add("show");
    setTimeout(function () { live.classList.remove("show"); }, 1500);
  }

  function copyText(text) {
    function done() { toast("已复制：" + text, text); }
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
    if (!btn) return;
    if (btn.dataset.missing) { // never copy a wording with a {placeholder} left in it
      toast("请先填写：" + btn.dataset.missing.split(",").join("、"), "");
      var sec = btn.closest("section");
      var empty = sec && Array.prototype.filter.call(sec.querySelectorAll(".placeholders input"), function (i) { return !i.value.trim(); })[0];
      if (empty) empty.focus();
      return;
    }
    copyText(btn.dataset.filled || btn.dataset.text || "");
  });

  // The standard wordings of an article, with a small form for their placeholders
  // (values remembered for the current chat) and one copy button per wording.
  function wordingsSection(wordings, placeholders) {
    var sec = el("section", "wordings"); sec.appendChild(el("h3", null, "标准话术（一键复制）"));
    var values = loadValues();
    if (placeholders.length) {
      var form = el("div", "placeholders");
      placeholders.forEach(function (name) {
        var label = el("label", null, name + " ");
        var input = el("input"); input.type = "text"; input.name = name; input.value = values[name] || "";
        input.placeholder = "填写" + name;
        input.addEventListener("input", function () { values[name] = input.value; saveValues(values); refresh(); });
        label.appendChild(input); form.appendChild(label);
      });
      sec.appendChild(form);
    }
    var ul = el("ul");
    var rows = wordings.map(function (w) {
      var li = el("li"); var span = el("span", "wording-text"); var btn = el("button", "copy", "复制");
      btn.type = "button"; btn.dataset.text = w;
      li.appendChild(span); li.appendChild(document.createTextNode(" ")); li.appendChild(btn); ul.appendChild(li);
      return { w: w, span: span, btn: btn };
    });
    function refresh() {
      rows.forEach(function (r) {
        var t = fill(r.w, values); r.span.textContent = t; r.btn.dataset.filled = t;
        var missing = placeholders.filter(function (name) { return r.w.indexOf("{" + name + "}") >= 0 && !(values[name] || "").trim(); });
        if (missing.length) r.btn.dataset.missing = missing.join(","); else delete r.btn.dataset.missing;
      });
    }
    refresh();
    sec.appendChild(ul);
    return sec;
  }

  // Full article page: the same interactive wordings instead of the static list.
  var articleData = document.getElementById("article-data");
  if (articleData) {
    var data = JSON.parse(articleData.textContent);
    var staticList = document.querySelector(".article-page .wordings");
    if (staticList && data.wordings.length) {
      staticList.replaceWith(wordingsSection(data.wordings, data.placeholders));
    }
  }

  if (!box) return; // article page: only the copy buttons

  function items() { return list.querySelectorAll("li.hit"); }
  function select(i) {
    var all = items();
    if (!all.length) { selected = -1; return; }
    selected = Math.max(0, Math.min(i, all.length - 1));
    all.forEach(function (li, j) { li.classList.toggle("selected", j === selected); li.setAttribute("aria-selected", j === selected ? "true" : "false"); });
    all[selected].scrollIntoView({ block: "nearest" });
  }

  var paneHint = pane.innerHTML; // the page's initial hint, shown again when the pane is stale

  function renderHits(data, q) {
    // An article left open from an earlier search next to new results invites copying
    // the wrong answer: clear it unless it is among the new hits.
    var shown = pane.dataset.articleId;
    if (shown && !data.hits.some(function (h) { return h.id === shown; })) {
      pane.innerHTML = paneHint;
      delete pane.dataset.articleId;
    }
    list.textContent = "";
    list.dataset.q = q;
    selected = -1;
    if (!data.hits.length) {
      list.appendChild(el("li", "empty", "没有找到与「" + q + "」相关的文章，换个说法试试。"));
      if (data.did_you_mean) {
        var dym = el("li", "did-you-mean", "您是不是要找「");
        var link = el("a", null, data.did_you_mean);
        link.href = "/?q=" + encodeURIComponent(data.did_you_mean);
        link.addEventListener("click", function (ev) {
          ev.preventDefault(); box.value = data.did_you_mean; clearTimeout(timer); runSearch(); box.focus();
        });
        dym.appendChild(link); dym.appendChild(document.createTextNode("」")); list.appendChild(dym);
      }
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
        if (h.pinned) { var pin = el("span", "badge pinned", "置顶"); pin.title = "培训师为此问题置顶的答案"; li.appendChild(pin); }
        if (h.verified) li.appendChild(el("span", "badge verify-" + (h.verified.state === "verified" ? "verified" : "due"), h.verified.label));
      }
      var p = el("p", "snippet"); p.innerHTML = h.snippet; li.appendChild(p); // server-escaped
      li.hit = h;
      li.addEventListener("click", function (ev) { ev.preventDefault(); openHit(li, { focus: true }); });
      list.appendChild(li);
    });
    statusEl.textContent = "共 " + data.total + " 条，用时 " + data.took_ms.toFixed(1) + " 毫秒";
    if (data.shortcut) {
      // The query is exactly a shortcut code (/dd): jump straight to its script.
      statusEl.textContent = "快捷码 " + data.shortcut.shortcut + "：" + data.shortcut.title + "，按 Enter 填写并复制";
      if (window.KbScripts) window.KbScripts.openHit(data.shortcut);
    }
  }

  // Which result of which search the agent opened (内容缺口: searches nobody opened).
  var csrfMeta = document.querySelector("meta[name=csrf-token]");
  function post(url, body) {
    return fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfMeta ? csrfMeta.content : "" },
      body: JSON.stringify(body), keepalive: true
    });
  }
  function recordOpen(li) {
    var q = list.dataset.q || box.value.trim();
    if (!q) return;
    var position = Array.prototype.indexOf.call(items(), li) + 1;
    post("/api/v1/search/opened", { q: q, id: li.dataset.id, doctype: li.dataset.doctype === "script" ? "script" : "article", position: position || null })
      .catch(function () { /* analytics only */ });
  }

  function openHit(li, opts) {
    recordOpen(li);
    if (li.dataset.doctype === "script" && window.KbScripts) {
      window.KbScripts.openHit(li.hit || { id: li.dataset.id }, opts);
    } else {
      openArticle(li.dataset.id);
    }
  }

  function searchKey() { return box.value.trim() + "\u0000" + category.value; }

  function runSearch(after) {
    var q = box.value.trim();
    var key = searchKey();
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
        shownKey = key;
        if (typeof after === "function") after();
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
    pane.dataset.articleId = art.id;
    var h = el("h2", "pane-title", art.title); pane.appendChild(h);
    var meta = el("p", "meta");
    meta.appendChild(el("span", "badge", art.category_label));
    art.tags.forEach(function (t) { meta.appendChild(el("span", "tag", t)); });
    var open = el("a", "open-full", "打开全文页"); open.href = "/articles/" + encodeURIComponent(art.id); meta.appendChild(open);
    pane.appendChild(meta);
    if (art.wordings.length) pane.appendChild(wordingsSection(art.wordings, art.placeholders));
    var body = el("div", "article-body"); body.innerHTML = art.html; // sanitised on the server (nh3)
    pane.appendChild(body);
    pane.appendChild(feedbackSection(art));
  }

  // 有用 / 没用 (one vote per agent, changeable) with an optional comment.
  function feedbackSection(art) {
    var sec = el("section", "pane-feedback"); sec.setAttribute("aria-label", "文章反馈");
    var mine = art.my_feedback;
    var state = el("span", "feedback-state", mine ? "你的评价：" + (mine.useful ? "有用" : "没用") : "这篇文章有用吗？");
    var comment = el("textarea"); comment.rows = 2; comment.name = "comment";
    comment.placeholder = "意见（可选，最多 500 字）"; comment.setAttribute("aria-label", "意见");
    comment.value = (mine && mine.comment) || "";
    var msg = el("p", "error"); msg.setAttribute("role", "alert"); msg.hidden = true;
    sec.appendChild(state);
    ["有用", "没用"].forEach(function (label) {
      var b = el("button", "vote", label); b.type = "button"; b.dataset.vote = label === "有用" ? "useful" : "useless";
      b.addEventListener("click", function () {
        post("/api/v1/articles/" + encodeURIComponent(art.id) + "/feedback", { useful: b.dataset.vote, comment: comment.value })
          .then(function (r) { return r.json(); })
          .then(function (data) {
            if (!data.ok) { msg.textContent = data.error; msg.hidden = false; return; }
            msg.hidden = true;
            state.textContent = "已记录：" + label + "（可以改）";
          })
          .catch(function () { msg.textContent = "提交失败，请重试"; msg.hidden = false; });
      });
      sec.appendChild(document.createTextNode(" ")); sec.appendChild(b);
    });
    sec.appendChild(comment); sec.appendChild(msg);
    return sec;
  }

  // -- suggestions: a dropdown under the box; while it is open ↓/↑ move inside it,
  // Enter picks, Esc closes; otherwise the keys keep their meaning for the results.
  var sugTimer = null;
  var sugActive = -1;
  var sugSeq = 0;
  var KIND_LABELS = { title: "标题", similar: "相似问", query: "常搜" };

  function sugItems() { return sugList ? sugList.querySelectorAll("li") : []; }
  function sugOpen() { return !!sugList && !sugList.hidden && sugItems().length > 0; }
  function sugClose() {
    if (!sugList) return;
    sugList.hidden = true; sugList.textContent = ""; sugActive = -1;
    box.setAttribute("aria-expanded", "false"); box.removeAttribute("aria-activedescendant");
  }
  function sugMove(i) {
    var all = sugItems();
    sugActive = Math.max(-1, Math.min(i, all.length - 1));
    all.forEach(function (li, j) { li.classList.toggle("active", j === sugActive); li.setAttribute("aria-selected", j === sugActive ? "true" : "false"); });
    if (sugActive >= 0) { box.setAttribute("aria-activedescendant", all[sugActive].id); all[sugActive].scrollIntoView({ block: "nearest" }); }
    else box.removeAttribute("aria-activedescendant");
  }
  function sugPick(item) {
    sugClose();
    box.value = item.text;
    clearTimeout(timer); clearTimeout(sugTimer); sugSeq++;
    // The picked text is searched and its best answer (a pinned one first) opened.
    runSearch(function () { openFirst(); });
  }
  function sugRender(items) {
    sugList.textContent = ""; sugActive = -1;
    items.forEach(function (item, i) {
      var li = el("li"); li.id = "suggest-" + i; li.setAttribute("role", "option"); li.dataset.kind = item.kind;
      if (item.id) li.dataset.id = item.id;
      li.appendChild(el("span", "text", item.text));
      li.appendChild(el("span", "kind", KIND_LABELS[item.kind] || ""));
      li.addEventListener("mousedown", function (ev) { ev.preventDefault(); sugPick(item); });
      sugList.appendChild(li);
    });
    sugList.hidden = !items.length;
    box.setAttribute("aria-expanded", items.length ? "true" : "false");
  }
  function fetchSuggest() {
    var q = box.value.trim();
    var seq = ++sugSeq;
    if (!q || q.charAt(0) === "/" || q.charAt(0) === "／") { sugClose(); return; }
    fetch("/api/v1/suggest?q=" + encodeURIComponent(q), { headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        if (seq !== sugSeq || box.value.trim() !== q || document.activeElement !== box) return;
        if (data.ok) sugRender(data.suggestions); else sugClose();
      })
      .catch(function () { /* suggestions are optional */ });
  }
  if (sugList) {
    box.addEventListener("keydown", function (ev) {
      if (!sugOpen()) return;
      var handled = true;
      if (ev.key === "ArrowDown") sugMove(sugActive + 1);
      else if (ev.key === "ArrowUp") { if (sugActive >= 0) sugMove(sugActive - 1); else { sugClose(); handled = false; } }
      else if (ev.key === "Enter") {
        if (sugActive >= 0) { var li = sugItems()[sugActive]; sugPick({ text: li.querySelector(".text").textContent }); }
        else { sugClose(); handled = false; }
      }
      else if (ev.key === "Escape") sugClose();
      else handled = false;
      if (handled) { ev.preventDefault(); ev.stopPropagation(); }
    });
    box.addEventListener("blur", function () { setTimeout(function () { if (document.activeElement !== box) sugClose(); }, 150); });
  }

  box.addEventListener("input", function () {
    clearTimeout(timer); timer = setTimeout(function () { runSearch(); }, 150);
    if (sugList) { clearTimeout(sugTimer); sugTimer = setTimeout(fetchSuggest, 80); }
  });
  category.addEventListener("change", function () { runSearch(); });
  box.form.addEventListener("submit", function (ev) { ev.preventDefault(); clearTimeout(timer); runSearch(); });
  list.querySelectorAll("li.hit").forEach(function (li) {
    li.addEventListener("click", function (ev) { ev.preventDefault(); openHit(li, { focus: true }); });
  });
  if (items().length) shownKey = searchKey();

  // Enter with nothing selected: the first result, once the results match the box.
  function openFirst(opts) {
    var first = items()[0];
    if (first) openHit(first, opts);
  }

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
    } else if (ev.key === "Enter" && box.value.trim()) {
      ev.preventDefault(); clearTimeout(timer);
      var focus = { focus: true };
      if (shownKey === searchKey()) openFirst(focus); else runSearch(function () { openFirst(focus); });
    }
  });
})();
