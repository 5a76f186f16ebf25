// Suppressions on the wall: an operator's "propose a suppression" on a false alarm's tile (POST
// /api/v1/suppressions from the case and its box in the zone), and the rule authors' panel (rule_author and up):
// each rule's false-alarm rate (GET /api/v1/rules/false-alarms) and the suppressions, with confirm / reject.

import { send } from "./api.js";
import { t } from "./i18n.js";
import { atLeast } from "./patrol.js";

const $ = (id) => document.getElementById(id);
let role = "viewer";

export function setAuthorRole(value) {
  role = typeof value === "string" ? value : "viewer";
}

// The propose button for a camera case marked as a false alarm, for operators and up; none otherwise.
export function fillPropose(tile, c) {
  let button = tile.querySelector(".propose");
  const wanted = atLeast(role, "operator") && c.false_alarm === true && c.source === "camera";
  if (!wanted) {
    if (button) button.remove();
    return;
  }
  if (!button) {
    button = document.createElement("button");
    button.type = "button";
    button.className = "propose";
    button.addEventListener("click", async () => {
      button.disabled = true;
      const answer = await send("/suppressions", { case_id: c.id });
      button.disabled = false;
      const refusal = tile.querySelector(".refusal");
      if (answer.ok) {
        button.dataset.done = "1";
        button.textContent = t().sup.proposed;
        loadAuthors();
      } else {
        refusal.hidden = false;
        refusal.textContent = t().refused + answer.detail;
      }
    });
    tile.querySelector(".actions").after(button);
  }
  button.textContent = button.dataset.done ? t().sup.proposed : t().sup.propose;
}

async function getJson(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  return response.ok ? response.json() : null;
}

const cell = (text) => {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
};

function suppressionRow(s) {
  const text = t().sup;
  const li = document.createElement("li");
  li.dataset.id = s.id;
  li.dataset.state = s.state;
  const what = document.createElement("span");
  what.textContent = s.rule_id + " · " + s.camera_id + " · " + s.case_number + " · " + (text.states[s.state] || s.state);
  li.append(what);
  if (s.state === "proposed") {
    for (const [decision, label] of [["confirm", text.confirm], ["reject", text.reject]]) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.decision = decision;
      button.textContent = label;
      button.addEventListener("click", async () => {
        button.disabled = true;
        await send("/suppressions/" + encodeURIComponent(s.id) + "/" + decision, {});
        loadAuthors();
      });
      li.append(button);
    }
  }
  return li;
}

export async function loadAuthors() {
  const panel = $("author-panel");
  if (!atLeast(role, "rule_author")) {
    panel.hidden = true;
    return;
  }
  const [rates, list] = await Promise.all([getJson("api/v1/rules/false-alarms"), getJson("api/v1/suppressions")]);
  panel.hidden = false;
  const text = t().sup;
  $("author-title").textContent = text.title;
  const rows = rates && Array.isArray(rates.rules) ? rates.rules : [];
  $("fa-rates").tBodies[0].replaceChildren(
    ...rows.map((r) => {
      const tr = document.createElement("tr");
      tr.dataset.rule = r.rule_id;
      const rate = typeof r.rate === "number" ? Math.round(r.rate * 1000) / 10 + " %" : "–";
      tr.append(cell(r.rule_id), cell(text.rate + " " + rate), cell(r.false_alarms + " / " + r.cases + " " + text.cases));
      return tr;
    }),
  );
  const items = list && Array.isArray(list.items) ? list.items : [];
  $("suppressions").replaceChildren(...items.map(suppressionRow));
}

export function hideAuthors() {
  role = "viewer";
  $("author-panel").hidden = true;
}
