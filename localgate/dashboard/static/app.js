// The localgate spend dashboard: reads the daemon's JSON (/localgate/overview, /localgate/spend,
// /localgate/log), draws the charts as SVG, polls for changes, and offers the tray's controls.
// No library, no build step; money arrives as integer microdollars, times as UTC text.
"use strict";

const POLL_MS = 3000;
const SVGNS = "http://www.w3.org/2000/svg";
const PALETTE = ["#4f46e5", "#0ea5e9", "#10b981", "#f59e0b", "#ef4444", "#8b5cf6", "#14b8a6",
                 "#f97316"];
const OTHER = "(other)";
const OTHER_COLOR = "#9ca3af";
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                "Dec"];
const $ = (id) => document.getElementById(id);
const seen = {};       // the last JSON drawn per panel: redraw only what changed
let stopped = false;   // the session ended: stop polling

// ---- formatting ------------------------------------------------------------------------------

// Dollars from microdollars, as the CLI prints them: cents from 1 cent up (half to even),
// otherwise every digit that is there ($0.000123).
function dollars(micros) {
  if (micros === null || micros === undefined) return "–";
  if (micros === 0) return "$0.00";
  const sign = micros < 0 ? "-" : "";
  const a = Math.abs(micros);
  if (a >= 10000) {
    let cents = Math.floor(a / 10000);
    const rest = a % 10000;
    if (rest > 5000 || (rest === 5000 && cents % 2 === 1)) cents += 1;
    const whole = Math.floor(cents / 100).toLocaleString("en-US");
    return `${sign}$${whole}.${String(cents % 100).padStart(2, "0")}`;
  }
  return `${sign}$0.${String(a).padStart(6, "0").replace(/0+$/, "")}`;
}

function usd(value) {  // a limit in USD (a float from config.toml)
  return dollars(Math.round(value * 1e6));
}

function axisDollars(micros) {  // "$0", "$0.30", "$0.025", "$12"
  const text = (micros / 1e6).toFixed(6).replace(/\.?0+$/, "");
  const [whole, frac] = text.split(".");
  return frac === undefined ? `$${whole}` : `$${whole}.${frac.padEnd(2, "0")}`;
}

function limitText(value) {  // a limit for its input: 2 -> "2.00", 0.125 -> "0.125"
  return Number.isInteger(Math.round(value * 1e6) / 1e4) ? value.toFixed(2) : String(value);
}

const pad = (n) => String(n).padStart(2, "0");

