// Inside the form page: tell the embedding clinic page our height (only the clinic's
// registered origins receive it), and move focus to the error summary when there is one.
(function () {
  "use strict";
  var summary = document.querySelector("[data-error-summary]");
  if (summary) { summary.setAttribute("tabindex", "-1"); summary.focus(); }
  if (window.parent === window) { return; }
  var origins = (document.documentElement.getAttribute("data-parent-origins") || "").split(" ");
  var lastHeight = 0;
  function post(message) {
    origins.forEach(function (origin) {
      // postMessage with an exact targetOrigin is only delivered to that origin.
      if (origin) { window.parent.postMessage(message, origin); }
    });
  }
  function report() {
    var height = Math.ceil(document.documentElement.getBoundingClientRect().height);
    if (height !== lastHeight) { lastHeight = height; post({ type: "screening-form:resize", height: height }); }
  }
  post({ type: "screening-form:page" });
  report();
  if (window.ResizeObserver) { new ResizeObserver(report).observe(document.documentElement); }
  window.addEventListener("load", report);
}());
