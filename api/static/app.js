// gridwatch alert wall: the latest events from the REST API, then live ones from the SSE stream.
// Every event string is put into the page with textContent; nothing is parsed as HTML.
// With API tokens configured, the page asks for one, trades it for an HttpOnly session cookie
// (POST /api/v1/session) and forgets it; the cookie then goes with fetch, EventSource and <img>.
"use strict";

(function () {
  const API = "/api/v1";
  const INITIAL = 50;
  const MAX_CARDS = 200;
  const KEY_RE = /^[0-9a-f]{64}\.(jpg|png)$/;
  const SEVERITIES = ["info", "minor", "major", "critical"];
  const STATES = ["open", "update", "close"];

  const TEXT = {
    zh: {
      title: "智能巡查告警墙", connecting: "连接中", live: "实时", offline: "已断开，重连中",
      shown: "当前显示", received: "本次新增", empty: "暂无告警", toggle: "English",
      noimage: "无抓拍图", camera: "摄像头", zone: "区域",
      sev: { info: "提示", minor: "一般", major: "重要", critical: "紧急" },
      state: { open: "新发", update: "持续", close: "结束" },
      role: { viewer: "查看", operator: "值班", rule_author: "规则编写", admin: "管理员" },
      signout: "退出登录", signinTitle: "登录告警墙", tokenLabel: "访问令牌", signinButton: "登录",
      signinHint: "请输入管理员分配的访问令牌。令牌只用于本次登录，不会保存在页面中。",
      badToken: "令牌无效，请重试。", signinFailed: "登录失败，请稍后重试。",
      tooManyTries: "错误次数过多，请稍后再试。",
    },
    en: {
      title: "Patrol Alert Wall", connecting: "Connecting", live: "Live", offline: "Offline, reconnecting",
      shown: "Shown", received: "New", empty: "No alerts yet", toggle: "中文",
      noimage: "No snapshot", camera: "Camera", zone: "Zone",
      sev: { info: "Info", minor: "Minor", major: "Major", critical: "Critical" },
      state: { open: "Open", update: "Ongoing", close: "Closed" },
      role: { viewer: "viewer", operator: "operator", rule_author: "rule author", admin: "admin" },
      signout: "Sign out", signinTitle: "Sign in to the alert wall", tokenLabel: "Access token", signinButton: "Sign in",
      signinHint: "Paste the access token your administrator gave you. It is used once to sign in and not kept by the page.",
      badToken: "That token is not valid. Try again.", signinFailed: "Signing in failed. Try again later.",
      tooManyTries: "Too many wrong tokens from this address. Wait a minute, then try again.",
    },
  };

  const events = new Map(); // id -> event, at most MAX_CARDS
  let lang = localStorage.getItem("gridwatch.lang") === "en" ? "en" : "zh";
  let linkState = "connecting";
  let received = 0;
  let source = null;
  let retryMs = 1000;
  let retryTimer = null;
  let session = null; // {name, role, via, expires_at} from the API; null while signed out
  let signinError = null; // a TEXT key shown under the token field

  const $ = (id) => document.getElementById(id);
  const t = () => TEXT[lang];

  function formatTime(iso) {
    const when = new Date(iso);
    if (Number.isNaN(when.getTime())) return "";
    return when.toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", {
      year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
    });
  }

  function annotatedKey(event) {
    const list = Array.isArray(event.evidence) ? event.evidence : [];
    const pick = list.find((e) => e.kind === "annotated") || list.find((e) => e.kind === "frame");
    return pick && KEY_RE.test(pick.key) ? pick.key : null;
  }

  function fillCard(card, event) {
    const text = t();
    const severity = SEVERITIES.includes(event.severity) ? event.severity : "minor";
    const state = STATES.includes(event.state) ? event.state : "open";
    SEVERITIES.forEach((s) => card.classList.toggle("sev-" + s, s === severity));
    card.querySelector(".sev").textContent = text.sev[severity];
    card.querySelector(".state").textContent = text.state[state];
    const when = card.querySelector(".when");
    when.textContent = formatTime(event.last_seen);
    when.dateTime = String(event.last_seen || "");
    card.querySelector(".rule").textContent = [event.category, event.rule_id].filter(Boolean).join(" · ");
    const name = event.camera_name ? event.camera_name + " (" + event.camera_id + ")" : event.camera_id;
    card.querySelector(".camera").textContent = text.camera + ": " + name;
    card.querySelector(".zone").textContent = event.zone ? text.zone + ": " + event.zone : "";
    card.querySelector(".reason").textContent = event.reason || "";
    const img = card.querySelector("img");
    const caption = card.querySelector(".noimg");
    img.alt = String(event.rule_id || "") + " " + String(event.camera_id || "");
    caption.textContent = img.hidden ? text.noimage : "";
  }

  function buildCard(event) {
    const card = $("card-template").content.firstElementChild.cloneNode(true);
    card.dataset.id = event.id;
    const img = card.querySelector("img");
    const key = annotatedKey(event);
    if (key) {
      img.src = API + "/evidence/" + encodeURIComponent(key);
      img.addEventListener("error", () => {
        img.hidden = true;
        card.querySelector(".noimg").textContent = t().noimage;
      });
    } else {
      img.hidden = true;
    }
    fillCard(card, event);
    return card;
  }

  // Newest first: ULIDs sort by time, so the id orders the cards.
  function place(card, id) {
    const grid = $("grid");
    for (const other of grid.children) {
      if (other.dataset.id < id) {
        grid.insertBefore(card, other);
        return;
      }
    }
    grid.appendChild(card);
  }

  function addEvent(event, fresh) {
    if (!event || typeof event.id !== "string" || events.has(event.id)) return;
    const grid = $("grid");
    events.set(event.id, event);
    const card = buildCard(event);
    if (fresh) card.classList.add("fresh");
    place(card, event.id);
    while (grid.children.length > MAX_CARDS) {
      const last = grid.lastElementChild;
      events.delete(last.dataset.id);
      last.remove();
    }
    updateCounts();
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
    for (const card of $("grid").children) {
      const event = events.get(card.dataset.id);
      if (event) fillCard(card, event);
    }
  }

  async function loadLatest() {
    try {
      const response = await fetch(API + "/events?limit=" + INITIAL, { headers: { Accept: "application/json" } });
      if (response.status === 401) {
        signedOut(); // the session ended (expired, or the server restarted with a new key)
        return;
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      const page = await response.json();
      (page.items || []).forEach((event) => addEvent(event, false));
    } catch (err) {
      console.warn("gridwatch: loading the latest events failed", err);
    }
  }

  function connect() {
    if (source) source.close();
    setLink("connecting");
    source = new EventSource(API + "/stream");
    source.onopen = () => {
      retryMs = 1000;
      setLink("live");
    };
    source.onmessage = (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch (err) {
        console.warn("gridwatch: bad stream message", err);
        return;
      }
      if (!events.has(event.id)) received += 1;
      addEvent(event, true);
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
    events.clear();
    $("grid").replaceChildren();
    received = 0;
    updateCounts();
    setLink("connecting");
    showWho();
    $("wall").hidden = true;
    $("signin").hidden = false;
    $("token").focus();
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

  async function signIn(event) {
    event.preventDefault();
    const input = $("token");
    const token = input.value.trim();
    if (!token) return;
    $("signin-submit").disabled = true;
    let outcome = "signinFailed";
    let who = null;
    try {
      const response = await fetch(API + "/session", {
        method: "POST",
        headers: { Accept: "application/json", Authorization: "Bearer " + token },
      });
      if (response.ok) {
        who = await response.json();
        outcome = null;
      } else if (response.status === 401) {
        outcome = "badToken";
      } else if (response.status === 429) {
        outcome = "tooManyTries";
      }
    } catch (err) {
      console.warn("gridwatch: signing in failed", err);
    }
    input.value = "";
    $("signin-submit").disabled = false;
    if (outcome === null) {
      startWall(who);
    } else {
      signinError = outcome;
      $("signin-error").textContent = t()[outcome];
      input.focus();
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
      const response = await fetch("/healthz");
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