function localTime(ts) {  // "2026-11-26T09:30:00.123Z" -> the browser's local time
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return ts || "–";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
         `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function dayLabel(iso) {  // "2026-11-03" -> "Nov 3"
  const [, m, d] = iso.split("-").map(Number);
  return `${MONTHS[m - 1]} ${d}`;
}

const int = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));

// ---- DOM helpers -----------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-") || k === "title") e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

function s(tag, attrs = {}, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function changed(key, value) {
  const text = JSON.stringify(value);
  if (seen[key] === text) return false;
  seen[key] = text;
  return true;
}

function colorOf(models) {
  const map = {};
  models.forEach((m, i) => { map[m] = m === OTHER ? OTHER_COLOR : PALETTE[i % PALETTE.length]; });
  return map;
}

// ---- the daemon's JSON -----------------------------------------------------------------------

class SessionEnded extends Error {}

async function api(path, body) {
  const init = {credentials: "same-origin", headers: {Accept: "application/json"}};
  if (body !== undefined) {
    init.method = "POST";
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  if (r.status === 401) throw new SessionEnded();
  const doc = await r.json().catch(() => null);
  if (!r.ok) throw new Error(doc && doc.error ? doc.error.message : `HTTP ${r.status}`);
  return doc;
}

function banner(text) {
  const b = $("error-banner");
  b.hidden = !text;
  b.textContent = text || "";
}

function sessionEnded() {
  stopped = true;
  banner("This dashboard session has ended. Run `localgate dashboard` for a new login link.");
  $("state").textContent = "signed out";
  $("state").className = "pill down";
}

// ---- header and KPI cards --------------------------------------------------------------------

function drawState(ov) {
  $("where").textContent = `${location.origin}/v1`;
  const pill = $("state");
  pill.textContent = ov.paused ? "Paused" : "Serving";
  pill.className = ov.paused ? "pill paused" : "pill";
  const btn = $("pause");
  btn.disabled = false;
  btn.textContent = ov.paused ? "Resume" : "Pause";
  btn.className = ov.paused ? "btn resume" : "btn";
  $("paused-banner").hidden = !ov.paused;
  $("footer").textContent = `localgate ${ov.version}`;
}

function drawMeter(id, spent, limitUsd) {
  const svg = $(id);
  svg.replaceChildren(s("rect", {x: 0, y: 0, width: 100, height: 6, fill: "#eef0f3"}));
  if (limitUsd === null || limitUsd === undefined) return;
  const share = limitUsd > 0 ? spent / (limitUsd * 1e6) : 1;
  const color = share >= 1 ? "#c0262d" : share >= 0.8 ? "#d97706" : "#12805c";
  svg.append(s("rect", {x: 0, y: 0, width: Math.min(100, share * 100).toFixed(2), height: 6,
                        fill: color, class: "meter-fill", "data-share": share.toFixed(4)}));
}

function drawKpi(which, spent, limitUsd, period) {
  $(`${which}-spent`).textContent = dollars(spent);
  drawMeter(`${which}-meter`, spent, limitUsd);
  const sub = $(`${which}-limit`);
  if (limitUsd === null || limitUsd === undefined) {
    sub.textContent = `no ${period} limit`;
  } else {
    const left = Math.round(limitUsd * 1e6) - spent;
    sub.textContent = `of ${usd(limitUsd)} ${period} limit · ` +
      (left >= 0 ? `${dollars(left)} left` : `${dollars(-left)} over`);
  }
}

function drawDefault(ov) {
  $("default-current").textContent = ov.default_model;
  const sel = $("model-select");
  if (document.activeElement === sel) return;
  const groups = [["Auto", ov.models.auto], ["Popular", ov.models.popular],
                  ["Recently used", ov.models.recent]];
  const listed = groups.some(([, ids]) => ids.includes(ov.default_model));
  sel.replaceChildren();
  if (!listed) sel.append(h("option", {value: ov.default_model}, ov.default_model));
  for (const [label, ids] of groups) {
    if (!ids.length) continue;
    const g = h("optgroup", {label});
    for (const id of ids) g.append(h("option", {value: id}, id));
    sel.append(g);
  }
  sel.value = ov.default_model;
}

function drawLimits(ov) {
  for (const [id, value] of [["daily", ov.limits.daily_usd], ["monthly", ov.limits.monthly_usd]]) {
    const input = $(id);
    if (document.activeElement !== input && !input.dataset.dirty) {
      input.value = value === null ? "" : limitText(value);
    }
  }
}

// ---- spend per day, stacked by model ---------------------------------------------------------

function niceStep(raw) {
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

function drawDaily(ov) {
  const W = 1100, H = 250, L = 64, R = 10, T = 10, B = 30;
  const days = ov.days, series = ov.daily;
  const totals = days.map((_, i) => series.reduce((t, x) => t + x.cost_microdollars[i], 0));
  const max = Math.max(0, ...totals);
  const step = max > 0 ? niceStep(max / 4) : 2500;
  const top = max > 0 ? Math.ceil(max / step) * step : step * 4;
  const y = (v) => T + (H - T - B) * (1 - v / top);
  const band = (W - L - R) / days.length, barW = Math.max(3, band * 0.68);
  const svg = s("svg", {viewBox: `0 0 ${W} ${H}`, role: "img",
                        "aria-label": "spend per day for the last 30 days, stacked by model"});
  for (let v = 0; v <= top + 1e-9; v += step) {
    svg.append(s("line", {x1: L, x2: W - R, y1: y(v), y2: y(v), class: "gridline"}));
    svg.append(s("text", {x: L - 8, y: y(v) + 4, "text-anchor": "end", class: "ylabel"},
                 axisDollars(v)));
  }
  svg.append(s("line", {x1: L, x2: W - R, y1: y(0), y2: y(0), class: "axis"}));
  const colors = colorOf(series.map((x) => x.model));
  days.forEach((day, i) => {
    const x = L + i * band + (band - barW) / 2;
    let base = 0;
    for (const x1 of series) {
      const v = x1.cost_microdollars[i];
      if (!v) continue;
      const y0 = y(base), y1 = y(base + v);
      const rect = s("rect", {x: x.toFixed(2), y: (y0 - Math.max(1, y0 - y1)).toFixed(2),
                              width: barW.toFixed(2), height: Math.max(1, y0 - y1).toFixed(2),
                              fill: colors[x1.model], class: "seg", "data-day": day,
                              "data-model": x1.model, "data-micros": v});
      rect.append(s("title", {}, `${dayLabel(day)} · ${x1.model} · ${dollars(v)}`));
      svg.append(rect);
      base += v;
    }
    if ((days.length - 1 - i) % 5 === 0) {
      svg.append(s("text", {x: (L + i * band + band / 2).toFixed(2), y: H - 10,
                            "text-anchor": "middle", class: "xlabel", "data-day": day},
                   dayLabel(day)));
    }
  });
  if (max === 0) {
    svg.append(s("text", {x: (L + W - R) / 2, y: (H - B) / 2, "text-anchor": "middle",
                          class: "empty-note"}, "No spend in the last 30 days"));
  }
  $("daily-chart").replaceChildren(svg);
  const legend = $("legend");
  legend.replaceChildren(...series.map((x) => {
    const sw = s("svg", {viewBox: "0 0 10 10"});
    sw.append(s("rect", {width: 10, height: 10, rx: 2, fill: colors[x.model]}));
    const total = x.cost_microdollars.reduce((a, b) => a + b, 0);
    return h("span", {"data-model": x.model, title: dollars(total)}, sw, x.model);
  }));
}

// ---- horizontal bars: by client, by route, TTFT ----------------------------------------------

function hbar(label, fraction, color, value, data, second) {
  const bar = s("svg", {viewBox: "0 0 100 12", preserveAspectRatio: "none"});
  bar.append(s("rect", {width: 100, height: 12, rx: 2, fill: "#eef0f3"}));
  if (second) bar.append(s("rect", {width: (second.fraction * 100).toFixed(2), height: 12, rx: 2,
                                    fill: second.color, class: "bar2"}));
  bar.append(s("rect", {width: (fraction * 100).toFixed(2), height: 12, rx: 2, fill: color,
                        class: "bar"}));
  const row = h("div", {class: "hbar", ...data}, h("span", {class: "label", title: label}, label),
                bar, value);
  return row;
}

function drawBreakdown(id, doc) {
  const box = $(id), by = doc.by, rows = doc.rows;
  if (!rows.length) {
    box.replaceChildren(h("div", {class: "none"}, "Nothing logged in the last 30 days."));
    return;
  }
  const max = Math.max(...rows.map((r) => r.cost_microdollars));
  box.replaceChildren(...rows.slice(0, 8).map((r) => {
    const key = r[by] || "(none)";
    const value = h("span", {class: "value"}, h("b", {}, dollars(r.cost_microdollars)),
                    ` · ${int(r.requests)} req`);
    return hbar(key, max > 0 ? r.cost_microdollars / max : 0, "#4f46e5", value,
                {"data-key": key, "data-micros": r.cost_microdollars,
                 "data-requests": r.requests});
  }));
}

function drawTtft(rows) {
  const box = $("ttft");
  if (!rows.length) {
    box.replaceChildren(h("div", {class: "none"}, "No completed requests in the last 30 days."));
    return;
  }
  const max = Math.max(...rows.map((r) => r.p95_ms), 1);
  box.replaceChildren(...rows.slice(0, 8).map((r) => {
    const value = h("span", {class: "value"}, h("b", {}, `${int(r.p50_ms)} ms`),
                    ` · p95 ${int(r.p95_ms)} ms`);
    return hbar(r.model, r.p50_ms / max, "#0ea5e9", value,
                {"data-model": r.model, "data-p50": r.p50_ms, "data-p95": r.p95_ms,
                 title: `${r.requests} requests`},
                {fraction: r.p95_ms / max, color: "#bae6fd"});
  }));
}

// ---- latest requests -------------------------------------------------------------------------

function drawLog(rows) {
  const body = $("requests").tBodies[0];
  $("requests-empty").hidden = rows.length > 0;
  body.replaceChildren(...rows.map((r) => {
    const model = r.resolved_model || r.model || "–";
    const status = h("span", {class: `badge ${r.status}`,
                              title: r.error || `HTTP ${r.http_status ?? "–"}`}, r.status);
    return h("tr", {"data-id": r.id},
      h("td", {class: "time", title: r.ts}, localTime(r.ts)),
      h("td", {class: "model", title: r.model && r.model !== model ? `asked for ${r.model}` : ""},
        model),
      h("td", {class: "route"}, r.route || "–"),
      h("td", {class: "num"}, int(r.prompt_tokens)),
      h("td", {class: "num"}, int(r.completion_tokens)),
      h("td", {class: "num cost"}, dollars(r.cost_microdollars)),
      h("td", {class: "num ttft"}, r.ttft_ms === null ? "–" : `${int(r.ttft_ms)} ms`),
      h("td", {}, status));
  }));
}

// ---- polling ---------------------------------------------------------------------------------

async function refresh() {
  if (stopped) return;
  try {
    const [ov, log] = await Promise.all([api("/localgate/overview"),
                                         api("/localgate/log?limit=25")]);
    const since = encodeURIComponent(ov.since);
    const [byClient, byRoute] = await Promise.all([
      api(`/localgate/spend?since=${since}&by=client`),
      api(`/localgate/spend?since=${since}&by=route`)]);
    banner("");
    sessionStorage.removeItem("localgate-gate-retried");
    drawState(ov);
    drawKpi("today", ov.spent.today_microdollars, ov.limits.daily_usd, "daily");
    drawKpi("month", ov.spent.month_microdollars, ov.limits.monthly_usd, "monthly");
    if (changed("models", [ov.default_model, ov.models])) drawDefault(ov);
    drawLimits(ov);
    if (changed("daily", [ov.days, ov.daily])) drawDaily(ov);
    if (changed("client", byClient.rows)) drawBreakdown("by-client", byClient);
    if (changed("route", byRoute.rows)) drawBreakdown("by-route", byRoute);
    if (changed("ttft", ov.ttft)) drawTtft(ov.ttft);
    if (changed("log", log)) drawLog(log);
    $("updated").textContent = `updated ${localTime(new Date().toISOString()).slice(11)}`;
    document.body.dataset.loaded = "1";
  } catch (err) {
    if (err instanceof SessionEnded) sessionEnded();
    else {
      banner(`Cannot reach the localgate daemon (${err.message}); retrying…`);
      $("state").textContent = "unreachable";
      $("state").className = "pill down";
    }
  }
}

function loop() {
  refresh().finally(() => { if (!stopped) setTimeout(loop, POLL_MS); });
}

// ---- controls --------------------------------------------------------------------------------

function say(id, text, ok) {
  const m = $(id);
  m.textContent = text;
  m.className = ok ? "msg ok" : "msg bad";
}

async function act(msgId, fn) {
  try {
    await fn();
  } catch (err) {
    if (err instanceof SessionEnded) sessionEnded();
    else if (msgId) say(msgId, err.message, false);
    else banner(err.message);
    return;
  }
  await refresh();
}

function wire() {
  $("pause").addEventListener("click", () => act(null, async () => {
    const paused = $("pause").textContent === "Pause";
    $("pause").disabled = true;
    await api(paused ? "/localgate/pause" : "/localgate/resume", {});
  }));
  $("model-select").addEventListener("change", () => {
    $("model-input").value = $("model-select").value;
  });
  $("default-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const model = $("model-input").value.trim() || $("model-select").value;
    act("default-msg", async () => {
      const r = await api("/localgate/default", {model});
      $("model-input").value = "";
      seen.models = "";
      say("default-msg", `Default model set to ${r.default_model}.`, true);
    });
  });
  for (const id of ["daily", "monthly"]) {
    $(id).addEventListener("input", () => { $(id).dataset.dirty = "1"; });
  }
  $("limits-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const value = (id) => ($(id).value.trim() === "" ? null : Number($(id).value));
    act("limits-msg", async () => {
      const r = await api("/localgate/limits", {daily_usd: value("daily"),
                                                monthly_usd: value("monthly")});
      for (const id of ["daily", "monthly"]) delete $(id).dataset.dirty;
      say("limits-msg", `Saved: daily ${r.daily_usd === null ? "none" : usd(r.daily_usd)}, ` +
          `monthly ${r.monthly_usd === null ? "none" : usd(r.monthly_usd)}.`, true);
    });
  });
}

wire();
loop();
