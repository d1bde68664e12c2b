// mailroom webmail: the reading shortcuts (DESIGN §8). Plain JavaScript, no build step.
"use strict";

(function () {
  var selected = -1;

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("#rows .row"));
  }

  function select(index) {
    var all = rows();
    if (all.length === 0) return;
    selected = Math.max(0, Math.min(all.length - 1, index));
    all.forEach(function (row, i) { row.classList.toggle("selected", i === selected); });
    all[selected].querySelector("a").focus();
  }

  function follow(id) {
    var link = document.getElementById(id);
    if (link) link.click();
  }

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  var onList = function (key) {
    if (key === "j") select(selected + 1);
    else if (key === "k") select(selected - 1);
    else if (key === "o" || key === "Enter") {
      var row = rows()[selected];
      if (row) row.querySelector("a").click();
    } else return false;
    return true;
  };

  var onMessage = function (key) {
    if (key === "u") follow("back");
    else if (key === "j") follow("older");
    else if (key === "k") follow("newer");
    else if (key === "s") follow("star");
    else if (key === "#") follow("trash");
    else return false;
    return true;
  };

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    var key = event.key;
    var help = document.getElementById("help");
    var handled = true;
    if (key === "?") help.open ? help.close() : help.showModal();
    else if (key === "/") {
      var search = document.getElementById("search");
      if (search) search.focus(); else handled = false;
    } else if (document.getElementById("rows")) handled = onList(key);
    else if (document.querySelector("article.message")) handled = onMessage(key);
    else handled = false;
    if (handled) event.preventDefault();
  });
})();
