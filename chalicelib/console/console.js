// The console's only script: a "Copy" button after each digest. Pages work without it.
"use strict";
document.querySelectorAll("code.digest").forEach(function (code) {
  if (!navigator.clipboard) { return; }
  var button = document.createElement("button");
  button.type = "button";
  button.className = "copy";
  button.textContent = "Copy";
  button.setAttribute("aria-label", "Copy " + code.textContent);
  button.addEventListener("click", function () {
    navigator.clipboard.writeText(code.textContent).then(function () { button.textContent = "Copied"; });
  });
  code.insertAdjacentElement("afterend", button);
});
