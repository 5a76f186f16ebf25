// gridwatch alert wall: the latest incidents from the REST API, then live events from the SSE stream.
// One tile per incident: its update replaces the snapshot, time and count and moves the tile to the top; its
// close dims the tile and labels it closed, in place. An event without an incident has a tile of its own.
// Every event string is put into the page with textContent; nothing is parsed as HTML.
// With authentication on, the page asks for an operator's name and password (or a token), trades them for an
// HttpOnly session cookie (POST /api/v1/session) and forgets them; the cookie then goes with fetch, EventSource
// and <img>. The case tiles (static/wall/, ES modules) hear of the session, the language and the stream's `case`
// messages through `gridwatch:*` events on the document. Addresses are relative: the wall works under a prefix.
"use strict";

(function () {
  const API = "api/v1";
  const INITIAL = 50;
  const MAX_CARDS = 200;
  const KEY_RE = /^[0-9a-f]{64}\.(jpg|png)$/;
  const ULID_RE = /^[0-9A-HJKMNP-TV-Z]{26}$/;
  const SEVERITIES = ["info", "minor", "major", "critical"];
  const STATES = ["open", "update", "close"];

  const TEXT = {
    zh: {
      title: "智能巡查告警墙", connecting: "连接中", live: "实时", offline: "已断开，重连中",
      shown: "当前显示", received: "本次新增", empty: "暂无告警", toggle: "English",
      noimage: "无抓拍图", camera: "摄像头", zone: "区域", hits: (n) => "共 " + n + " 次",
      sev: { info: "提示", minor: "一般", major: "重要", critical: "紧急" },
      state: { open: "新发", update: "持续", close: "结束" },
      role: { viewer: "查看", operator: "值班", rule_author: "规则编写", admin: "管理员" },
      signout: "退出登录", signinTitle: "登录告警墙", tokenLabel: "访问令牌", signinButton: "登录",
      signinHint: "请输入账号和密码。密码只用于本次登录，不会保存在页面中。",
      accountLabel: "账号", passwordLabel: "密码", orToken: "或使用管理员分配的访问令牌：",
      badToken: "令牌无效，请重试。", badPassword: "账号或密码错误，请重试。", signinFailed: "登录失败，请稍后重试。",
      tooManyTries: "错误次数过多，请稍后再试。",
    },
    en: {
      title: "Patrol Alert Wall", connecting: "Connecting", live: "Live", offline: "Offline, reconnecting",
      shown: "Shown", received: "New", empty: "No alerts yet", toggle: "中文",
      noimage: "No snapshot", camera: "Camera", zone: "Zone", hits: (n) => n + (n === 1 ? " event" : " events"),
      sev: { info: "Info", minor: "Minor", major: "Major", critical: "Critical" },
      state: { open: "Open", update: "Ongoing", close: "Closed" },
      role: { viewer: "viewer", operator: "operator", rule_author: "rule author", admin: "admin" },
      signout: "Sign out", signinTitle: "Sign in to the alert wall", tokenLabel: "Access token", signinButton: "Sign in",
      signinHint: "Enter your account name and password. They are used once to sign in and not kept by the page.",
      accountLabel: "Account", passwordLabel: "Password", orToken: "Or paste the access token your administrator gave you:",
      badToken: "That token is not valid. Try again.", badPassword: "Wrong account or password. Try again.",
      signinFailed: "Signing in failed. Try again later.",
      tooManyTries: "Too many wrong tokens from this address. Wait a minute, then try again.",
    },
  };

  // incident id (or event id) -> {key, incident, event, count, latestId, order, card}, at most MAX_CARDS
  const tiles = new Map();
  let lang = localStorage.getItem("gridwatch.lang") === "en" ? "en" : "zh";
  let linkState = "connecting";
  let received = 0;
  let source = null;
  let retryMs = 1000;
  let retryTimer = null;
  let session = null; // {name, role, via, expires_at} from the API; null while signed out
  let signinError = null; // a TEXT key shown under the token field

  const $ = (id) => document.getElementById(id);
  const announce = (name, detail) => document.dispatchEvent(new CustomEvent("gridwatch:" + name, { detail }));
  const t = () => TEXT[lang];

  function formatTime(iso) {
    const when = new Date(iso);
    if (Number.isNaN(when.getTime())) return "";
    return when.toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", {
      year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
    });
  }

  function annotatedKey(evidence) {
    const list = Array.isArray(evidence) ? evidence : [];
    const pick = list.find((e) => e.kind === "annotated") || list.find((e) => e.kind === "frame");
    return pick && KEY_RE.test(pick.key) ? pick.key : null;
  }

  function hasIncident(event) {
    return typeof event.incident_id === "string" && ULID_RE.test(event.incident_id);
  }

  // One tile per incident (its id), or per event for an event without one.
  function tileKey(event) {
    return hasIncident(event) ? event.incident_id : event.id;
  }

  function fillCard(card, tile) {
    const text = t();
    const event = tile.event;
    const severity = SEVERITIES.includes(event.severity) ? event.severity : "minor";
    const state = STATES.includes(event.state) ? event.state : "open";
    SEVERITIES.forEach((s) => card.classList.toggle("sev-" + s, s === severity));
    card.classList.toggle("closed", state === "close");
    card.dataset.state = state;
    card.querySelector(".sev").textContent = text.sev[severity];
    card.querySelector(".state").textContent = text.state[state];
    const when = card.querySelector(".when");
    when.textContent = formatTime(event.last_seen);
    when.dateTime = String(event.last_seen || "");
    card.querySelector(".hits").textContent = tile.incident ? text.hits(tile.count) : "";
    card.querySelector(".rule").textContent = [event.category, event.rule_id].filter(Boolean).join(" · ");
    const name = event.camera_name ? event.camera_name + " (" + event.camera_id + ")" : event.camera_id;
    card.querySelector(".camera").textContent = text.camera + ": " + name;
    card.querySelector(".zone").textContent = event.zone ? text.zone + ": " + event.zone : "";
    card.querySelector(".reason").textContent = event.reason || "";
    const img = card.querySelector("img");
    img.alt = String(event.rule_id || "") + " " + String(event.camera_id || "");
    card.querySelector(".noimg").textContent = img.hidden ? text.noimage : "";
  }

  // A new snapshot replaces the shown one; without one (a close, usually) the last one stays.
  function showSnapshot(card, key) {
    const img = card.querySelector("img");
    if (key && img.dataset.key !== key) {
      img.dataset.key = key;
      img.hidden = false;
      img.src = API + "/evidence/" + encodeURIComponent(key);
    } else if (!img.dataset.key) {
      img.hidden = true;
    }
  }

  function buildCard(tile) {
    const card = $("card-template").content.firstElementChild.cloneNode(true);
    card.dataset.key = tile.key;
    const img = card.querySelector("img");
    img.addEventListener("error", () => {
      img.hidden = true;
      card.querySelector(".noimg").textContent = t().noimage;
    });
    return card;
  }

  // Newest activity first: ULIDs sort by time, so the id of a tile's latest open or update orders the tiles.
  function place(tile) {
    const grid = $("grid");
    for (const other of grid.children) {
      if (other !== tile.card && other.dataset.order < tile.order) {
        grid.insertBefore(tile.card, other);
        return;
      }
    }
    grid.appendChild(tile.card);
  }

  function flash(card) {
    card.classList.remove("fresh");
    void card.offsetWidth; // restart the animation
    card.classList.add("fresh");
  }

  // `seen`: an event with the evidence to show and the incident's event count, from the stream (`live`) or an
  // incident summary. True when the wall changed: a new tile, or a newer event of a tile's incident.
  function show(seen, fresh, live) {
    const event = seen.event;
    if (!event || typeof event.id !== "string" || !ULID_RE.test(event.id)) return false;
    const key = tileKey(event);
    let tile = tiles.get(key);
    if (tile === undefined) {
      const incident = hasIncident(event);
      tile = { key, incident, event, count: seen.count, latestId: event.id, order: event.id, card: null };
      tile.card = buildCard(tile);
      tiles.set(key, tile);
    } else if (!tile.incident || event.id < tile.latestId || (live && event.id === tile.latestId)) {
      return false; // already shown, or older than what is
    } else {
      tile.event = event;
      tile.count = live ? tile.count + 1 : seen.count;
      tile.latestId = event.id;
      if (event.state !== "close" && event.id > tile.order) tile.order = event.id; // a close stays where it is
    }
    showSnapshot(tile.card, annotatedKey(seen.evidence));
    fillCard(tile.card, tile);
    if (tile.card.dataset.order !== tile.order || !tile.card.isConnected) {
      tile.card.dataset.order = tile.order;
      place(tile);
    }
    if (fresh) flash(tile.card);
    const grid = $("grid");
    while (grid.children.length > MAX_CARDS) {
      const last = grid.lastElementChild;
      tiles.delete(last.dataset.key);
      last.remove();
    }
    updateCounts();
    return true;
  }

  function fromEvent(event) {
    return { event, evidence: event && typeof event === "object" ? event.evidence : null, count: 1 };
  }

  function fromIncident(incident) {
    return { event: incident.latest, evidence: incident.evidence, count: incident.event_count };
  }

  function updateCounts() {
    $("count").textContent = String($("grid").children.length);
    $("received").textContent = String(received);
    $("empty").hidden = $("grid").children.length > 0;
  }

  function setLink(state) {
    linkState = state;
    $("live-dot").dataset.state = state;
    $("live-text").textContent = t()[state];
  }

  function applyLang() {
    const text = t();
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.querySelectorAll("[data-i18n]").forEach((el) => {
      const value = text[el.dataset.i18n];
      if (typeof value === "string") el.textContent = value;
    });
    document.title = "gridwatch · " + text.title;
    $("lang").textContent = text.toggle;
    setLink(linkState);
    showWho();
    $("signin-error").textContent = signinError ? text[signinError] : "";
    for (const tile of tiles.values()) fillCard(tile.card, tile);
  }

  async function getJson(path) {
    const response = await fetch(API + path, { headers: { Accept: "application/json" } });
    if (response.status === 401) return null;
    if (!response.ok) throw new Error("HTTP " + response.status + " for " + path);
    return response.json();
  }

  // The latest incidents and the latest events without an incident, merged newest first.
  async function loadLatest() {
    try {
      const [incidents, loose] = await Promise.all([
        getJson("/incidents?limit=" + INITIAL),
        getJson("/events?incident_id=&limit=" + INITIAL),
      ]);
      if (incidents === null || loose === null) {
        signedOut(); // the session ended (expired, or the server restarted with a new key)
        return;
      }
      const seen = (incidents.items || []).map(fromIncident).concat((loose.items || []).map(fromEvent));
      seen.sort((a, b) => (a.event.id < b.event.id ? 1 : -1));
      seen.slice(0, INITIAL).forEach((item) => show(item, false, false));
    } catch (err) {
      console.warn("gridwatch: loading the latest alerts failed", err);
    }
  }

  // A live update or close of an incident the wall did not show: its summary has the count and the snapshot.
  async function loadIncident(incidentId) {
    try {
      const incident = await getJson("/incidents/" + encodeURIComponent(incidentId));
      if (incident !== null) show(fromIncident(incident), false, false);
    } catch (err) {
      console.warn("gridwatch: loading incident " + incidentId + " failed", err);
    }
  }

  function connect() {
    if (source) source.close();
    setLink("connecting");
    source = new EventSource(API + "/stream");
    // `ready` is the server's first message, sent once it is subscribed (the browser's `onopen` comes earlier,
    // with the headers): only from then on is every change pushed, so the case tiles reload then.
    source.addEventListener("ready", () => {
      retryMs = 1000;
      setLink("live");
      announce("live", null); // the case tiles reload what they may have missed
    });
    source.addEventListener("case", (message) => announce("case", message.data));
    source.onmessage = (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch (err) {
        console.warn("gridwatch: bad stream message", err);
        return;
      }
      const known = event && typeof event === "object" && tiles.has(tileKey(event));
      if (show(fromEvent(event), true, true)) {
        received += 1;
        if (!known && event.state !== "open" && hasIncident(event)) loadIncident(event.incident_id);
      }
    };
    source.onerror = () => {
      setLink("offline");
      // The browser retries by itself (and sends Last-Event-ID) unless the stream is closed for good.
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        source = null;
        retryTimer = setTimeout(() => {
          retryTimer = null;
          connect();
          loadLatest(); // fills what was missed while the stream was down, or finds the session gone
        }, retryMs);
        retryMs = Math.min(retryMs * 2, 30000);
      }
    };
  }

  function showWho() {
    const who = $("who");
    const signedIn = session !== null && session.via !== "anonymous";
    who.hidden = !signedIn;
    $("signout").hidden = !signedIn;
    if (signedIn) {
      const role = t().role[session.role] || String(session.role);
      who.textContent = String(session.name) + " · " + role;
    }
  }

  function startWall(who) {
    session = who;
    signinError = null;
    $("signin").hidden = true;
    $("wall").hidden = false;
    showWho();
    announce("session", who);
    connect(); // subscribe first, then load: an event in between is in one or the other (or both)
    loadLatest();
  }

  function signedOut() {
    if (source) source.close();
    source = null;
    if (retryTimer !== null) clearTimeout(retryTimer);
    retryTimer = null;
    retryMs = 1000;
    session = null;
    tiles.clear();
    $("grid").replaceChildren();
    received = 0;
    updateCounts();
    setLink("connecting");
    showWho();
    $("wall").hidden = true;
    $("signin").hidden = false;
    announce("signedout", null);
    $("account").focus();
  }

  // Who am I: 200 (signed in, or authentication is off) starts the wall; 401 asks for a token.
  async function begin() {
    let response = null;
    try {
      response = await fetch(API + "/session", { headers: { Accept: "application/json" } });
    } catch (err) {
      console.warn("gridwatch: the API is unreachable", err);
    }
    if (response !== null && response.status === 401) {
      signedOut();
    } else if (response !== null && response.ok) {
      startWall(await response.json());
    } else {
      startWall(null); // let the stream's own retries find the API
    }
  }

  // A name and password when a name is given, else the token.
  async function signIn(event) {
    event.preventDefault();
    const input = $("token");
    const token = input.value.trim();
    const name = $("account").value.trim();
    const password = $("password").value;
    if (!token && !(name && password)) return;
    $("signin-submit").disabled = true;
    let outcome = "signinFailed";
    let who = null;
    const request = name
      ? { headers: { Accept: "application/json", "Content-Type": "application/json" },
          body: JSON.stringify({ name, password }) }
      : { headers: { Accept: "application/json", Authorization: "Bearer " + token } };
    try {
      const response = await fetch(API + "/session", { method: "POST", ...request });
      if (response.ok) {
        who = await response.json();
        outcome = null;
      } else if (response.status === 401) {
        outcome = name ? "badPassword" : "badToken";
      } else if (response.status === 429) {
        outcome = "tooManyTries";
      }
    } catch (err) {
      console.warn("gridwatch: signing in failed", err);
    }
    input.value = "";
    $("password").value = "";
    $("signin-submit").disabled = false;
    if (outcome === null) {
      startWall(who);
    } else {
      signinError = outcome;
      $("signin-error").textContent = t()[outcome];
      (name ? $("password") : input).focus();
    }
  }

  async function signOut() {
    try {
      await fetch(API + "/session", { method: "DELETE" });
    } catch (err) {
      console.warn("gridwatch: signing out failed", err);
    }
    signedOut();
  }

  async function loadVersion() {
    try {
      const response = await fetch("healthz");
      if (response.ok) $("version").textContent = "v" + String((await response.json()).version || "");
    } catch (err) {
      console.warn("gridwatch: health check failed", err);
    }
  }

  function tick() {
    $("clock").textContent = formatTime(new Date().toISOString());
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("lang").addEventListener("click", () => {
      lang = lang === "zh" ? "en" : "zh";
      localStorage.setItem("gridwatch.lang", lang);
      applyLang();
      announce("lang", lang);
      tick();
    });
    applyLang();
    tick();
    setInterval(tick, 1000);
    updateCounts();
    $("signin-form").addEventListener("submit", signIn);
    $("signout").addEventListener("click", signOut);
    loadVersion();
    begin();
  });
})();
