// gridwatch alert wall: the latest events from the REST API, then live ones from the SSE stream.
// Every event string is put into the page with textContent; nothing is parsed as HTML.
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
    },
    en: {
      title: "Patrol Alert Wall", connecting: "Connecting", live: "Live", offline: "Offline, reconnecting",
      shown: "Shown", received: "New", empty: "No alerts yet", toggle: "中文",
      noimage: "No snapshot", camera: "Camera", zone: "Zone",
      sev: { info: "Info", minor: "Minor", major: "Major", critical: "Critical" },
      state: { open: "Open", update: "Ongoing", close: "Closed" },
    },
  };

  const events = new Map(); // id -> event, at most MAX_CARDS
  let lang = localStorage.getItem("gridwatch.lang") === "en" ? "en" : "zh";
  let linkState = "connecting";
  let received = 0;
  let source = null;
  let retryMs = 1000;

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
    for (const card of $("grid").children) {
      const event = events.get(card.dataset.id);
      if (event) fillCard(card, event);
    }
  }

  async function loadLatest() {
    try {
      const response = await fetch(API + "/events?limit=" + INITIAL, { headers: { Accept: "application/json" } });
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
        setTimeout(() => {
          connect();
          loadLatest(); // fills what was missed while the stream was down
        }, retryMs);
        retryMs = Math.min(retryMs * 2, 30000);
      }
    };
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
    loadVersion();
    connect(); // subscribe first, then load: an event in between is in one or the other (or both)
    loadLatest();
  });
})();
