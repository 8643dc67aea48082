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
