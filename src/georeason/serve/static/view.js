/* view.js — the page of `georeason view RUN_DIR` (georeason/serve/view.py has the API).
 *
 * The server filters, sorts and pages the rows; the browser holds one page of the list,
 * the map's compact point arrays (/api/points) and the row numbers the filters match.
 * The map (worldmap.js) draws every answer in a few SVG paths: lines true -> predicted and
 * the predicted dots, one path per error band, so 12,000 rows cost a handful of elements.
 * When everything is drawn the body gets data-ready="1" (the tests and the benchmark wait for it).
 */
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const PAGE = 50;
  const TRUE_COLOR = "#1d2430";
  const state = { offset: 0, sort: "index", order: "asc", total: 0, selected: null, filterKey: null };
  let summary = null;
  let points = null;
  let map = null;
  let mapLayers = [];
  let selectedMarks = [];

  async function getJSON(url) {
    let r;
    try {
      r = await fetch(url);
    } catch (e) {
      throw new Error("The server does not answer: is `georeason view` still running?");
    }
    let body = null;
    try {
      body = await r.json();
    } catch (e) {
      body = null;
    }
    if (!r.ok) throw new Error((body && body.error) || `The server answered HTTP ${r.status}.`);
    return body;
  }

  function showError(message) {
    const box = $("error");
    box.textContent = message;
    box.hidden = !message;
  }

  function text(tag, value, attrs) {
    const node = document.createElement(tag);
    if (value !== undefined && value !== null) node.textContent = String(value);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    return node;
  }

  const fmtKm = (d) => (d === null || d === undefined ? "—" : d.toLocaleString("en-US", { maximumFractionDigits: 1 }));

  // ------------------------------------------------------------------ summary

  function renderSummary(s) {
    const run = s.run || {};
    $("title").textContent = `${run.model || "model"} on ${run.benchmark || "benchmark"}`;
    document.title = `georeason view · ${run.model || ""} on ${run.benchmark || ""}`;
    let line = `${s.n_records.toLocaleString("en-US")} images`;
    if (s.n_expected !== null && s.n_expected !== undefined) {
      line += ` of ${s.n_expected.toLocaleString("en-US")}${s.complete ? "" : " (partial run)"}`;
    }
    line += ` · protocol ${run.protocol} · backend ${run.backend} · ${s.dir}`;
    $("run-line").textContent = line;

    const head = document.querySelector("#distance-table thead tr");
    head.replaceChildren(...s.distance_table.header.map((h) => text("th", h, { scope: "col" })));
    const body = document.querySelector("#distance-table tbody");
    body.replaceChildren(
      ...s.distance_table.rows.map((cells) => {
        const tr = document.createElement("tr");
        cells.forEach((c, k) => tr.appendChild(text(k ? "td" : "th", c, k ? {} : { scope: "row" })));
        return tr;
      })
    );
    const f = s.failures;
    $("failures").textContent =
      `Failures (counted as misses): ${f.total} — image ${f.by_kind.image}, backend ${f.by_kind.backend}, ` +
      `no usable location ${f.by_kind.parse}; ${f.n_format_failures} of ${f.n_answers} answers break the format.`;

    const band = $("f-band");
    for (const b of s.bands) band.appendChild(text("option", `${b.label} (${b.n})`, { value: b.band }));
    const cont = $("f-continent");
    for (const c of s.continents) cont.appendChild(text("option", `${c.name} (${c.n})`, { value: c.code }));
    const country = $("f-country");
    for (const c of s.countries) country.appendChild(text("option", `${c.name} (${c.n})`, { value: c.code || c.name }));

    const legend = $("legend");
    legend.replaceChildren();
    for (const b of s.bands) {
      const sw = text("span", null, { class: "sw", style: `background:${b.color}` });
      legend.append(sw, `${b.label} ${b.n.toLocaleString("en-US")}`);
    }
  }

  const continentName = (code) => (summary.continents.find((c) => c.code === code) || { name: code }).name;
  const bandOf = (k) => summary.bands[k] || { color: "#888", label: "?" };

  // ------------------------------------------------------------------ map

  function drawMap(indices) {
    for (const g of mapLayers) g.remove();
    mapLayers = [];
    const P = points;
    const lines = [];
    const dots = [];
    const truth = [];
    for (const i of indices) {
      const t = [P.true_lat[i], P.true_lon[i]];
      if (t[0] === null || t[1] === null) continue;
      const color = bandOf(P.band[i]).color;
      truth.push({ lat: t[0], lon: t[1], color: P.pred_lat[i] === null ? color : TRUE_COLOR, i });
      if (P.pred_lat[i] === null || P.pred_lon[i] === null) continue;
      lines.push({ a: t, b: [P.pred_lat[i], P.pred_lon[i]], color });
      dots.push({ lat: P.pred_lat[i], lon: P.pred_lon[i], color, i });
    }
    const open = (item) => openRow(item.i, true);
    mapLayers.push(map.lines(lines, { width: 1 }));
    mapLayers.push(map.points(truth, { size: 3, onClick: open }));
    mapLayers.push(map.points(dots, { size: 4, onClick: open }));
    const box = $("map");
    box.dataset.points = String(truth.length);
    box.dataset.lines = String(lines.length);
    box.setAttribute("aria-description", `${truth.length} answers drawn, ${lines.length} with a prediction`);
  }

  function markSelected(row) {
    for (const m of selectedMarks) m.remove();
    selectedMarks = [];
    const t = row.truth || {};
    const p = row.parse || {};
    if (typeof t.lat === "number" && typeof t.lon === "number") {
      if (typeof p.pred_lat === "number" && typeof p.pred_lon === "number") {
        selectedMarks.push(map.line([t.lat, t.lon], [p.pred_lat, p.pred_lon], { label: `${fmtKm(row.distance_km)} km` }));
        selectedMarks.push(map.pin(p.pred_lat, p.pred_lon, { kind: "predicted", label: "the answer" }));
      }
      selectedMarks.push(map.pin(t.lat, t.lon, { kind: "true", label: "the true place" }));
    }
  }

  // ------------------------------------------------------------------ list

  function filters() {
    const p = new URLSearchParams();
    const band = $("f-band").value;
    if (band !== "") p.append("band", band);
    for (const [id, key] of [["f-continent", "continent"], ["f-country", "country"], ["f-status", "status"], ["f-q", "q"]]) {
      const v = $(id).value.trim();
      if (v !== "") p.set(key, v);
    }
    return p;
  }

  async function loadRows() {
    const p = filters();
    const key = p.toString();
    const wantIndices = key !== state.filterKey; // the map changes only when the filters do
    p.set("offset", state.offset);
    p.set("limit", PAGE);
    p.set("sort", state.sort);
    p.set("order", state.order);
    if (wantIndices) p.set("indices", "true");
    const data = await getJSON(`/api/rows?${p}`);
    state.total = data.total;
    renderRows(data);
    if (wantIndices) {
      state.filterKey = key;
      drawMap(data.indices);
    }
  }

  function renderRows(data) {
    const body = document.querySelector("#rows tbody");
    body.replaceChildren(
      ...data.rows.map((r) => {
        const tr = text("tr", null, { "data-i": r.i, "data-band": r.band });
        if (r.i === state.selected) tr.classList.add("selected");
        tr.appendChild(text("td", r.i + 1, { class: "num" }));
        const idCell = document.createElement("td");
        const b = text("button", r.id, { type: "button", class: "open", "aria-label": `Open ${r.id}` });
        b.addEventListener("click", () => openRow(r.i, false));
        idCell.appendChild(b);
        tr.appendChild(idCell);
        tr.appendChild(text("td", r.true || "—"));
        tr.appendChild(text("td", r.answer || (r.status === "ok" ? "—" : ""), r.format_ok === false ? { class: "bad" } : {}));
        const km = text("td", fmtKm(r.distance_km), { class: "num" });
        km.prepend(text("span", null, { class: "sw", style: `background:${bandOf(r.band).color}`, title: bandOf(r.band).label }));
        tr.appendChild(km);
        const st = text("td", r.status === "ok" ? "ok" : r.status, r.error ? { title: r.error } : {});
        if (r.status !== "ok") st.classList.add("bad");
        tr.appendChild(st);
        tr.addEventListener("click", (e) => {
          if (e.target.tagName !== "BUTTON") openRow(r.i, false);
        });
        return tr;
      })
    );
    const first = data.total ? data.offset + 1 : 0;
    const last = data.offset + data.rows.length;
    $("count").textContent = `${data.total.toLocaleString("en-US")} of ${summary.n_records.toLocaleString("en-US")} answers match; rows ${first}–${last}.`;
    const pages = Math.max(1, Math.ceil(data.total / PAGE));
    $("page").textContent = `page ${Math.floor(data.offset / PAGE) + 1} of ${pages}`;
    $("prev").disabled = data.offset === 0;
    $("next").disabled = last >= data.total;
    for (const b of document.querySelectorAll("button.sort")) {
      const on = b.dataset.sort === state.sort;
      b.closest("th").setAttribute("aria-sort", on ? (state.order === "asc" ? "ascending" : "descending") : "none");
    }
  }

  // ------------------------------------------------------------------ one row

  async function openRow(i, fromMap) {
    let row;
    try {
      row = await getJSON(`/api/rows/${i}`);
    } catch (e) {
      showError(e.message);
      return;
    }
    state.selected = i;
    for (const tr of document.querySelectorAll("#rows tbody tr")) tr.classList.toggle("selected", Number(tr.dataset.i) === i);
    const box = $("detail");
    box.hidden = false;
    box.dataset.i = String(i);
    $("detail-title").textContent = `${row.id} · ${row.distance_km === null ? "no prediction" : fmtKm(row.distance_km) + " km"}`;
    const img = $("photo");
    if (row.image_url) {
      img.src = row.image_url;
      img.alt = `The photo of ${row.id}`;
      img.hidden = false;
      $("photo-note").textContent = row.true ? `Taken at ${row.true}` : "";
    } else {
      img.removeAttribute("src");
      img.hidden = true;
      $("photo-note").textContent = `No image: ${row.image_note || "unknown reason"}`;
    }
    const err = $("detail-error");
    err.textContent = row.full_error ? `${row.error_kind || "error"}: ${row.full_error}` : "";
    err.hidden = !row.full_error;
    const p = row.parse || {};
    const t = row.truth || {};
    const fields = [
      ["continent", p.pred_continent, t.continent || continentName(row.continent)],
      ["country", [p.pred_country, p.pred_country_code].filter(Boolean).join(" · "), [t.country, t.country_code || row.country_code].filter(Boolean).join(" · ")],
      ["admin1", p.pred_admin1, t.admin1],
      ["city", p.pred_city, t.city],
      ["coordinates", p.pred_lat === null || p.pred_lat === undefined ? null : `${p.pred_lat}, ${p.pred_lon}`, `${t.lat}, ${t.lon}`],
      ["coordinates from", p.coord_source, null],
      ["format ok", p.format_ok === undefined || p.format_ok === null ? null : p.format_ok ? "yes" : "no", null],
      ["parse notes", (p.parse_errors || []).join("; "), null],
    ];
    $("parse").querySelector("tbody").replaceChildren(
      ...fields.map(([k, a, b]) => {
        const tr = document.createElement("tr");
        tr.append(text("th", k, { scope: "row" }), text("td", a || "—"), text("td", b || ""));
        return tr;
      })
    );
    $("completion").textContent = row.completion === null || row.completion === undefined ? "(no answer)" : row.completion;
    markSelected(row);
    if (fromMap) box.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  // ------------------------------------------------------------------ wiring

  function wire() {
    const refilter = () => {
      state.offset = 0;
      loadRows().catch((e) => showError(e.message));
    };
    for (const id of ["f-band", "f-continent", "f-country", "f-status"]) $(id).addEventListener("change", refilter);
    let timer = null;
    $("f-q").addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(refilter, 250);
    });
    $("filters").addEventListener("submit", (e) => {
      e.preventDefault();
      refilter();
    });
    $("filters").addEventListener("reset", () => setTimeout(refilter, 0));
    $("prev").addEventListener("click", () => {
      state.offset = Math.max(0, state.offset - PAGE);
      loadRows().catch((e) => showError(e.message));
    });
    $("next").addEventListener("click", () => {
      state.offset += PAGE;
      loadRows().catch((e) => showError(e.message));
    });
    for (const b of document.querySelectorAll("button.sort")) {
      b.addEventListener("click", () => {
        if (state.sort === b.dataset.sort) state.order = state.order === "asc" ? "desc" : "asc";
        else [state.sort, state.order] = [b.dataset.sort, "asc"];
        state.offset = 0;
        loadRows().catch((e) => showError(e.message));
      });
    }
  }

  async function main() {
    map = new WorldMap($("map"), { label: "Map of every answer: true place to predicted place" });
    try {
      const [s, pts] = await Promise.all([getJSON("/api/summary"), getJSON("/api/points")]);
      summary = s;
      points = pts;
      renderSummary(s);
      wire();
      await loadRows();
      await map.ready.catch(() => showError("The map's country outlines could not be loaded; the points are drawn without them."));
    } catch (e) {
      showError(e.message);
    } finally {
      document.body.dataset.ready = "1";
    }
  }

  document.addEventListener("DOMContentLoaded", main);
})();
