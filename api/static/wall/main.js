// The case tiles of the alert wall: the cases list once signed in, then every change live from the stream's
// `case` messages (app.js owns the stream and the session and tells this module through `gridwatch:*` events).
// One tile per case, updated in place; filtered, overdue first; actions exactly as the API allows this caller.

import { listCases, setCsrf, wallConfig } from "./api.js";
import { fillActions, fillDepartments } from "./actions.js";
import { fillPropose, hideAuthors, loadAuthors, setAuthorRole } from "./authors.js";
import { compare, fillFilters, matches, readFilters } from "./filters.js";
import { lang, setLang, t } from "./i18n.js";
import { drawMap, loadGrids } from "./map.js";
import { openCamera, patrolCameras, relabelCamera, renderPatrol, setRole, startPatrol, stopPatrol, wireCameraDialog } from "./patrol.js";
import { chime, isMuted, setMuted } from "./sound.js";
import { buildTile, fillTile, showPictures } from "./tiles.js";

const LIMIT = 200;
const MAX_TILES = 1000;
const $ = (id) => document.getElementById(id);

// case id -> {case, allowed, tile}
const held = new Map();
let enabled = false; // the server keeps cases
// case messages that arrive while the case list is still loading: applied (newest state wins) once it has
let early = [];
const MAX_EARLY = 1000;
let large = localStorage.getItem("gridwatch.large") === "1";
let mapShown = localStorage.getItem("gridwatch.map") !== "0";
let hasMap = false;

function render() {
  const now = Date.now();
  const chosen = readFilters($("filters"));
  const shown = [...held.values()].filter((h) => matches(h.case, chosen));
  shown.sort((a, b) => compare(a.case, b.case, now));
  const grid = $("cases");
  shown.forEach((h, i) => {
    if (grid.children[i] !== h.tile) grid.insertBefore(h.tile, grid.children[i] || null);
  });
  const keep = new Set(shown.map((h) => h.tile));
  for (const child of [...grid.children]) if (!keep.has(child)) child.remove();
  if (hasMap && mapShown) drawMap($("map"), shown.map((h) => h.case), pick, patrolCameras(), openCamera);
  $("case-count").textContent = String(shown.length);
  $("case-total").textContent = String(held.size);
  $("cases-empty").textContent = shown.length ? "" : t().casesEmpty;
}

function refill(h) {
  fillTile(h.tile, h.case, Date.now());
  fillActions(h.tile, h.case, h.allowed, (view) => take(view, false));
  fillPropose(h.tile, h.case);
}

// A case as the API or the stream sent it: a new tile, or an update of the one it has (never an older state).
function take(view, live) {
  const c = view && view.case;
  if (!c || typeof c.id !== "string") return;
  let h = held.get(c.id);
  if (h !== undefined && String(c.updated_at) < String(h.case.updated_at)) return;
  const fresh = h === undefined;
  if (fresh) {
    h = { case: c, allowed: view.allowed, tile: buildTile($("case-template"), openPictures) };
    held.set(c.id, h);
  }
  const wasRed = !fresh && Array.isArray(h.case.cards) && h.case.cards.includes("red");
  h.case = c;
  h.allowed = Array.isArray(view.allowed) ? view.allowed : [];
  refill(h);
  if (live) {
    h.tile.classList.remove("fresh");
    void h.tile.offsetWidth;
    h.tile.classList.add("fresh");
    const red = Array.isArray(c.cards) && c.cards.includes("red");
    if ((fresh && c.urgency === "urgent") || (red && !wasRed)) chime();
  }
  if (held.size > MAX_TILES) {
    const oldest = [...held.values()].sort((a, b) => compare(b.case, a.case, Date.now()))[0];
    held.delete(oldest.case.id);
  }
  fillFilters($("filters"), [...held.values()].map((x) => x.case));
  render();
}

