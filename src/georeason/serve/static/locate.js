/* The locate page: choose or drop a photo, POST it to /v1/locate, show the reasoning, the
 * place hierarchy, the coordinates and the pin (and, with EXIF GPS, the true point, the line
 * and the error in km). Every failure becomes a sentence in #error. Needs worldmap.js. */
(function () {
  "use strict";
  const TYPES = ["image/jpeg", "image/png", "image/webp"];
  const EXTENSIONS = /\.(jpe?g|png|webp)$/i;
  const CLIENT_TIMEOUT_S = 330; // a little over the server's default generation_timeout (300 s)
  const BUSY_RETRIES = 3;
  const LEVELS = ["continent", "country", "admin1", "city"];
  const LEVEL_NAMES = { continent: "Continent", country: "Country", admin1: "Region (admin1)", city: "City" };

  const $ = (id) => document.getElementById(id);
  const form = $("locate-form");
  const input = $("image");
  const button = $("locate");
  const status = $("status");
  const errorBox = $("error");
  const drop = $("drop");
  const preview = $("preview");
  let file = null;
  let busy = false;
  let map = null;
  let previewUrl = null;

  function showError(sentence) {
    errorBox.textContent = sentence;
    errorBox.hidden = false;
  }
  function clearError() {
    errorBox.hidden = true;
    errorBox.textContent = "";
  }
  function setBusy(on, text) {
    busy = on;
    button.disabled = on;
    button.textContent = on ? "Locating…" : "Locate";
    form.setAttribute("aria-busy", on ? "true" : "false");
    status.textContent = text || "";
  }

  function isImage(f) {
    return TYPES.includes(f.type) || (!f.type && EXTENSIONS.test(f.name));
  }

  function choose(f) {
    clearError();
    file = f || null;
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = null;
    preview.hidden = true;
    if (!file) return;
    if (!isImage(file)) {
      showError(`“${file.name}” is not an image this page takes: choose a JPEG, PNG or WebP photo.`);
      return;
    }
    previewUrl = URL.createObjectURL(file);
    preview.onerror = () => (preview.hidden = true); // the browser cannot show it: no broken icon
    preview.src = previewUrl;
    preview.alt = `The chosen photo, ${file.name}`;
    preview.hidden = false;
    $("drop-text").firstChild.textContent = `${file.name}. Drop another photo, or `;
  }

  input.addEventListener("change", () => choose(input.files[0]));
  for (const ev of ["dragenter", "dragover"]) {
    drop.addEventListener(ev, (e) => {
      e.preventDefault();
      drop.classList.add("over");
    });
  }
  for (const ev of ["dragleave", "drop"]) drop.addEventListener(ev, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    const f = e.dataTransfer && e.dataTransfer.files[0];
    if (!f) return;
    try {
      const dt = new DataTransfer(); // keep the input in step, so the no-JS form would send it too
      dt.items.add(f);
      input.files = dt.files;
    } catch (_) {
      /* older browsers: the dropped file is still used below */
    }
    choose(f);
  });

  /** The server's error object -> one sentence for a person. */
  function sentence(status, body, retryAfter) {
    const err = (body && body.error) || {};
    const msg = err.message || "";
    if (status === 413) {
      const limit = msg.match(/limit of ([\d,]+) bytes/);
      const mb = limit ? (Number(limit[1].replace(/,/g, "")) / 1048576).toFixed(1) : null;
      return `That photo is too large for this server${mb ? ` (the limit is ${mb} MB)` : ""}: send a smaller file.`;
    }
    if (status === 422 && err.param === "image") {
      return `The server could not read that file as an image (${msg.replace(/^image:\s*/, "")}). Choose a JPEG, PNG or WebP photo.`;
    }
    if (status === 422) return `The server refused the request: ${msg}`;
    if (status === 503 && /shutting down/.test(msg)) return "The server is shutting down. Try again in a moment.";
    if (status === 503) {
      return `The model is busy with other photos and no slot freed in time. Try again in ${retryAfter || 1} s or so.`;
    }
    if (status === 504) {
      return "The model took longer than the server allows (its generation timeout). Try again when it is less busy.";
    }
    if (status >= 500) return `The model failed on this photo: ${msg || "an internal error"}.`;
    return `The request failed (HTTP ${status})${msg ? `: ${msg}` : ""}.`;
  }

  async function post(data, signal) {
    const r = await fetch("/v1/locate", { method: "POST", body: data, signal });
    let body = null;
    try {
      body = await r.json();
    } catch (_) {
      body = null;
    }
    return { r, body };
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (busy) return; // no double submit (the button is disabled too)
    clearError();
    if (!file) {
      showError("Choose a photo first: drop it on the box or use the file button.");
      input.focus();
      return;
    }
    if (!isImage(file)) {
      showError(`“${file.name}” is not an image this page takes: choose a JPEG, PNG or WebP photo.`);
      return;
    }
    const data = new FormData();
    data.append("image", file, file.name);
    data.append("protocol", $("protocol").value);
    const started = performance.now();
    setBusy(true, "Locating… the model is reasoning about the photo.");
    const tick = setInterval(() => {
      const s = Math.round((performance.now() - started) / 1000);
      status.textContent = `Locating… ${s} s`;
    }, 1000);
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), CLIENT_TIMEOUT_S * 1000);
    try {
      for (let attempt = 0; ; attempt++) {
        const { r, body } = await post(data, abort.signal);
        if (r.ok && body) {
          render(body);
          status.textContent = `Done in ${((performance.now() - started) / 1000).toFixed(1)} s.`;
          return;
        }
        const retryAfter = Number(r.headers.get("Retry-After") || "1");
        const shutting = body && body.error && /shutting down/.test(body.error.message || "");
        if (r.status === 503 && !shutting && attempt < BUSY_RETRIES) {
          status.textContent = `The model is busy; retrying in ${retryAfter} s (${attempt + 1}/${BUSY_RETRIES})…`;
          await new Promise((ok) => setTimeout(ok, retryAfter * 1000 * (attempt + 1)));
          continue;
        }
        showError(sentence(r.status, body, retryAfter));
        status.textContent = "";
        return;
      }
    } catch (err) {
      status.textContent = "";
      if (err.name === "AbortError") {
        showError(`No answer after ${CLIENT_TIMEOUT_S} s: the server may be overloaded. Try again later.`);
      } else {
        showError("Could not reach the server. Is georeason serve still running?");
      }
    } finally {
      clearTimeout(timer);
      clearInterval(tick);
      busy = false;
      button.disabled = false;
      button.textContent = "Locate";
      form.setAttribute("aria-busy", "false");
    }
  });

  function fmt(lat, lon) {
    const ns = lat >= 0 ? "N" : "S";
    const ew = lon >= 0 ? "E" : "W";
    return `${Math.abs(lat).toFixed(4)}° ${ns}, ${Math.abs(lon).toFixed(4)}° ${ew}`;
  }

  function chain(text, spans) {
    const box = $("chain");
    box.replaceChildren();
    if (!text) {
      box.textContent = "(the answer holds no reasoning)";
      box.classList.add("muted");
      return;
    }
    box.classList.remove("muted");
    let at = 0;
    for (const s of spans || []) {
      if (s.start < at || s.end > text.length) continue;
      box.append(text.slice(at, s.start));
      const m = document.createElement("mark");
      m.className = `hl-${s.kind}`;
      m.textContent = text.slice(s.start, s.end);
      m.title = s.kind === "clue" ? "a clue the model names" : "a place of the answer";
      box.append(m);
      at = s.end;
    }
    box.append(text.slice(at));
  }

  function hierarchy(levels) {
    const body = $("hierarchy").querySelector("tbody");
    body.replaceChildren();
    for (const level of LEVELS) {
      const row = (levels || {})[level] || {};
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = LEVEL_NAMES[level];
      const said = document.createElement("td");
      said.textContent = row.said || "—";
      if (!row.said) said.classList.add("muted");
      const found = document.createElement("td");
      found.textContent = row.found || "—";
      if (!row.found) found.classList.add("muted");
      if (row.agree === true) found.classList.add("agree-yes");
      if (row.agree === false) {
        found.classList.add("agree-no");
        found.title = "the coordinates fall elsewhere than the model's words say";
      }
      tr.append(th, said, found);
      body.append(tr);
    }
  }

  function render(res) {
    $("result").hidden = false;
    chain(res.reasoning, res.highlights);
    hierarchy(res.levels);
    $("answer").textContent = res.answer || "";
    const warnings = $("warnings");
    warnings.replaceChildren();
    for (const w of res.warnings || []) {
      const li = document.createElement("li");
      li.textContent = w;
      warnings.append(li);
    }
    const has = res.lat !== null && res.lat !== undefined && res.lon !== null && res.lon !== undefined;
    const truth = res.exif_gps;
    const how = res.coordinates_from === "geocoded" ? " (placed from the names it gives)" : "";
    $("coords").textContent = has
      ? `${fmt(res.lat, res.lon)}${how}`
      : "No coordinates: the answer names no place the gazetteer knows.";
    const km = $("error-km");
    if (truth && res.error_km !== null && res.error_km !== undefined) {
      km.replaceChildren("Off by ");
      const s = document.createElement("strong");
      s.textContent = `${Math.round(res.error_km).toLocaleString("en")} km`;
      km.append(s, ` from the photo's GPS (${fmt(truth.lat, truth.lon)}).`);
      km.hidden = false;
    } else if (truth) {
      km.textContent = `The photo's GPS: ${fmt(truth.lat, truth.lon)}.`;
      km.hidden = false;
    } else {
      km.hidden = true;
    }
    drawMap(has ? [res.lat, res.lon] : null, truth ? [truth.lat, truth.lon] : null, res.error_km);
  }

  function drawMap(pred, truth, errorKm) {
    if (!map) map = new WorldMap($("map"), { label: "World map with the predicted place" });
    map.clear();
    const legend = $("legend");
    legend.replaceChildren();
    const key = (cls, text) => {
      const sw = document.createElement("span");
      sw.className = "sw";
      sw.style.background = cls;
      legend.append(sw, text);
    };
    const shown = [];
    if (pred && truth) {
      map.line(truth, pred, { label: `${Math.round(errorKm)} km`, kind: "error" });
    }
    if (truth) {
      map.pin(truth[0], truth[1], { kind: "true", label: "the photo's GPS" });
      key("var(--true)", "the photo's GPS");
      shown.push(truth);
    }
    if (pred) {
      map.pin(pred[0], pred[1], { kind: "predicted", label: "the model's answer" });
      key("var(--pred)", "the model's answer");
      shown.push(pred);
    }
    if (pred && truth) legend.append(` · dashed: ${Math.round(errorKm).toLocaleString("en")} km`);
    map.ready.then(() => (shown.length ? map.fit(shown, { padDeg: 12 }) : map.reset())).catch(() => {
      legend.append(" (the map outlines could not be loaded)");
    });
  }
})();
