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

function follow(url, onIncident, onOpen) {
  const state = document.getElementById("live-state");
  const source = new EventSource(url);
  source.addEventListener("open", () => {
    if (state) { state.textContent = "● " + state.dataset.live; state.classList.remove("offline"); }
    onOpen();
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
  let opened = false;  // a stream opened again after a break may have missed changes: reload then
  const reopened = () => { if (opened) location.reload(); opened = true; };
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
  }, reopened);
}

async function refresh() {
  for (const part of document.querySelectorAll("[data-fragment]")) {
    const response = await fetch(part.dataset.fragment, { credentials: "same-origin" });
    if (response.ok) {
      part.innerHTML = await response.text();
      countdowns(part);
    }
  }
}

function liveIncident(live) {
  // every part of the page marked data-fragment (facts and timeline, the checklist) is fetched
  // again when this incident changes, and when the stream (re)opens, as a change may have come
  // between the page and the stream: a tick or an ack by someone else shows without a reload
  follow(live.dataset.events, (incident) => { if (incident.id === live.dataset.id) refresh(); }, refresh);
}

document.addEventListener("DOMContentLoaded", () => {
  countdowns(document);
  setInterval(() => countdowns(document), 1000);
  const table = document.getElementById("incidents");
  if (table) liveList(table);
  const live = document.getElementById("live");
  if (live) liveIncident(live);
});
