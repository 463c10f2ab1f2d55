// Embed the patient form: <div data-screening-form="INVITATION URL"></div>
// <script src="https://SERVICE/form/static/embed.js" async></script>
// Creates a plain iframe for each placeholder and resizes it to the form's height. Only
// messages from the form's own origin and from that very iframe are accepted.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) { return; }
  var formOrigin = new URL(script.src).origin;
  Array.prototype.forEach.call(document.querySelectorAll("[data-screening-form]"), function (slot) {
    var src = new URL(slot.getAttribute("data-screening-form"), formOrigin);
    if (src.origin !== formOrigin || slot.querySelector("iframe")) { return; }
    var frame = document.createElement("iframe");
    frame.src = src.href;
    frame.title = slot.getAttribute("data-title") || "Health questions form";
    frame.referrerPolicy = "no-referrer";
    frame.style.cssText = "display:block;width:100%;border:0;min-height:40rem";
    slot.appendChild(frame);
    window.addEventListener("message", function (event) {
      if (event.origin !== formOrigin || event.source !== frame.contentWindow) { return; }
      var data = event.data || {};
      if (data.type === "screening-form:resize" && data.height > 0 && data.height < 100000) {
        frame.style.minHeight = "0";
        frame.style.height = Math.ceil(data.height) + "px";
      } else if (data.type === "screening-form:page" && frame.getBoundingClientRect().top < 0) {
        frame.scrollIntoView();
      }
    });
  });
}());
