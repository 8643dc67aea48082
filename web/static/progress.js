// 会话质检: progress bars of runs that are being read or checked (the run page and
// the runs list), updated from GET /audits/<id>/status while the run is live; and
// the upload form sent with XMLHttpRequest so the bytes sent show as they go.
// Without script the form posts as usual and the run page refreshes itself.
(function () {
  "use strict";
  var POLL_MS = 1000;

  function setText(root, selector, text) {
    var el = root.querySelector(selector);
    if (el) el.textContent = text;
  }

  function showRun(bar, s) {
    var progress = bar.querySelector("progress");
    if (s.reading) {
      progress.removeAttribute("value"); // indeterminate: the files are being read
    } else {
      progress.value = s.percent;
    }
    progress.setAttribute("aria-label", "质检进度 " + s.percent + "%");
    setText(bar, ".run-percent", s.reading ? "读取文件中" : s.percent + "%");
    // the row of the runs list, or the run page's status line
    var scope = bar.closest("tr") || document;
    setText(scope, ".run-label", s.label);
    setText(scope, ".run-count", s.checked + "/" + s.total);
    if (bar.closest("tr")) bar.closest("tr").className = "status-" + s.status;
  }

  function poll(bar) {
    fetch(bar.getAttribute("data-status-url"), {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    })
      .then(function (resp) {
        if (!resp.ok) throw new Error("HTTP " + resp.status);
        return resp.json();
      })
      .then(function (s) {
        showRun(bar, s);
        if (s.live) {
          setTimeout(poll, POLL_MS, bar);
        } else {
          bar.setAttribute("data-live", "0");
          if (bar.getAttribute("data-reload") === "1") window.location.reload();
        }
      })
      .catch(function () {
        setTimeout(poll, POLL_MS * 5, bar); // the server restarts: look again later
      });
  }

  function watchRuns(root) {
    root.querySelectorAll('.run-bar[data-live="1"]').forEach(function (bar) {
      setTimeout(poll, POLL_MS, bar);
    });
  }

  function megabytes(n) {
    return (n / 1024 / 1024).toFixed(1) + " MB";
  }

  function sendUpload(form, box) {
    var bar = box.querySelector("progress");
    var text = box.querySelector(".upload-text");
    var button = form.querySelector("button[type=submit]");
    var limit = parseInt(box.getAttribute("data-max-bytes"), 10) || 0;
    var size = 0;
    form.querySelectorAll("input[type=file]").forEach(function (input) {
      Array.prototype.forEach.call(input.files || [], function (f) { size += f.size; });
    });
    box.hidden = false;
    if (limit && size > limit) {
      bar.value = 0;
      text.textContent = "文件合计 " + megabytes(size) + "，超过上限 " + megabytes(limit) + "，请分批上传";
      return;
    }
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.upload.addEventListener("progress", function (ev) {
      if (!ev.lengthComputable) return;
      var pct = Math.floor((ev.loaded * 100) / ev.total);
      bar.value = pct;
      text.textContent = "正在上传 " + megabytes(ev.loaded) + " / " + megabytes(ev.total) + "（" + pct + "%）";
    });
    xhr.upload.addEventListener("load", function () {
      bar.value = 100;
      text.textContent = "上传完成，正在打开质检批次…";
    });
    xhr.addEventListener("load", function () {
      if (xhr.status === 200 && xhr.responseURL) {
        window.location.assign(xhr.responseURL); // the run page the upload redirected to
        return;
      }
      // refused: the server's page, with its message next to the field
      var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var main = doc.querySelector("main");
      if (main && doc.querySelector("form.upload")) {
        document.querySelector("main").replaceWith(document.importNode(main, true));
        init(document);
      } else {
        if (button) button.disabled = false;
        text.textContent = "上传失败：" + ((main && main.textContent.trim()) || "HTTP " + xhr.status);
      }
    });
    xhr.addEventListener("error", function () {
      if (button) button.disabled = false;
      text.textContent = "上传失败：网络错误，请重试";
    });
    if (button) button.disabled = true;
    bar.value = 0;
    text.textContent = "正在上传…";
    xhr.send(new FormData(form));
  }

  function init(root) {
    watchRuns(root);
    var form = root.querySelector("form.upload");
    var box = root.querySelector(".upload-progress");
    if (!form || !box || !window.FormData || !window.XMLHttpRequest) return;
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      sendUpload(form, box);
    });
  }

  init(document);
})();
