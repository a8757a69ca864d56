// Agent console: receive cards over server-sent events, render them, save the wrap-up.
(function () {
  "use strict";

  var root = document.getElementById("main");
  var strings = JSON.parse(document.getElementById("console-strings").textContent);
  var labels = strings.labels;
  var csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  var cards = document.getElementById("cards");
  var template = document.getElementById("card-template");
  var connection = document.getElementById("connection");
  var notice = document.getElementById("notice");
  var presenceSelect = document.getElementById("presence");
  var presenceState = document.getElementById("presence-state");
  var languageSelect = document.getElementById("language");
  var lastEventId = root.dataset.lastEventId;
  // Systems where this agent can screen-pop, each name mapped to its display name.
  var screenPopSystems = JSON.parse(root.dataset.screenPopSystems || "{}");
  var agentId = Number(root.dataset.agentId);
  // Call statuses after which a queued call can no longer be accepted (final statuses of app.calls, and voicemail).
  var ENDED_STATUSES = ["completed", "busy", "no-answer", "failed", "canceled", "voicemail"];
  var source = null;
  var audio = null;

  // ---- small helpers ------------------------------------------------------

  function format(text, values) {
    return text.replace(/\{(\w+)\}/g, function (_, name) { return values[name]; });
  }

  function label(group, code) {
    return (labels[group] && labels[group][code]) || code || "";
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function link(href, text) {
    var anchor = element("a", null, text);
    anchor.href = href;
    anchor.target = "_blank";
    anchor.rel = "noopener noreferrer";
    return anchor;
  }

  function api(method, url, body) {
    var options = { method: method, credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.headers["X-CSRF-Token"] = csrfToken;
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (response) {
      if (!response.ok) {
        // Error responses carry {"error": ..., "message": ...}, and the console shows that message to the agent.
        return response.json().catch(function () { return {}; }).then(function (body) {
          var error = new Error(method + " " + url + " returned " + response.status);
          error.status = response.status;
          error.responseMessage = (body && body.message) || "";
          throw error;
        });
      }
      return response.json();
    });
  }

  // ---- notice and beep on a new card --------------------------------------

  function beep() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    try {
      audio = audio || new Context();
      var oscillator = audio.createOscillator();
      var gain = audio.createGain();
      oscillator.frequency.value = 880;
      gain.gain.setValueAtTime(0.15, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.25);
      oscillator.connect(gain).connect(audio.destination);
      oscillator.start();
      oscillator.stop(audio.currentTime + 0.25);
    } catch (error) {
      // Browsers may block audio until the page has had a click or a key press.
    }
  }

  function announce(card) {
    var text = card.interaction.channel === "voice" ? strings.new_call : strings.new_message;
    notice.textContent = format(text, { name: callerName(card) });
    notice.hidden = false;
    beep();
  }

  // Browsers allow audio only after a user gesture, so unlock it on the first one.
  ["click", "keydown"].forEach(function (type) {
    document.addEventListener(type, function unlock() {
      var Context = window.AudioContext || window.webkitAudioContext;
      if (Context && !audio) audio = new Context();
      document.removeEventListener(type, unlock);
    });
  });

  // ---- card rendering -----------------------------------------------------

  function callerName(card) {
    if (card.customer && card.customer.name) return card.customer.name;
    if (card.caller.kind === "withheld") return strings.withheld;
    if (card.caller.kind !== "phone") return card.caller.raw;
    return strings.unknown;
  }

  function cardNode(card) {
    var id = card.interaction.id;
    var existing = cards.querySelector('[data-interaction="' + id + '"]');
    if (existing) return { node: existing, created: false };

    var node = template.content.firstElementChild.cloneNode(true);
    node.dataset.interaction = id;
    node.dataset.sid = card.interaction.sid;
    node.setAttribute("aria-labelledby", "card-name-" + id);
    node.querySelector(".card-name").id = "card-name-" + id;
    node.querySelectorAll(".field-label").forEach(function (fieldLabel) {
      var field = fieldLabel.dataset.for;
      var control = node.querySelector("." + (field === "reply" ? "reply-body" : field));
      control.id = field + "-" + id;
      fieldLabel.htmlFor = control.id;
    });
    bindAccept(node, id);
    bindWrapUp(node, id);
    bindReply(node, card);
    return { node: node, created: true };
  }

  function renderCard(card) {
    var found = cardNode(card);
    var node = found.node;
    var customer = card.customer || {};

    node.dataset.channel = card.interaction.channel;
    node.querySelector(".card-name").textContent = callerName(card);
    node.querySelector(".card-company").textContent = customer.company || "";
    var tier = node.querySelector(".tier");
    tier.textContent = customer.tier || "";
    tier.hidden = !customer.tier;
    if (!node.dataset.callerDisplay) {
      node.querySelector(".card-number").textContent = card.caller.e164 || card.caller.label || card.caller.raw || "—";
    }
    node.querySelector(".card-channel").textContent = label("channel", card.interaction.channel);
    node.querySelector(".card-status").textContent = label("status", card.interaction.status);
    node.querySelector(".card-owner").textContent = customer.owner || "—";
    renderJourney(node, card.journey);
    renderConflicts(node, customer.conflicts || []);
    // The pushed card's `routing` is newer than the one in its interaction summary, built before routing.
    renderAccept(node, card.interaction, card.routing || card.interaction.routing);
    renderMessage(node, card.message);
    renderSystems(node, card.systems || {});
    renderMatches(node, card);
    renderOpenItems(node, card.open_items || []);
    if (!node.dataset.timelineLoaded) renderTimeline(node, card.timeline || [], card.interaction.id);

    if (found.created) {
      var empty = document.getElementById("no-card");
      if (empty) empty.remove();
      cards.insertBefore(node, cards.firstChild);
      announce(card);
      // Keep the caret where the agent is typing; the notice announces the card instead.
      if (!isTyping()) node.focus();
    }
    loadDetails(node, card.interaction.id);
  }

  function isTyping() {
    var active = document.activeElement;
    return !!active && (active.tagName === "TEXTAREA" || (active.tagName === "INPUT" && active.type === "text"));
  }

  function renderJourney(node, journey) {
    var text = "";
    if (journey) {
      text = String(journey.contacts_30d);
      var channels = (journey.channels || []).map(function (c) { return label("channel", c); });
      if (channels.length) text += " · " + channels.join(", ");
    }
    node.querySelector(".card-journey").textContent = text || "—";
  }

  function renderConflicts(node, conflicts) {
    var paragraph = node.querySelector(".card-conflicts");
    paragraph.hidden = conflicts.length === 0;
    paragraph.textContent = conflicts.map(function (c) { return c.system + ": " + c.display_name; }).join(" · ");
  }

  function renderMessage(node, message) {
    var section = node.querySelector(".card-message");
    section.hidden = !message;
    if (!message) return;
    node.querySelector(".message-body").textContent = message.body || "";
    var attachments = node.querySelector(".message-attachments");
    attachments.hidden = !message.attachment_count;
    attachments.textContent = format(strings.attachments, { count: message.attachment_count || 0 });
  }

  function renderSystems(node, systems) {
    var list = node.querySelector(".card-systems");
    list.textContent = "";
    Object.keys(systems).sort().forEach(function (name) {
      var status = systems[name].status;
      var text = format(strings.system_status, { system: systemName(name), status: label("system", status) });
      var item = element("li", "system system-" + status, text);
      item.dataset.system = name;
      item.dataset.status = status;
      list.appendChild(item);
    });
  }

  function renderMatches(node, card) {
    var matches = card.matches || [];
    var section = node.querySelector(".card-matches-section");
    var list = node.querySelector(".match-list");
    var selected = node.dataset.selectedMatch || "";
    section.hidden = matches.length === 0;
    list.textContent = "";
    matches.forEach(function (match, index) {
      var key = match.system + "/" + match.external_id;
      var row = element("div", "match");
      var radio = element("input");
      radio.type = "radio";
      radio.name = "match-" + card.interaction.id;
      radio.id = "match-" + card.interaction.id + "-" + index;
      radio.value = key;
      radio.checked = key === selected;
      radio.addEventListener("change", function () { chooseMatch(node, card.interaction.id, match, null); });
      var text = element("label", null, match.display_name + " — " + systemName(match.system) + " " + (match.record_type || ""));
      text.htmlFor = radio.id;
      text.id = radio.id + "-label";
      row.appendChild(radio);
      row.appendChild(text);
      if (match.company) row.appendChild(element("span", "muted", match.company));
      if (match.url) row.appendChild(link(match.url, format(strings.open_in, { system: systemName(match.system) })));
      if (screenPopSystems[match.system]) row.appendChild(screenPopButton(node, card.interaction.id, match, text.id));
      if ((match.open_items || []).length) row.appendChild(openItemChoice(node, card.interaction.id, match, radio.id));
      list.appendChild(row);
    });
    showOpenItemChoice(node);
  }

  function screenPopButton(node, interactionId, match, labelId) {
    var button = element("button", "screen-pop", format(strings.show_in, { system: screenPopSystems[match.system] }));
    button.type = "button";
    button.dataset.system = match.system;
    button.dataset.externalId = match.external_id;
    button.setAttribute("aria-describedby", labelId);
    button.addEventListener("click", function () { screenPop(node, interactionId, match, button); });
    return button;
  }

  // The cases or tickets of one record, shown while that record is the selected one.
  function openItemChoice(node, interactionId, match, matchId) {
    var key = match.system + "/" + match.external_id;
    var fieldset = element("fieldset", "open-item-choice");
    fieldset.dataset.match = key;
    fieldset.appendChild(element("legend", null, strings.open_item_legend));
    var options = [{ id: "", text: strings.open_item_none }].concat(match.open_items.map(function (item) {
      var facts = [item.status || item.stage, item.priority].filter(Boolean).join(" · ");
      return { id: String(item.id), text: (item.number ? "#" + item.number + " " : "") + item.subject + (facts ? " — " + facts : "") };
    }));
    options.forEach(function (option, index) {
      var row = element("div", "open-item-option");
      var radio = element("input");
      radio.type = "radio";
      radio.name = matchId + "-open-item";
      radio.id = matchId + "-open-item-" + index;
      radio.value = option.id;
      radio.addEventListener("change", function () { chooseMatch(node, interactionId, match, option.id || null); });
      var text = element("label", null, option.text);
      text.htmlFor = radio.id;
      row.appendChild(radio);
      row.appendChild(text);
      fieldset.appendChild(row);
    });
    return fieldset;
  }

  function showOpenItemChoice(node) {
    var selected = node.dataset.selectedMatch || "";
    var picked = node.dataset.selectedOpenItem || "";
    node.querySelectorAll(".open-item-choice").forEach(function (fieldset) {
      fieldset.hidden = fieldset.dataset.match !== selected;
      fieldset.querySelectorAll("input").forEach(function (radio) {
        radio.checked = !fieldset.hidden && radio.value === picked;
      });
    });
  }

  function systemName(system) {
    return system.charAt(0).toUpperCase() + system.slice(1);
  }

  function renderOpenItems(node, items) {
    var list = node.querySelector(".card-open-items");
    list.textContent = "";
    node.querySelector(".card-no-open-items").hidden = items.length > 0;
    items.forEach(function (item) {
      var entry = element("li", "open-item");
      var title = (item.number ? "#" + item.number + " " : "") + item.subject;
      entry.appendChild(item.url ? link(item.url, title) : element("span", null, title));
      var facts = [systemName(item.system), item.status, item.priority].filter(Boolean).join(" · ");
      entry.appendChild(element("span", "muted", facts));
      list.appendChild(entry);
    });
  }

  function renderTimeline(node, entries, currentId) {
    var list = node.querySelector(".timeline");
    list.textContent = "";
    node.querySelector(".timeline-empty").hidden = entries.length > 0;
    entries.forEach(function (entry) {
      var display = entry.display || {};
      var item = element("li", "timeline-entry channel-" + entry.channel);
      item.dataset.interaction = entry.id;
      var head = element("p", "timeline-head");
      head.appendChild(element("span", "badge badge-" + entry.channel, display.channel || label("channel", entry.channel)));
      head.appendChild(element("span", null, display.direction || label("direction", entry.direction)));
      head.appendChild(element("time", null, display.time || entry.started_at));
      if (display.duration) head.appendChild(element("span", null, display.duration));
      if (entry.id === currentId) head.appendChild(element("strong", "current", strings.now));
      item.appendChild(head);

      var facts = [display.status || label("status", entry.status)];
      if (display.agent) facts.push(format(strings.by, { agent: display.agent }));
      if (display.disposition) facts.push(display.disposition);
      item.appendChild(element("p", "muted", facts.join(" · ")));
      if (entry.body) item.appendChild(element("p", "timeline-body", entry.body));
      if (entry.notes) item.appendChild(element("p", "timeline-notes", format(strings.notes_line, { notes: entry.notes })));
      renderVoicemail(item, entry);
      renderSync(item, display.sync || []);
      list.appendChild(item);
    });
  }

  function renderVoicemail(item, entry) {
    var voicemail = (entry.routing || {}).voicemail || {};
    if (voicemail.recording_link) {
      var line = element("p", "timeline-voicemail");
      line.appendChild(link(voicemail.recording_link, strings.listen_voicemail));
      item.appendChild(line);
    }
    if (entry.transcription) {
      item.appendChild(element("p", "timeline-transcription", format(strings.transcription, { text: entry.transcription })));
    }
  }

  function renderSync(item, syncs) {
    if (!syncs.length) return;
    var line = element("p", "sync");
    syncs.forEach(function (sync) {
      var text = systemName(sync.connector) + ": " + sync.state;
      line.appendChild(sync.url ? link(sync.url, text) : element("span", null, text));
    });
    item.appendChild(line);
  }

  // Fetch what the server formats for the agent's locale: number, times, the remembered match.
  function loadDetails(node, interactionId) {
    api("GET", "/api/interactions/" + interactionId).then(function (data) {
      node.dataset.callerDisplay = data.caller_display;
      node.querySelector(".card-number").textContent = data.caller_display || "—";
      renderTimeline(node, data.timeline, interactionId);
      node.dataset.timelineLoaded = "1";
      renderAccept(node, data.interaction, data.interaction.routing);
      fillWrapUp(node, data.interaction);
      selectMatch(node, data.selected_match, !data.chosen_match && data.selected_match);
    }).catch(function () { /* the card stays as pushed; the next event retries */ });
  }

  function fillWrapUp(node, interaction) {
    var notes = node.querySelector(".notes");
    var disposition = node.querySelector(".disposition");
    if (!node.dataset.wrapUpTouched) {
      notes.value = interaction.notes || "";
      disposition.value = interaction.disposition || "";
    }
  }

  function selectMatch(node, choice, remembered) {
    if (!choice) return;
    var key = choice.system + "/" + choice.external_id;
    node.dataset.selectedMatch = key;
    node.dataset.selectedOpenItem = choice.open_item_id || "";
    node.querySelectorAll(".match > input").forEach(function (radio) { radio.checked = radio.value === key; });
    showOpenItemChoice(node);
    if (remembered) node.querySelector(".match-state").textContent = strings.choice_remembered;
  }

  // A queued call offers "Accept call" until an agent accepts it, the caller leaves the queue or the call ends.
  function renderAccept(node, interaction, routing) {
    var section = node.querySelector(".card-accept");
    routing = routing || {};
    section.hidden = interaction.channel !== "voice" || routing.rule !== "queue";
    if (section.hidden) return;

    var button = section.querySelector(".accept");
    var state = section.querySelector(".accept-state");
    var accepted = routing.accepted;
    var waiting = !accepted && !routing.queue_result && ENDED_STATUSES.indexOf(interaction.status) === -1;
    // A call put back in the queue (its agent did not answer) may be accepted again, so drop the old error.
    if (waiting && button.hidden) section.querySelector(".accept-error").textContent = "";
    button.hidden = !waiting;
    if (node.dataset.accepting) return;
    if (accepted) {
      state.textContent = accepted.agent_id === agentId ? strings.accepted_by_you : strings.accepted_by_other;
    } else {
      state.textContent = "";
    }
  }

  // ---- agent actions ------------------------------------------------------

  function bindAccept(node, interactionId) {
    var button = node.querySelector(".accept");
    var state = node.querySelector(".accept-state");
    var error = node.querySelector(".accept-error");
    button.setAttribute("aria-describedby", "card-name-" + interactionId);
    button.addEventListener("click", function () {
      if (node.dataset.accepting) return;
      node.dataset.accepting = "1";
      button.disabled = true;
      error.textContent = "";
      state.textContent = strings.accepting;
      api("POST", "/api/calls/" + interactionId + "/accept", {})
        .then(function (data) {
          delete node.dataset.accepting;
          renderAccept(node, data.interaction, data.routing);
        })
        .catch(function (failure) {
          delete node.dataset.accepting;
          state.textContent = "";
          error.textContent = failure.responseMessage
            ? format(strings.accept_failed, { message: failure.responseMessage })
            : strings.accept_failed_unknown;
          // After a 409, the reloaded interaction shows whether the call was taken or has ended, in place of the button.
          loadDetails(node, interactionId);
        })
        .then(function () {
          button.disabled = false;
          // Disabling the button moved the keyboard focus off it, so give the focus back.
          if (document.activeElement === document.body || document.activeElement === null) {
            if (button.hidden) node.focus(); else button.focus();
          }
        });
    });
  }

  function chooseMatch(node, interactionId, match, openItemId) {
    var state = node.querySelector(".match-state");
    // Only the reply to the latest choice updates the card, so a slow earlier reply cannot undo it.
    var request = String(Number(node.dataset.matchRequest || 0) + 1);
    node.dataset.matchRequest = request;
    api("POST", "/api/interactions/" + interactionId + "/match",
        { system: match.system, external_id: match.external_id, open_item_id: openItemId })
      .then(function (data) {
        if (node.dataset.matchRequest !== request) return;
        selectMatch(node, data.chosen_match, false);
        state.textContent = strings.choice_saved;
      })
      .catch(function () {
        if (node.dataset.matchRequest === request) state.textContent = strings.choice_failed;
      });
  }

  // Open the record in the agent's CRM tab, or the picked case or ticket when it belongs to this record.
  function screenPop(node, interactionId, match, button) {
    var state = node.querySelector(".match-state");
    var system = screenPopSystems[match.system];
    var key = match.system + "/" + match.external_id;
    var picked = node.dataset.selectedMatch === key ? node.dataset.selectedOpenItem || null : null;
    // aria-busy rather than disabled, because some browsers move the keyboard focus off a disabled button.
    if (button.getAttribute("aria-busy") === "true") return;
    button.setAttribute("aria-busy", "true");
    state.textContent = format(strings.showing_in, { system: system });
    api("POST", "/api/interactions/" + interactionId + "/screen-pop",
        { system: match.system, external_id: match.external_id, open_item_id: picked })
      .then(function () { state.textContent = format(strings.shown_in, { system: system }); })
      .catch(function (error) {
        var text = error.status === 409 ? strings.show_unmapped : strings.show_failed;
        state.textContent = format(text, { system: system });
      })
      .then(function () { button.removeAttribute("aria-busy"); });
  }

  function bindWrapUp(node, interactionId) {
    var form = node.querySelector(".card-wrap-up");
    var state = form.querySelector(".wrap-up-state");
    form.addEventListener("input", function () { node.dataset.wrapUpTouched = "1"; });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      state.textContent = strings.saving;
      api("POST", "/api/interactions/" + interactionId + "/wrap-up", {
        notes: form.querySelector(".notes").value,
        disposition: form.querySelector(".disposition").value || null,
      }).then(function () {
        state.textContent = strings.saved;
        node.dataset.saved = "1";
      }).catch(function () { state.textContent = strings.save_failed; });
    });
  }

  function bindReply(node, card) {
    var form = node.querySelector(".card-reply");
    var conversation = (card.message && card.message.conversation_id) || card.interaction.conversation_id;
    var isMessage = card.interaction.channel === "sms" || card.interaction.channel === "whatsapp";
    if (!isMessage || !conversation) {
      form.remove();
      return;
    }
    form.hidden = false;
    var state = form.querySelector(".reply-state");
    var body = form.querySelector(".reply-body");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!body.value.trim()) {
        state.textContent = strings.empty_reply;
        return;
      }
      state.textContent = strings.sending;
      api("POST", "/api/conversations/" + conversation + "/replies", { body: body.value })
        .then(function () { state.textContent = strings.sent; body.value = ""; })
        .catch(function () { state.textContent = strings.send_failed; });
    });
  }

  function updateStatus(data) {
    var node = cards.querySelector('[data-interaction="' + data.interaction.id + '"]');
    if (!node) return;
    node.querySelector(".card-status").textContent = label("status", data.interaction.status);
    renderAccept(node, data.interaction, data.interaction.routing);
    loadDetails(node, data.interaction.id);
  }

  function showPresence(data) {
    presenceState.textContent = data.effective !== data.chosen ? data.label : "";
    presenceState.dataset.state = data.effective;
  }

  function refreshPresence() {
    api("GET", "/api/me/presence").then(showPresence).catch(function () {});
  }

  presenceSelect.addEventListener("change", function () {
    api("POST", "/api/me/presence", { presence: presenceSelect.value })
      .then(showPresence)
      .catch(function () { presenceState.textContent = strings.presence_failed; });
  });

  languageSelect.addEventListener("change", function () {
    api("POST", "/api/me/language", { language: languageSelect.value })
      .then(function () { window.location.reload(); })
      .catch(function () {});
  });

  // ---- the event stream ---------------------------------------------------

  function handle(listener) {
    return function (event) {
      lastEventId = event.lastEventId || lastEventId;
      listener(JSON.parse(event.data));
      refreshPresence();
    };
  }

  // The browser reconnects by itself and sends Last-Event-ID; a manual reconnect
  // (after the stream was closed) passes the last id seen in the URL instead.
  function connect() {
    disconnect();
    var url = root.dataset.streamUrl + "&last_event_id=" + encodeURIComponent(lastEventId);
    source = new EventSource(url);
    source.onopen = function () {
      connection.textContent = strings.connected;
      connection.dataset.state = "connected";
      refreshPresence();
    };
    source.onerror = function () {
      connection.textContent = strings.reconnecting;
      connection.dataset.state = "reconnecting";
      if (source.readyState === EventSource.CLOSED) window.setTimeout(reconnectOrSignIn, 3000);
    };
    source.addEventListener("card", handle(renderCard));
    source.addEventListener("card.update", handle(renderCard));
    source.addEventListener("call.status", handle(updateStatus));
    source.addEventListener("call.ended", handle(updateStatus));
  }

  // The browser gives up on a stream whose response was an error, such as an expired
  // stream token. Fetch a new token while the session lasts, else go to the sign-in page.
  function reconnectOrSignIn() {
    fetch("/api/me/stream", { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (response.status === 401) {
          window.location.assign("/login");
          return null;
        }
        if (!response.ok) throw new Error("GET /api/me/stream returned " + response.status);
        return response.json();
      })
      .then(function (data) {
        if (!data) return;
        root.dataset.streamUrl = data.url;
        connect();
      })
      .catch(function () { window.setTimeout(reconnectOrSignIn, 5000); });
  }

  function disconnect() {
    if (source) source.close();
    source = null;
    connection.textContent = strings.reconnecting;
    connection.dataset.state = "disconnected";
  }

  window.callcardConsole = { connect: connect, disconnect: disconnect };
  window.setInterval(refreshPresence, 20000);
  connect();
})();
