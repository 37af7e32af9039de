// Live countdowns on the governance page (the server already wrote the time left).
const pad = (n) => String(n).padStart(2, "0");
function tick() {
  const now = Date.now() / 1000;
  for (const el of document.querySelectorAll("time.countdown")) {
    const left = Math.max(0, Math.round(Number(el.dataset.readyAt) - now));
    const d = Math.floor(left / 86400), h = Math.floor((left % 86400) / 3600);
    const m = Math.floor((left % 3600) / 60), s = left % 60;
    el.textContent = left ? `${d ? d + " d " : ""}${pad(h)}:${pad(m)}:${pad(s)}` : "ready";
  }
}
tick();
setInterval(tick, 1000);
