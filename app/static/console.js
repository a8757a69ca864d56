// Agent console: receive cards over server-sent events and render them.
(function () {
  "use strict";

  var root = document.getElementById("console");
  var strings = JSON.parse(document.getElementById("console-strings").textContent);
  var cards = document.getElementById("cards");
  var template = document.getElementById("card-template");
  var connection = document.getElementById("connection");
  var lastEventId = root.dataset.lastEventId;

  function callerName(card) {
    if (card.customer && card.customer.name) return card.customer.name;
    if (card.caller.kind === "withheld") return strings.withheld;
    if (card.caller.kind !== "phone") return card.caller.raw;
    return strings.unknown;
  }

  function renderCard(card) {
    var sid = card.interaction.sid;
    var existing = cards.querySelector('[data-sid="' + sid + '"]');
    var node = existing || template.content.firstElementChild.cloneNode(true);
    node.dataset.sid = sid;
    node.querySelector(".card-name").textContent = callerName(card);
    node.querySelector(".card-company").textContent = (card.customer && card.customer.company) || "";
    node.querySelector(".card-number").textContent = card.caller.e164 || card.caller.raw || "—";
    node.querySelector(".card-channel").textContent = card.interaction.channel;
    node.querySelector(".card-status").textContent = card.interaction.status;
    var systems = node.querySelector(".card-systems");
    systems.textContent = "";
    Object.keys(card.systems || {}).forEach(function (name) {
      var item = document.createElement("li");
      item.className = "system system-" + card.systems[name].status;
      item.dataset.system = name;
      item.textContent = name + ": " + (strings[card.systems[name].status] || card.systems[name].status);
      systems.appendChild(item);
    });
    if (!existing) {
      var empty = document.getElementById("no-card");
      if (empty) empty.remove();
      cards.insertBefore(node, cards.firstChild);
      node.focus();
    }
  }

  function updateStatus(data) {
    var node = cards.querySelector('[data-sid="' + data.interaction.sid + '"]');
    if (node) node.querySelector(".card-status").textContent = data.interaction.status;
  }

  function connect() {
    var url = root.dataset.streamUrl + "&last_event_id=" + encodeURIComponent(lastEventId);
    var source = new EventSource(url);
    source.onopen = function () { connection.textContent = strings.connected; };
    source.onerror = function () { connection.textContent = strings.reconnecting; };
    function handle(listener) {
      return function (event) {
        lastEventId = event.lastEventId || lastEventId;
        listener(JSON.parse(event.data));
      };
    }
    source.addEventListener("card", handle(renderCard));
    source.addEventListener("card.update", handle(renderCard));
    source.addEventListener("call.status", handle(updateStatus));
    source.addEventListener("call.ended", handle(updateStatus));
  }

  connect();
})();
