// A short tone for an urgent case, made in the page (no audio file). Browsers start audio only after a user
// gesture: until the first click or key on the page, nothing is played. Muting is kept in localStorage.

let context = null;
let muted = localStorage.getItem("gridwatch.mute") === "1";

function unlock() {
  if (context === null && typeof AudioContext === "function") context = new AudioContext();
}

document.addEventListener("pointerdown", unlock, { once: true });
document.addEventListener("keydown", unlock, { once: true });

export const isMuted = () => muted;

export function setMuted(value) {
  muted = Boolean(value);
  localStorage.setItem("gridwatch.mute", muted ? "1" : "0");
}

export function chime() {
  if (muted || context === null || context.state !== "running") return;
  const now = context.currentTime;
  for (const [i, freq] of [880, 660, 880].entries()) {
    const osc = context.createOscillator();
    const gain = context.createGain();
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, now + i * 0.22);
    gain.gain.exponentialRampToValueAtTime(0.3, now + i * 0.22 + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.22 + 0.2);
    osc.connect(gain).connect(context.destination);
    osc.start(now + i * 0.22);
    osc.stop(now + i * 0.22 + 0.21);
  }
}
