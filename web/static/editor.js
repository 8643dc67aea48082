// Article editor: live preview of the Markdown body, rendered and sanitised by the
// server (the same code as the article page), so the preview never runs markup.
(function () {
  "use strict";
  const body = document.getElementById("body");
  const preview = document.getElementById("preview");
  if (!body || !preview) return;
  const token = document.querySelector("meta[name=csrf-token]").content;
  let timer = null;
  let seq = 0;
  async function refresh() {
    const mine = ++seq;
    try {
      const resp = await fetch("/api/v1/render", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": token },
        body: JSON.stringify({ body: body.value }),
      });
      const data = await resp.json();
      if (mine !== seq) return; // a newer preview is on its way
      if (data.ok) preview.innerHTML = data.html; // sanitised by nh3 on the server
      preview.dataset.state = data.ok ? "fresh" : "error";
    } catch (err) {
      preview.dataset.state = "error";
    }
  }
  body.addEventListener("input", function () {
    preview.dataset.state = "stale";
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  });
})();

// New articles: propose an id from the title (pinyin, unique; the server decides) until
// the trainer types an id of their own.  Without JavaScript the server fills it on save.
(function () {
  "use strict";
  const id = document.getElementById("article-id");
  const title = document.getElementById("article-title");
  const category = document.getElementById("article-category");
  if (!id || !title) return;
  let auto = id.value === "";
  let timer = null;
  let seq = 0;
  id.addEventListener("input", function () {
    auto = id.value === "";
    delete id.dataset.proposed;
  });
  async function propose() {
    const mine = ++seq;
    const text = title.value.trim();
    if (!auto) return;
    if (!text) {
      id.value = "";
      delete id.dataset.proposed;
      return;
    }
    const url = new URL(id.dataset.propose, window.location.href);
    url.searchParams.set("title", text);
    if (category) url.searchParams.set("category", category.value);
    try {
      const resp = await fetch(url, { headers: { Accept: "application/json" } });
      const data = await resp.json();
      if (mine !== seq || !auto || !data.ok) return;
      id.value = data.id;
      id.dataset.proposed = "1";
    } catch (err) {
      /* the server fills the id on save */
    }
  }
  function later() {
    clearTimeout(timer);
    timer = setTimeout(propose, 300);
  }
  title.addEventListener("input", later);
  if (category) category.addEventListener("change", later);
})();

// Phrasing lint while writing: for phrasing and norm articles, the coach's findings on
// the standard wordings (the "> " quotes), checked by the server as the trainer types.
// Error-level findings show the override box that publishing then needs.
(function () {
  "use strict";
  const panel = document.getElementById("lint");
  const body = document.getElementById("body");
  const category = document.getElementById("article-category");
  if (!panel || !body) return;
  const status = document.getElementById("lint-status");
  const list = document.getElementById("lint-findings");
  const override = document.getElementById("lint-override");
  const check = document.getElementById("lint-override-check");
  const linted = (panel.dataset.linted || "").split(" ");
  const token = document.querySelector("meta[name=csrf-token]").content;
  let timer = null;
  let seq = 0;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text) node.textContent = text;
    return node;
  }

  function show(data) {
    list.replaceChildren();
    for (const f of data.findings) {
      const li = el("li", "lint-finding level-" + f.level);
      li.dataset.line = f.line;
      li.dataset.rule = f.rule;
      li.append(el("span", "badge", f.level_label), " ");
      li.append(el("span", "lint-where", "第 " + f.line + " 行"), " 「");
      li.append(el("mark", "", f.match), "」 ");
      li.append(el("span", "lint-message", f.message));
      if (f.suggestion) li.append(" ", el("span", "lint-suggestion", "建议：" + f.suggestion));
      if (f.norm) {
        const a = el("a", "lint-norm", "相关规范");
        a.href = "/articles/" + encodeURIComponent(f.norm);
        li.append(" ", a);
      }
      list.append(li);
    }
    for (const old of panel.querySelectorAll(".lint-unchecked")) old.remove();
    for (const u of data.unchecked) {
      panel.append(el("p", "hint lint-unchecked", "第 " + u.line + " 行：" + u.reason));
    }
    if (data.findings.length) {
      let text = "共 " + data.wordings + " 条话术，发现 " + data.findings.length + " 个问题";
      if (data.blocking) text += "，其中 " + data.blocking + " 个错误级问题会阻止发布";
      status.textContent = text + "。";
    } else if (data.wordings) {
      status.textContent = "共 " + data.wordings + " 条话术，未发现问题。";
    } else {
      status.textContent = "正文中还没有标准话术（以「> 」开头的引用段落）。";
    }
    if (override) override.hidden = !(data.blocking || (check && check.checked));
  }

  async function lint() {
    const mine = ++seq;
    const cat = category ? category.value : "phrasing";
    panel.hidden = linted.indexOf(cat) < 0;
    if (panel.hidden) {
      panel.dataset.state = "fresh";
      if (override && !(check && check.checked)) override.hidden = true;
      return;
    }
    try {
      const resp = await fetch(panel.dataset.url, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": token },
        body: JSON.stringify({ body: body.value, category: cat }),
      });
      const data = await resp.json();
      if (mine !== seq) return; // a newer check is on its way
      if (data.ok) {
        show(data);
      } else {
        status.textContent = "无法检查：" + data.error;
      }
      panel.dataset.state = data.ok ? "fresh" : "error";
    } catch (err) {
      if (mine === seq) panel.dataset.state = "error";
    }
  }

  function later() {
    panel.dataset.state = "stale";
    clearTimeout(timer);
    timer = setTimeout(lint, 500);
  }
  body.addEventListener("input", later);
  if (category) category.addEventListener("change", later);
})();