// A dot on the map was clicked: its tile comes into view, marked for a moment.
function pick(caseId) {
  const h = held.get(caseId);
  if (!h) return;
  h.tile.scrollIntoView({ block: "center", behavior: "smooth" });
  h.tile.classList.remove("picked");
  void h.tile.offsetWidth;
  h.tile.classList.add("picked");
}

function showMap() {
  $("map-toggle").hidden = !hasMap;
  $("map-toggle").textContent = mapShown ? t().mapHide : t().mapShow;
  $("map-panel").hidden = !(hasMap && mapShown);
}

function openPictures(caseId) {
  const h = held.get(caseId);
  if (h) showPictures($("shots"), h.case);
}

async function load() {
  let answer = { body: null };
  let offered = null;
  try {
    offered = await wallConfig();
    if (offered !== null && offered.cases) answer = await listCases(LIMIT);
  } catch (err) {
    console.warn("gridwatch: loading the cases failed", err);
  }
  enabled = answer.body !== null;
  document.body.classList.toggle("with-cases", enabled);
  $("cases-panel").hidden = !enabled;
  const arrived = early;
  early = [];
  if (!enabled) return;
  for (const view of arrived) take(view, true);
  if (!hasMap) {
    hasMap = await loadGrids();
    showMap();
  }
  if (offered.patrol) startPatrol(render);
  loadAuthors();
  const allowed = answer.body.allowed || {};
  for (const c of answer.body.items || []) take({ case: c, allowed: allowed[c.id] || [] }, false);
}

function applyLang() {
  const text = t();
  $("mute").textContent = isMuted() ? text.unmute : text.mute;
  $("mute").setAttribute("aria-pressed", String(isMuted()));
  $("large").textContent = large ? text.normal : text.large;
  $("large").setAttribute("aria-pressed", String(large));
  document.documentElement.classList.toggle("large", large);
  fillFilters($("filters"), [...held.values()].map((h) => h.case));
  showMap();
  renderPatrol();
  relabelCamera();
  if (enabled) loadAuthors();
  for (const h of held.values()) refill(h);
  render();
}

function clear() {
  held.clear();
  early = [];
  stopPatrol();
  hideAuthors();
  $("cases").replaceChildren();
  setCsrf(null);
  render();
}

document.addEventListener("DOMContentLoaded", () => {
  fillDepartments($("departments"));
  $("filters").addEventListener("change", render);
  $("mute").addEventListener("click", () => {
    setMuted(!isMuted());
    applyLang();
  });
  $("large").addEventListener("click", () => {
    large = !large;
    localStorage.setItem("gridwatch.large", large ? "1" : "0");
    applyLang();
  });
  $("map-toggle").addEventListener("click", () => {
    mapShown = !mapShown;
    localStorage.setItem("gridwatch.map", mapShown ? "1" : "0");
    showMap();
    render();
  });
  wireCameraDialog();
  $("shots-close").addEventListener("click", () => $("shots").close());
  applyLang();
  setInterval(() => {
    for (const h of held.values()) fillTile(h.tile, h.case, Date.now());
    render();
  }, 30000); // deadlines count down; cards turn overdue
});

document.addEventListener("gridwatch:session", (event) => {
  clear();
  setCsrf(event.detail && event.detail.csrf);
  setRole(event.detail && event.detail.role);
  setAuthorRole(event.detail && event.detail.role);
});
document.addEventListener("gridwatch:signedout", clear);
document.addEventListener("gridwatch:live", load);
document.addEventListener("gridwatch:lang", (event) => {
  setLang(event.detail);
  applyLang();
});
document.addEventListener("gridwatch:case", (event) => {
  let view;
  try {
    view = JSON.parse(event.detail);
  } catch (err) {
    console.warn("gridwatch: bad case message", err);
    return;
  }
  if (enabled) take(view, true);
  else if (early.length < MAX_EARLY) early.push(view); // the list is loading: kept until it has come
});

export { lang };
