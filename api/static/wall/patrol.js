// The patrol panel of the alert wall: coverage within target, revisit p95, visits in flight, workers alive and the
// cameras offline with how long, polled every 5 s from GET /api/v1/patrol and /api/v1/cameras (figures change
// every visit: a poll is cheaper than a push per visit). The cameras with a place go onto the grid map by health;
// a camera's detail opens from the map or the offline list, with "visit now" for operators. Text via textContent.

import { visitCamera } from "./api.js";
import { formatSpan, formatTime, t } from "./i18n.js";

const POLL_MS = 5000;
const RANKS = { viewer: 0, operator: 1, rule_author: 2, admin: 3 };
const $ = (id) => document.getElementById(id);

let status = null; // the last PatrolStatus, null while the server runs no patrol
let cameras = []; // CameraStatus rows with a place, for the map (first page of 500)
let offline = []; // the cameras offline (GET /api/v1/cameras?health=offline)
let role = "viewer";
let timer = null;
let onChange = () => {};
let shownCamera = null;

export const atLeast = (who, wanted) => (RANKS[who] ?? -1) >= RANKS[wanted];
export const patrolCameras = () => cameras;

export function setRole(value) {
  role = typeof value === "string" ? value : "viewer";
}

async function getJson(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  return response.ok ? response.json() : null;
}

function figure(key, value, warn) {
  const box = document.createElement("div");
  box.className = "pfig" + (warn ? " warn" : "");
  box.dataset.key = key;
  const b = document.createElement("b");
  b.textContent = value;
  const span = document.createElement("span");
  span.textContent = t().patrol[key];
  box.append(b, span);
  return box;
}

function offlineFor(c, now) {
  return c.last_visit_at ? formatSpan(now - new Date(c.last_visit_at).getTime()) : t().patrol.never;
}

export function renderPatrol() {
  const panel = $("patrol-panel");
  panel.hidden = status === null;
  if (status === null) return;
  const text = t().patrol;
  const s = status;
  const p95 = s.revisit_s && typeof s.revisit_s.p95 === "number" ? Math.round(s.revisit_s.p95) + " s" : "–";
  const coverage = Math.round((s.within_target || 0) * 1000) / 10 + " %";
  $("patrol-figures").replaceChildren(
    figure("coverage", coverage, s.within_target < 0.9),
    figure("p95", p95, false),
    figure("inflight", s.in_flight + " / " + s.in_flight_limit, false),
    figure("offline", String(s.offline), s.offline > 0),
    figure("workers", String((s.workers || []).length), (s.workers || []).length === 0),
  );
  const now = Date.now();
  const list = $("patrol-offline");
  list.replaceChildren(
    ...offline.map((c) => {
      const li = document.createElement("li");
      const link = document.createElement("button");
      link.type = "button";
      link.className = "cam-link";
      link.dataset.id = c.id;
      link.textContent = c.name || c.id;
      link.addEventListener("click", () => openCamera(c.id));
      const how = document.createElement("span");
      how.className = "cam-down";
      how.textContent = text.downFor + " " + offlineFor(c, now) + " · " + text.failures + " " + c.failures;
      li.append(link, how);
      return li;
    }),
  );
  $("patrol-title").textContent = text.title;
}

function fillCamera(c) {
  const text = t().patrol;
  $("camera-title").textContent = (c.name || c.id) + " (" + c.id + ")";
  const rows = [
    [text.health, text.healths[c.health] || c.health],
    [text.grid, c.grid_code],
    [text.lastVisit, c.last_visit_at ? formatTime(c.last_visit_at) : text.never],
    [text.failures, String(c.failures)],
    [text.lastError, c.last_error || "–"],
    [text.revisit, Math.round(c.revisit_s) + " s"],
  ];
  $("camera-facts").replaceChildren(
    ...rows.flatMap(([k, v]) => {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = String(v ?? "");
      return [dt, dd];
    }),
  );
  const button = $("camera-visit");
  button.hidden = !atLeast(role, "operator");
  button.textContent = text.visitNow;
  button.disabled = false;
  $("camera-answer").textContent = c.requested ? text.queued : "";
}

export async function openCamera(cameraId) {
  const c = await getJson("api/v1/cameras/" + encodeURIComponent(cameraId));
  if (c === null) return;
  shownCamera = c;
  fillCamera(c);
  const dialog = $("camera");
  if (!dialog.open) dialog.showModal();
}

async function visitNow() {
  if (shownCamera === null) return;
  const button = $("camera-visit");
  button.disabled = true;
  const answer = await visitCamera(shownCamera.id);
  button.disabled = false;
  $("camera-answer").textContent = answer.ok ? t().patrol.queued : t().refused + answer.detail;
}

async function poll() {
  try {
    const found = await getJson("api/v1/patrol");
    status = found;
    if (found !== null) {
      const [page, down] = await Promise.all([
        getJson("api/v1/cameras?limit=500"),
        getJson("api/v1/cameras?health=offline&limit=50"),
      ]);
      cameras = page && Array.isArray(page.items) ? page.items : [];
      offline = down && Array.isArray(down.items) ? down.items : [];
    }
  } catch (err) {
    console.warn("gridwatch: the patrol figures did not load", err);
  }
  renderPatrol();
  onChange();
}

export function startPatrol(changed) {
  onChange = changed;
  if (timer !== null) clearInterval(timer);
  poll();
  timer = setInterval(poll, POLL_MS);
}

export function stopPatrol() {
  if (timer !== null) clearInterval(timer);
  timer = null;
  status = null;
  cameras = [];
  offline = [];
  renderPatrol();
}

export function wireCameraDialog() {
  $("camera-close").addEventListener("click", () => $("camera").close());
  $("camera-visit").addEventListener("click", visitNow);
}

export function relabelCamera() {
  $("camera-close").textContent = t().close;
  if (shownCamera !== null) fillCamera(shownCamera);
}
