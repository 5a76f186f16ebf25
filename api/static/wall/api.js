// The cases API, at addresses relative to the page (so a path prefix behind a proxy works).

const API = "api/v1";
let csrf = null; // the session's CSRF value: sent with every change made with the cookie

export function setCsrf(value) {
  csrf = typeof value === "string" && value ? value : null;
}

export function evidenceUrl(key) {
  return API + "/evidence/" + encodeURIComponent(key);
}

// What the server offers the wall ({cases, live_cases}); null when signed out.
export async function wallConfig() {
  const response = await fetch(API + "/wall", { headers: { Accept: "application/json" } });
  return response.ok ? response.json() : null;
}

// {status, body}: the cases (newest first) or null when the server keeps none (503) or the session ended (401).
export async function listCases(limit) {
  const response = await fetch(API + "/cases?limit=" + limit, { headers: { Accept: "application/json" } });
  if (!response.ok) return { status: response.status, body: null };
  return { status: response.status, body: await response.json() };
}

// POST `path` with a JSON body: {ok: true, body} or {ok: false, status, detail, allowed}, the API's own reason.
export async function send(path, body) {
  const headers = { Accept: "application/json", "Content-Type": "application/json" };
  if (csrf) headers["X-CSRF-Token"] = csrf;
  const response = await fetch(API + path, { method: "POST", headers, body: JSON.stringify(body || {}) });
  let answer = null;
  try {
    answer = await response.json();
  } catch (err) {
    answer = null;
  }
  if (response.ok) return { ok: true, body: answer };
  const detail = answer && typeof answer.detail === "string" ? answer.detail : "HTTP " + response.status;
  const allowed = answer && Array.isArray(answer.allowed) ? answer.allowed : null;
  return { ok: false, status: response.status, detail, allowed };
}

// {ok: true, view} or {ok: false, status, detail, allowed}: the API's own reason for a refusal.
export async function act(caseId, action, body) {
  const answer = await send("/cases/" + encodeURIComponent(caseId) + "/actions/" + encodeURIComponent(action), body);
  return answer.ok ? { ok: true, view: answer.body } : answer;
}

export const visitCamera = (cameraId) => send("/cameras/" + encodeURIComponent(cameraId) + "/visit", {});
