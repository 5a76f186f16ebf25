// Filters over the cases the wall holds (district, street, category, severity, state, source) and their order:
// overdue first, then red and yellow cards, then the latest change first.

import { label, t } from "./i18n.js";
import { overdue, place, severity } from "./tiles.js";

const FIELDS = {
  district: (c) => place(c).district,
  street: (c) => place(c).street,
  category: (c) => String(c.category || "").slice(0, 2),
  severity: (c) => severity(c),
  state: (c) => String(c.state || ""),
  source: (c) => String(c.source || ""),
};

export function readFilters(form) {
  const chosen = {};
  for (const select of form.querySelectorAll("select[data-filter]")) {
    if (select.value) chosen[select.dataset.filter] = select.value;
  }
  return chosen;
}

export function matches(c, chosen) {
  return Object.entries(chosen).every(([name, value]) => FIELDS[name](c) === value);
}

function optionText(name, value, cases) {
  if (name === "severity") return label("sev", value);
  if (name === "state") return label("states", value);
  if (name === "source") return label("sources", value);
  if (name === "category") {
    const one = cases.find((c) => String(c.category || "").startsWith(value) && c.category_label);
    const major = one ? String(one.category_label).split("/")[0].trim() : "";
    return major.startsWith(value) ? major : value;
  }
  return value;
}

// Each select offers the values the held cases have, keeping what is chosen.
export function fillFilters(form, cases) {
  const text = t();
  for (const select of form.querySelectorAll("select[data-filter]")) {
    const name = select.dataset.filter;
    const chosen = select.value;
    const values = [...new Set(cases.map(FIELDS[name]).filter(Boolean))].sort();
    if (chosen && !values.includes(chosen)) values.push(chosen);
    const options = [new Option(text[name] + ": " + text.all, "")];
    for (const value of values) options.push(new Option(optionText(name, value, cases), value));
    select.replaceChildren(...options);
    select.value = chosen;
    select.setAttribute("aria-label", text[name]);
  }
}

function rank(c, now) {
  const cards = Array.isArray(c.cards) ? c.cards : [];
  if (overdue(c, now)) return 0;
  if (cards.includes("red")) return 1;
  if (cards.includes("yellow")) return 2;
  return 3;
}

export function compare(a, b, now) {
  const byRank = rank(a, now) - rank(b, now);
  if (byRank !== 0) return byRank;
  return String(b.updated_at || "").localeCompare(String(a.updated_at || "")) || (a.id < b.id ? 1 : -1);
}
