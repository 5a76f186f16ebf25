// The actions a tile offers: exactly the case's `allowed` list for this caller, as the API sends it (a viewer gets
// none). Actions that need a value (dispatch: a department, note, duplicate, extend) ask for it in a small form.
// A refusal shows the API's own reason and what is allowed instead, on the tile.

import { act } from "./api.js";
import { label, t } from "./i18n.js";

const ASK = new Set(["dispatch", "note", "duplicate", "extend", "reject"]);
export const DEPARTMENTS = ["城管执法中队", "市政养护所", "环卫所", "交警大队", "街道办事处", "市场监管所"];

function bodyFor(action, value) {
  if (action === "dispatch") return { department: value };
  if (action === "duplicate") return { duplicate_of: value };
  if (action === "extend") return { workdays: Number.parseInt(value, 10) || 0 };
  return value ? { note: value } : {};
}

function showRefusal(tile, outcome) {
  const text = t();
  const box = tile.querySelector(".refusal");
  if (outcome === null) {
    box.hidden = true;
    box.textContent = "";
    return;
  }
  let message = outcome.detail ? text.refused + outcome.detail : text.failed;
  if (Array.isArray(outcome.allowed)) {
    const names = outcome.allowed.map((a) => label("actions", a)).join(", ");
    message += " · " + text.allowedNow + (names || text.none);
  }
  box.textContent = message;
  box.hidden = false;
}

async function run(tile, c, action, value, onDone) {
  for (const button of tile.querySelectorAll(".actions button, .act-form button")) button.disabled = true;
  let outcome;
  try {
    outcome = await act(c.id, action, bodyFor(action, value));
  } catch (err) {
    console.warn("gridwatch: action " + action + " failed", err);
    outcome = { ok: false, detail: null, allowed: null };
  }
  for (const button of tile.querySelectorAll(".actions button, .act-form button")) button.disabled = false;
  if (outcome.ok) {
    showRefusal(tile, null);
    tile.querySelector(".act-form").hidden = true;
    onDone(outcome.view);
  } else {
    showRefusal(tile, outcome);
  }
}

function ask(tile, c, action, onDone) {
  const text = t();
  const form = tile.querySelector(".act-form");
  const input = form.querySelector(".act-input");
  form.dataset.action = action;
  form.querySelector(".act-label span").textContent = text.ask[action] || label("actions", action);
  form.querySelector(".act-ok").textContent = label("actions", action);
  form.querySelector(".act-cancel").textContent = text.cancel;
  input.value = action === "duplicate" && Array.isArray(c.linked) && c.linked.length ? String(c.linked[0]) : "";
  input.type = action === "extend" ? "number" : "text";
  if (action === "dispatch") input.setAttribute("list", "departments");
  else input.removeAttribute("list");
  form.onsubmit = (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (value) run(tile, c, action, value, onDone);
  };
  form.querySelector(".act-cancel").onclick = () => {
    form.hidden = true;
  };
  form.hidden = false;
  input.focus();
}

// Buttons for `allowed` (from the API, per caller); `onDone(view)` gets the API's answer to a taken action.
export function fillActions(tile, c, allowed, onDone) {
  const box = tile.querySelector(".actions");
  box.replaceChildren();
  for (const action of Array.isArray(allowed) ? allowed : []) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.action = action;
    button.textContent = label("actions", action);
    button.addEventListener("click", () => (ASK.has(action) ? ask(tile, c, action, onDone) : run(tile, c, action, "", onDone)));
    box.append(button);
  }
  const form = tile.querySelector(".act-form");
  if (!form.hidden && !(allowed || []).includes(form.dataset.action)) form.hidden = true;
}

export function fillDepartments(list) {
  list.replaceChildren(...DEPARTMENTS.map((name) => new Option(name, name)));
}
