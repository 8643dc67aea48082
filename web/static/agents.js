// 客服趋势: the copy button puts the KPI column (tab-separated, ready for a
// spreadsheet) on the clipboard; the text area stays selectable without script.
(function () {
  "use strict";
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest && ev.target.closest("button.copy-kpi");
    if (!btn) return;
    var area = document.querySelector("textarea.kpi-paste");
    if (!area) return;
    function done() { btn.textContent = "已复制"; }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(area.value).then(done, function () {
        area.select(); document.execCommand("copy"); done();
      });
    } else {
      area.select();
      try { document.execCommand("copy"); } catch (e) { /* the text stays selected */ }
      done();
    }
  });
})();
