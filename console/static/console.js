// riverguard console: the live incident list (server-sent events), live incident pages and countdowns.
// No framework and no build step; everything the page needs is in its HTML.
"use strict";

function countdowns(root) {
  const words = document.body.dataset;
  for (const el of root.querySelectorAll(".countdown")) {
    // the server's clock (simulated in the demo) against the browser's: count from the server's now
    if (!el.dataset.offset) el.dataset.offset = String(Date.parse(el.dataset.now) - Date.now());
    const left = Date.parse(el.dataset.at) - (Date.now() + Number(el.dataset.offset));
    const minutes = Math.floor(Math.abs(left) / 60000);
    const text = Math.floor(minutes / 60) + "h" + String(minutes % 60).padStart(2, "0") + "m";
    el.textContent = left >= 0 ? words.in + " " + text : words.overdue + " " + text;
    el.classList.toggle("passed", left < 0);
  }
}

function matches(row, form) {
  const river = form.querySelector("#f-river").value;
  const level = form.querySelector("#f-level").value;
  const status = form.querySelector("#f-status").value;
  if (river && row.dataset.river !== river) return false;
  if (level && row.dataset.level !== level) return false;
  if (status === "active") return row.dataset.active === "yes";
  return status === "all" || row.dataset.status === status;
}

function follow(url, onIncident) {
  const state = document.getElementById("live-state");
  const source = new EventSource(url);
  source.addEventListener("open", () => {
    if (state) { state.textContent = "● " + state.dataset.live; state.classList.remove("offline"); }
  });
  source.addEventListener("error", () => {
    if (state) { state.textContent = state.dataset.offline; state.classList.add("offline"); }
  });
  source.addEventListener("incident", (event) => onIncident(JSON.parse(event.data)));
}

function liveList(table) {
  const body = document.getElementById("incident-rows");
  const form = document.getElementById("filters");
  const empty = document.getElementById("no-incidents");
  follow(table.dataset.events, (incident) => {
    const holder = document.createElement("tbody");
    holder.innerHTML = incident.row;
    const row = holder.firstElementChild;
    const old = document.getElementById(row.id);
    if (!matches(row, form)) {
      if (old) old.remove();
    } else if (old) {
      old.replaceWith(row);
    } else {
      body.prepend(row);
    }
    countdowns(body);
    empty.hidden = body.children.length > 0;
  });
}

function liveIncident(live) {
  follow(live.dataset.events, async (incident) => {
    if (incident.id !== live.dataset.id) return;
    const response = await fetch(live.dataset.fragment, { credentials: "same-origin" });
    if (response.ok) {
      live.innerHTML = await response.text();
      countdowns(live);
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  countdowns(document);
  setInterval(() => countdowns(document), 1000);
  const table = document.getElementById("incidents");
  if (table) liveList(table);
  const live = document.getElementById("live");
  if (live) liveIncident(live);
});
