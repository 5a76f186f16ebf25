// The grid map: the grid polygons from GET /api/v1/grids drawn as SVG (the grids are the map: no tiles from
// outside), with the shown cases as dots on it; a click on a dot picks its tile. Text only via textContent.

import { t } from "./i18n.js";
import { overdue } from "./tiles.js";

// the SVG namespace, taken from the page's own <svg> (the HTML parser puts it there)
const svgNamespace = () => document.getElementById("map").namespaceURI;
const SIZE = 1000; // the viewBox's width; its height follows the map's aspect

let grids = []; // [{code, name, rings: [[[lon, lat], ...]], centre: [lon, lat]}]
let frame = null; // {west, north, kx, ky}

function svg(name, attributes) {
  const el = document.createElementNS(svgNamespace(), name);
  for (const [key, value] of Object.entries(attributes || {})) el.setAttribute(key, String(value));
  return el;
}

function project(lon, lat) {
  return [(lon - frame.west) * frame.kx, (frame.north - lat) * frame.ky];
}

export async function loadGrids() {
  try {
    const response = await fetch("api/v1/grids", { headers: { Accept: "application/json" } });
    if (!response.ok) return false;
    const collection = await response.json();
    grids = (collection.features || []).map((f) => {
      const rings = (f.geometry.coordinates || []).flat();
      const outer = rings[0] || [];
      const centre = outer.reduce((a, p) => [a[0] + p[0] / outer.length, a[1] + p[1] / outer.length], [0, 0]);
      return { ...f.properties, rings, centre };
    });
  } catch (err) {
    console.warn("gridwatch: the grid map did not load", err);
    grids = [];
  }
  const points = grids.flatMap((g) => g.rings.flat());
  if (!points.length) return false;
  const lons = points.map((p) => p[0]);
  const lats = points.map((p) => p[1]);
  const west = Math.min(...lons);
  const north = Math.max(...lats);
  const south = Math.min(...lats);
  const squash = Math.cos((((north + south) / 2) * Math.PI) / 180); // a degree of lon is shorter than one of lat
  const width = Math.max(Math.max(...lons) - west, 1e-9) * squash;
  const kx = (SIZE / width) * squash;
  frame = { west, north, kx, ky: SIZE / width, height: Math.max((north - south) * (SIZE / width), 1) };
  return true;
}

function where(c) {
  if (typeof c.lon === "number" && typeof c.lat === "number") return [c.lon, c.lat];
  const grid = grids.find((g) => g.code === c.grid_code);
  return grid ? grid.centre : null;
}

// A camera as a small square, coloured by its health; `onCamera(cameraId)` on a click or Enter.
function cameraMark(c, onCamera) {
  const [x, y] = project(c.lon, c.lat);
  const half = Math.max(SIZE, frame.height) / 90;
  const mark = svg("rect", {
    x: (x - half).toFixed(1), y: (y - half).toFixed(1), width: (2 * half).toFixed(1), height: (2 * half).toFixed(1),
    "data-camera": c.id, "data-health": c.health, tabindex: 0, role: "button",
  });
  mark.classList.add("dot-camera", "health-" + String(c.health));
  const title = svg("title");
  title.textContent = String(c.name || c.id) + " · " + (t().patrol.healths[c.health] || String(c.health));
  mark.append(title);
  mark.addEventListener("click", () => onCamera(c.id));
  mark.addEventListener("keydown", (event) => {
    if (event.key === "Enter") onCamera(c.id);
  });
  return mark;
}

// Draw the grids, `cameras` (those with a place) and `cases` (those the filters show) into `root` (an <svg>);
// `onPick(caseId)` on a case dot's click, `onCamera(cameraId)` on a camera's.
export function drawMap(root, cases, onPick, cameras = [], onCamera = () => {}) {
  if (frame === null) return;
  const pad = 12;
  root.setAttribute("viewBox", [-pad, -pad, SIZE + 2 * pad, frame.height + 2 * pad].join(" "));
  const base = svg("g", { class: "grids" });
  const counts = new Map();
  for (const c of cases) counts.set(c.grid_code, (counts.get(c.grid_code) || 0) + 1);
  for (const g of grids) {
    const d = g.rings.map((ring) => "M" + ring.map((p) => project(p[0], p[1]).map((v) => v.toFixed(1)).join(",")).join("L") + "Z").join("");
    const path = svg("path", { d, "data-code": g.code, class: counts.has(g.code) ? "grid busy" : "grid" });
    const title = svg("title");
    title.textContent = [g.district, g.street, g.community, g.name].filter(Boolean).join(" / ") + " (" + g.code + ")";
    path.append(title);
    base.append(path);
    const [x, y] = project(g.centre[0], g.centre[1]);
    const size = (Math.max(SIZE, frame.height) / 40).toFixed(1);
    const name = svg("text", { x: x.toFixed(1), y: y.toFixed(1), class: "grid-name", "font-size": size });
    name.textContent = String(g.name || g.code);
    base.append(name);
  }
  const dots = svg("g", { class: "dots" });
  const now = Date.now();
  for (const c of cases) {
    const at = where(c);
    if (at === null) continue;
    const [x, y] = project(at[0], at[1]);
    const r = (Math.max(SIZE, frame.height) / 55).toFixed(1);
    const dot = svg("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r, "data-id": c.id, tabindex: 0, role: "button" });
    dot.classList.add("dot-case", overdue(c, now) ? "late" : c.urgency === "urgent" ? "urgent" : "normal");
    const title = svg("title");
    title.textContent = String(c.number || "") + " " + String(c.category_label || c.category || "");
    dot.append(title);
    dot.addEventListener("click", () => onPick(c.id));
    dot.addEventListener("keydown", (event) => {
      if (event.key === "Enter") onPick(c.id);
    });
    dots.append(dot);
  }
  const cams = svg("g", { class: "cameras" });
  for (const c of cameras) {
    if (typeof c.lon === "number" && typeof c.lat === "number") cams.append(cameraMark(c, onCamera));
  }
  root.replaceChildren(base, cams, dots);
  root.setAttribute("aria-label", t().map);
}
