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

  // New mail and changes, live (DESIGN §8): a notice with a link that shows the new
  // list, and the unread counts kept current. Text only: nothing from mail becomes HTML.
  var live = document.getElementById("live");
  if (live && window.EventSource) {
    var fresh = 0;
    var source = new EventSource("/ui/events");
    // The mailbox on screen: its list shows the new mail; another one's does not.
    var current = document.querySelector("[data-mailbox] a[aria-current]");
    var shown = current ? current.parentNode.getAttribute("data-mailbox") : "*";
    source.addEventListener("email", function (event) {
      var mail = JSON.parse(event.data);
      fresh += 1;
      var here = shown === "*" || mail.mailboxes.indexOf(shown) >= 0;
      var link = document.createElement("a");
      link.id = "show-new";
      link.href = here ? location.href : "/?mailbox=" + encodeURIComponent(mail.mailboxes[0]);
      link.textContent = fresh === 1
        ? "New mail for " + mail.mailboxes.join(", ") + (mail.subject ? ": " + mail.subject : "") + " · show"
        : fresh + " new messages · show";
      live.replaceChildren(link);
      live.hidden = false;
    });
    source.addEventListener("counts", function (event) {
      var unread = JSON.parse(event.data);
      var total = 0;
      Object.keys(unread).forEach(function (mailbox) { total += unread[mailbox]; });
      document.querySelectorAll("[data-mailbox]").forEach(function (item) {
        var key = item.getAttribute("data-mailbox");
        var count = key === "*" ? total : (unread[key] || 0);
        var badge = item.querySelector(".count");
        badge.textContent = String(count);
        badge.hidden = count === 0;
      });
    });
  }
})();
