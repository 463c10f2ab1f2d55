// Exclusive checkboxes, as GOV.UK Frontend does them (data-behaviour="exclusive"): ticking
// "None of these" unticks every other box of the question, and ticking any other box unticks
// "None of these". Progressive enhancement only: without JavaScript the server rejects the
// contradictory combination with an error message, and it stays the authority either way.
(function () {
  "use strict";
  function untick(group, ticked) {
    var isExclusive = ticked.getAttribute("data-behaviour") === "exclusive";
    var boxes = group.querySelectorAll("input[type=checkbox]");
    Array.prototype.forEach.call(boxes, function (box) {
      if (box === ticked || box.name !== ticked.name) { return; }
      if (isExclusive || box.getAttribute("data-behaviour") === "exclusive") { box.checked = false; }
    });
  }
  var groups = document.querySelectorAll("[data-module=checkboxes]");
  Array.prototype.forEach.call(groups, function (group) {
    group.addEventListener("change", function (event) {
      var box = event.target;
      if (box && box.type === "checkbox" && box.checked) { untick(group, box); }
    });
  });
}());
