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
