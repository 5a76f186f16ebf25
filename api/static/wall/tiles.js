// One tile per case, filled with textContent only: nothing a case holds is ever parsed as HTML.

import { evidenceUrl } from "./api.js";
import { formatSpan, formatTime, label, t } from "./i18n.js";

const KEY_RE = /^[0-9a-f]{64}\.(jpg|png)$/;
const DONE = new Set(["handled", "checking", "closed", "rejected", "suspended"]);

export function pictures(c) {
  const list = Array.isArray(c.evidence) ? c.evidence.filter((e) => e && KEY_RE.test(e.key)) : [];
  const order = { frame: 0, annotated: 1, photo: 2 };
  return list.slice().sort((a, b) => (order[a.kind] ?? 3) - (order[b.kind] ?? 3));
}

function tilePicture(c) {
  const list = pictures(c);
  return list.find((e) => e.kind === "annotated") || list.find((e) => e.kind === "photo") || list[0] || null;
}

// Work not done by its deadline: the due time passed (or a red card came) and the case is still open.
export function overdue(c, now) {
  if (DONE.has(c.state)) return false;
  const due = Date.parse(c.due_by || "");
  return (Number.isFinite(due) && due < now) || (Array.isArray(c.cards) && c.cards.includes("red"));
}

export function severity(c) {
  return c.urgency === "urgent" || (Array.isArray(c.cards) && c.cards.includes("red")) ? "urgent" : "normal";
}

export function place(c) {
  const path = Array.isArray(c.grid_path) ? c.grid_path.filter(Boolean).map(String) : [];
  return { district: path[0] || "", street: path[1] || "", text: path.length ? path.join(" / ") : String(c.grid_code || "") };
}

export function buildTile(template, onPictures) {
  const tile = template.content.firstElementChild.cloneNode(true);
  const img = tile.querySelector("img");
  img.addEventListener("error", () => {
    img.hidden = true;
    tile.querySelector(".noimg").textContent = t().noimage;
  });
  tile.querySelector(".shot").addEventListener("click", () => onPictures(tile.dataset.id));
  return tile;
}

function set(tile, selector, text) {
  tile.querySelector(selector).textContent = text;
}

export function fillTile(tile, c, now) {
  const text = t();
  tile.dataset.id = c.id;
  tile.dataset.state = c.state;
  tile.dataset.audit = String(Array.isArray(c.audit) ? c.audit.length : 0); // changes with every action, notes too
  const sev = severity(c);
  const late = overdue(c, now);
  tile.classList.toggle("urgent", sev === "urgent");
  tile.classList.toggle("overdue", late);
  tile.classList.toggle("done", DONE.has(c.state));
  const cards = Array.isArray(c.cards) ? c.cards : [];
  const card = cards.includes("red") ? "red" : cards.includes("yellow") ? "yellow" : "";
  tile.dataset.card = card;
  set(tile, ".sev", label("sev", sev));
  set(tile, ".cstate", label("states", c.state));
  set(tile, ".flag", card ? text[card] : "");
  set(tile, ".number", String(c.number || ""));
  set(tile, ".cat", String(c.category_label || c.category || "")); // the label names the codes: 05 街面秩序 / 0505 ...
  set(tile, ".path", place(c).text);
  const camera = c.reporter && c.reporter.camera_id ? text.camera + " " + String(c.reporter.camera_id) : "";
  set(tile, ".camera", camera || (c.reporter && c.reporter.name ? String(c.reporter.name) : ""));
  set(tile, ".source", label("sources", c.source));
  const when = tile.querySelector(".when");
  when.textContent = formatTime(c.reported_at);
  when.dateTime = String(c.reported_at || "");
  const due = Date.parse(c.due_by || "");
  let deadline = "";
  if (Number.isFinite(due) && !DONE.has(c.state)) {
    const span = formatSpan(due - now);
    deadline = text.due + " " + formatTime(c.due_by) + " · " + (due < now ? text.overdue + " " + span : text.left + " " + span);
  }
  set(tile, ".deadline", deadline);
  set(tile, ".desc", String(c.description || c.address || ""));
  set(tile, ".dept", c.department ? text.dept + ": " + String(c.department) : "");
  const img = tile.querySelector("img");
  const picture = tilePicture(c);
  if (picture && img.dataset.key !== picture.key) {
    img.dataset.key = picture.key;
    img.hidden = false;
    img.src = evidenceUrl(picture.key);
  } else if (!picture) {
    img.hidden = true;
    img.removeAttribute("src");
    delete img.dataset.key;
  }
  img.alt = String(c.number || "");
  set(tile, ".noimg", img.hidden ? text.noimage : "");
}

// The dialog with every picture of the case, the clean frame first.
export function showPictures(dialog, c) {
  const text = t();
  dialog.querySelector("#shots-title").textContent = text.shotsTitle + " · " + String(c.number || "");
  dialog.querySelector("#shots-close").textContent = text.close;
  const list = dialog.querySelector("#shots-list");
  list.replaceChildren();
  for (const e of pictures(c)) {
    const figure = document.createElement("figure");
    const img = document.createElement("img");
    img.src = evidenceUrl(e.key);
    img.alt = e.kind;
    const caption = document.createElement("figcaption");
    caption.textContent = e.kind === "frame" ? text.cleanFrame : e.kind === "annotated" ? text.annotated : text.photo;
    figure.append(img, caption);
    list.append(figure);
  }
  if (!dialog.open) dialog.showModal();
}
