// Check before sending: the agent types or pastes a draft reply; findings appear as they
// type (POST /api/v1/coach/check-reply), each with the flagged words marked and the
// standard script to take instead, placeholders filled like the scripts panel does.
// Keys: Alt+D the draft; Tab from the draft to the suggestions (or to the next 【…】 left
// to fill), ↑/↓ between them, Enter takes one, Esc back to the draft / out of it;
// Ctrl+Enter copies the draft. No dependencies.
(function () {
  "use strict";
  var draft = document.getElementById("draft");
  if (!draft || !window.kbcoach) return;
  var ctxBox = document.getElementById("desk-context");
  var position = document.getElementById("desk-position");
  var list = document.getElementById("desk-findings");
  var statusEl = document.getElementById("desk-status");
  var copyBtn = document.getElementById("draft-copy");
  var csrf = (document.querySelector("meta[name=csrf-token]") || {}).content || "";
  var el = window.kbcoach.el;
  var HINT = statusEl.textContent;
  var DEBOUNCE_MS = 300;
  var TERMINATOR = /[。！？!?；;\n]/;

  var timer = null;
  var inflight = null;
  var seq = 0;
  var checked = null; // {text, findings} the list shows
  var marks = []; // [{text: "【…】", name}] placeholders taken into the draft and not yet filled

  // -- checking -----------------------------------------------------------------------

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(check, DEBOUNCE_MS);
  }

  function check() {
    clearTimeout(timer); timer = null;
    var text = draft.value;
    var mine = ++seq;
    if (inflight) { inflight.abort(); inflight = null; }
    if (!text.trim()) { render(null); statusEl.textContent = HINT; return; }
    var body = { text: text, position: position.value };
    var said = ctxBox.value.trim();
    if (said) body.context = [{ role: "customer", text: said }];
    var ctl = inflight = new AbortController();
    statusEl.textContent = "检查中…";
    fetch("/api/v1/coach/check-reply", {
      method: "POST", signal: ctl.signal,
      headers: { Accept: "application/json", "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body)
    })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        if (inflight === ctl) inflight = null;
        if (mine !== seq || draft.value !== text) return; // stale: a newer check is coming
        if (!data.ok) { render(null); statusEl.textContent = data.error || "检查失败，请重试"; return; }
        render({ text: text, findings: data.findings, unfinished: data.unfinished || [] });
      })
      .catch(function (e) {
        if (inflight === ctl) inflight = null;
        if (e.name === "AbortError" || mine !== seq) return;
        statusEl.textContent = "检查失败，请重试";
      });
  }

  // -- findings -----------------------------------------------------------------------

  // The sentence around [start, end): from after the previous terminator to its own.
  function sentence(text, start, end) {
    var a = start, b = end;
    while (a > 0 && !TERMINATOR.test(text.charAt(a - 1))) a--;
    while (b < text.length && !TERMINATOR.test(text.charAt(b))) b++;
    if (b < text.length && text.charAt(b) !== "\n") b++;
    while (a < start && /\s/.test(text.charAt(a))) a++;
    return [a, b];
  }

  function excerpt(text, span) {
    var p = el("p", "excerpt");
    if (span[0] === span[1]) {
      p.appendChild(el("span", "where", span[0] === 0 ? "（开头）" : "（结尾）"));
      return p;
    }
    var s = sentence(text, span[0], span[1]);
    if (s[0] > 0) p.appendChild(document.createTextNode("…"));
    p.appendChild(document.createTextNode(text.slice(s[0], span[0])));
    p.appendChild(el("mark", null, text.slice(span[0], span[1])));
    p.appendChild(document.createTextNode(text.slice(span[1], s[1])));
    if (s[1] < text.length) p.appendChild(document.createTextNode("…"));
    return p;
  }

  // A script's text with the chat's values filled and 【prompt】 where one is missing.
  function filled(s) {
    var out = { text: "", marks: [] };
    window.KbScripts.parts(s, window.kbcoach.loadValues()).forEach(function (part) {
      out.text += part.text;
      if (part.kind === "missing") out.marks.push({ text: part.text, name: part.name });
    });
    return out;
  }
  function scriptFor(f) {
    if (!f.script) return Promise.resolve(null);
    // Without the scripts API: the server's rendering, its 【…】 still to fill.
    var fallback = { text: f.script.text, marks: (f.script.text.match(/【[^【】]*】/g) || []).map(function (m) {
      return { text: m, name: m.slice(1, -1) };
    }) };
    if (!window.KbScripts || !window.KbScripts.get) return Promise.resolve(fallback);
    return window.KbScripts.get(f.script.script_id).then(function (s) { return s ? filled(s) : fallback; });
  }

  function render(result) {
    checked = result;
    list.textContent = "";
    if (!result) return;
    var findings = result.findings.slice().sort(function (a, b) { return a.span[0] - b.span[0]; });
    findings.forEach(function (f, i) {
      var li = el("li", "desk-finding level-" + f.level);
      li.dataset.rule = f.rule; li.dataset.category = f.category;
      li.appendChild(excerpt(result.text, f.span));
      li.appendChild(el("p", "message", f.message));
      if (f.script) {
        var row = el("p", "take-row");
        row.appendChild(el("span", "label", "标准话术"));
        var q = el("q", "take-text", f.script.text);
        row.appendChild(q);
        var btn = el("button", "take", "采用"); btn.type = "button";
        btn.title = f.span[0] === f.span[1] ? "插入这句标准话术（Enter）" : "用这句标准话术替换所在句子（Enter）";
        btn.addEventListener("click", function () { take(f); });
        row.appendChild(btn);
        li.appendChild(row);
        scriptFor(f).then(function (s) { if (s && checked === result) q.textContent = s.text; });
      } else if (f.suggestion) {
        li.appendChild(el("p", "advice", "建议：" + f.suggestion));
      }
      li.dataset.index = String(i);
      list.appendChild(li);
    });
    var unfinished = (result && result.unfinished) || [];
    var prompts = draft.value.match(/【[^】]*】/g) || [];
    if (findings.length) {
      statusEl.textContent = "发现 " + findings.length + " 个问题 · Tab 到建议，Enter 采用";
    } else if (unfinished.length) {
      // the check ran out of time: say so, never "可以发送"
      statusEl.textContent = "检查未完成（" + unfinished.length + " 条规则超时未检查），请缩短后重试";
    } else if (prompts.length) {
      statusEl.textContent = "请先填写：" + prompts.join("、");
    } else {
      statusEl.textContent = "未发现问题，可以发送（Ctrl+Enter 复制）";
    }
  }

  // Where a finding is in the draft as it is now (the agent may have typed since).
  function spanNow(f) {
    var text = draft.value;
    if (checked && checked.text === text) return f.span;
    if (f.match) {
      var at = text.indexOf(f.match);
      return at >= 0 ? [at, at + f.match.length] : null;
    }
    return f.span[0] === 0 ? [0, 0] : [text.length, text.length];
  }

  // Take a finding's script: it replaces the sentence holding the flagged words (the
  // whole draft when it is one sentence), or goes where the missing wording belongs.
  function take(f) {
    scriptFor(f).then(function (s) {
      var span = spanNow(f);
      if (!s || !span) { check(); draft.focus(); return; }
      var text = draft.value;
      var range = span[0] === span[1] ? span : sentence(text, span[0], span[1]);
      var insert = s.text;
      draft.value = text.slice(0, range[0]) + insert + text.slice(range[1]);
      s.marks.forEach(function (m) { marks.push(m); });
      draft.focus();
      if (!selectMark(range[0])) draft.setSelectionRange(range[0] + insert.length, range[0] + insert.length);
      check();
    });
  }

  // -- placeholders left in the draft --------------------------------------------------

  function openMarks() {
    var text = draft.value;
    marks = marks.filter(function (m) { return text.indexOf(m.text) >= 0; });
    return marks;
  }
  // Select the first 【…】 to fill at or after `from` (wrapping); false when none is left.
  function selectMark(from) {
    var text = draft.value;
    var best = -1, len = 0, first = -1, firstLen = 0;
    openMarks().forEach(function (m) {
      var at = text.indexOf(m.text, from);
      if (at >= 0 && (best < 0 || at < best)) { best = at; len = m.text.length; }
      var any = text.indexOf(m.text);
      if (any >= 0 && (first < 0 || any < first)) { first = any; firstLen = m.text.length; }
    });
    if (best < 0) { best = first; len = firstLen; }
    if (best < 0) return false;
    draft.setSelectionRange(best, best + len);
    return true;
  }

  // -- copy ---------------------------------------------------------------------------

  // Runs before search.js's document-level `button.copy` handler, which copies
  // data-text, or names data-missing instead of copying.
  copyBtn.addEventListener("click", function (ev) {
    var text = draft.value.trim();
    if (!text) { ev.stopPropagation(); statusEl.textContent = "草稿为空"; draft.focus(); return; }
    copyBtn.dataset.text = text;
    var left = openMarks().map(function (m) { return m.name; });
    left = left.filter(function (n, i) { return left.indexOf(n) === i; });
    if (left.length) {
      copyBtn.dataset.missing = left.join(",");
      statusEl.textContent = "请先填写：" + left.join("、");
      draft.focus(); selectMark(0);
    } else {
      delete copyBtn.dataset.missing;
    }
  });

  // -- keys ---------------------------------------------------------------------------

  function takeButtons() { return Array.prototype.slice.call(list.querySelectorAll("button.take")); }

  draft.addEventListener("input", schedule);
  ctxBox.addEventListener("input", function () { if (draft.value.trim()) schedule(); });
  position.addEventListener("change", function () { if (draft.value.trim()) check(); });

  draft.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); copyBtn.click(); return; }
    if (ev.key === "Escape") { ev.preventDefault(); var q = document.getElementById("q"); if (q) q.focus(); return; }
    if (ev.key !== "Tab" || ev.shiftKey || ev.altKey || ev.ctrlKey) return;
    // Tab: the next 【…】 still to fill, else the first suggestion (checked now if pending).
    if (openMarks().length) { ev.preventDefault(); selectMark(draft.selectionEnd); return; }
    if (timer || inflight) {
      ev.preventDefault();
      if (timer) check();
      var wanted = seq, tries = 0;
      var wait = setInterval(function () {
        if (inflight && wanted === seq && ++tries < 100) return;
        clearInterval(wait);
        var b = takeButtons()[0];
        (b || copyBtn).focus();
      }, 30);
      return;
    }
    var first = takeButtons()[0];
    if (first) { ev.preventDefault(); first.focus(); }
  });

  list.addEventListener("keydown", function (ev) {
    var all = takeButtons();
    var i = all.indexOf(ev.target);
    if (i < 0) return;
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      var next = all[i + (ev.key === "ArrowDown" ? 1 : -1)];
      if (next) next.focus();
    } else if (ev.key === "Escape") {
      ev.preventDefault(); draft.focus();
    }
  });

  // A new chat (scripts panel): the draft and what the customer said go too.
  var newChat = document.getElementById("new-chat");
  if (newChat) {
    newChat.addEventListener("click", function () {
      draft.value = ""; ctxBox.value = ""; marks = []; check();
    });
  }

  document.addEventListener("keydown", function (ev) {
    if (ev.altKey && !ev.ctrlKey && !ev.metaKey && (ev.key === "d" || ev.key === "D" || ev.code === "KeyD")) {
      ev.preventDefault(); draft.focus();
    }
  });
})();
