/* worldmap.js — an offline world map: equirectangular SVG, no tiles, no CDN, nothing fetched
 * but the outlines from the server that serves this file (GET /map/outlines.json, a GeoJSON
 * MultiPolygon of the Natural Earth country outlines, simplified; see georeason/serve/pages.py).
 *
 * API (everything takes latitude, longitude in degrees):
 *
 *   const map = new WorldMap(element, {outlines: "/map/outlines.json", label: "World map"});
 *   await map.ready;                              // the outlines are drawn (the map works before, blank)
 *   map.pin(lat, lon, {label, kind})              // a pin (kind "predicted" | "true" | any CSS suffix)
 *   map.line([lat, lon], [lat, lon], {label, kind})   // a line between two points (shorter way round)
 *   map.points(items, {onClick, size})            // many points in one layer: items = [{lat, lon,
 *                                                 //   color?, label?}, ...]; onClick(item, index)
 *   map.lines(items, {width})                     // many lines in one layer: [{a: [lat, lon],
 *                                                 //   b: [lat, lon], color?}, ...]
 *   map.fit([[lat, lon], ...], {padDeg})          // zoom so these points show
 *   map.zoomBy(factor), map.reset(), map.clear()  // clear() removes pins, lines and layers
 *
 * Interaction: wheel or the +/− buttons zoom; drag pans; with the map focused the keys + − zoom,
 * the arrows pan, 0 resets. Pins, dots and line widths keep their size on screen at any zoom
 * (dots are zero-length round-capped strokes with non-scaling width: one <path> per colour,
 * so 12,000 points cost a few elements). Styling: classes wm-* (see locate.css).
 */
(function (root) {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";
  const W = 360;
  const H = 180;
  const MAX_ZOOM = 64;

  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }
  const X = (lon) => +(lon + 180).toFixed(4);
  const Y = (lat) => +(90 - lat).toFixed(4);

  function segments(a, b) {
    // The shorter way round: a line across the antimeridian is drawn as two pieces.
    const [lat1, lon1] = a;
    const [lat2, lon2] = b;
    if (Math.abs(lon2 - lon1) <= 180) return [[[lat1, lon1], [lat2, lon2]]];
    const east = lon1 > lon2; // a is east of b: going east from a crosses +180
    const span = 360 - Math.abs(lon2 - lon1);
    const toEdge = east ? 180 - lon1 : lon1 + 180;
    const latEdge = lat1 + ((lat2 - lat1) * toEdge) / span;
    return [
      [[lat1, lon1], [latEdge, east ? 180 : -180]],
      [[latEdge, east ? -180 : 180], [lat2, lon2]],
    ];
  }

  class WorldMap {
    constructor(element, options) {
      const opts = Object.assign({ outlines: "/map/outlines.json", label: "World map" }, options || {});
      this.element = element;
      element.classList.add("wm");
      this.svg = el("svg", {
        viewBox: `0 0 ${W} ${H}`,
        class: "wm-svg",
        role: "img",
        "aria-label": opts.label,
        preserveAspectRatio: "xMidYMid meet",
      });
      this.svg.setAttribute("tabindex", "0");
      element.appendChild(this.svg);
      el("rect", { x: 0, y: 0, width: W, height: H, class: "wm-sea" }, this.svg);
      this.land = el("path", { class: "wm-land", d: "" }, this.svg);
      this.layers = el("g", { class: "wm-layers" }, this.svg);
      this.marks = el("g", { class: "wm-marks" }, this.svg);
      this._pins = [];
      this._hits = [];
      this.view = { x: 0, y: 0, w: W, h: H };
      this._controls();
      this._interaction();
      this.ready = opts.outlines ? this._load(opts.outlines) : Promise.resolve();
    }

    async _load(url) {
      const r = await fetch(url);
      if (!r.ok) throw new Error(`map outlines: HTTP ${r.status}`);
      const geo = await r.json();
      const parts = [];
      for (const poly of geo.coordinates) {
        for (const ring of poly) {
          let d = "M";
          for (let i = 0; i < ring.length; i++) {
            d += (i ? "L" : "") + X(ring[i][0]) + " " + Y(ring[i][1]);
          }
          parts.push(d + "Z");
        }
      }
      this.land.setAttribute("d", parts.join(""));
    }

    _controls() {
      const box = document.createElement("div");
      box.className = "wm-controls";
      const button = (text, title, fn) => {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = text;
        b.title = title;
        b.setAttribute("aria-label", title);
        b.addEventListener("click", fn);
        box.appendChild(b);
      };
      button("+", "Zoom in", () => this.zoomBy(2));
      button("−", "Zoom out", () => this.zoomBy(0.5));
      button("⟲", "Whole world", () => this.reset());
      this.element.appendChild(box);
    }

    _interaction() {
      const svg = this.svg;
      svg.addEventListener(
        "wheel",
        (e) => {
          e.preventDefault();
          this.zoomBy(e.deltaY < 0 ? 1.25 : 0.8, this._toMap(e.clientX, e.clientY));
        },
        { passive: false }
      );
      let drag = null;
      svg.addEventListener("pointerdown", (e) => {
        drag = { x: e.clientX, y: e.clientY, view: Object.assign({}, this.view), moved: false };
        svg.setPointerCapture(e.pointerId);
      });
      svg.addEventListener("pointermove", (e) => {
        if (!drag) return;
        const rect = svg.getBoundingClientRect();
        const scale = Math.max(drag.view.w / rect.width, drag.view.h / rect.height);
        const dx = (e.clientX - drag.x) * scale;
        const dy = (e.clientY - drag.y) * scale;
        if (Math.abs(e.clientX - drag.x) + Math.abs(e.clientY - drag.y) > 3) drag.moved = true;
        this._setView(drag.view.x - dx, drag.view.y - dy, drag.view.w, drag.view.h);
      });
      const end = (e) => {
        if (drag && !drag.moved) this._click(e);
        drag = null;
      };
      svg.addEventListener("pointerup", end);
      svg.addEventListener("pointercancel", () => (drag = null));
      svg.addEventListener("keydown", (e) => {
        const step = this.view.w / 8;
        const keys = {
          "+": () => this.zoomBy(2),
          "=": () => this.zoomBy(2),
          "-": () => this.zoomBy(0.5),
          0: () => this.reset(),
          ArrowLeft: () => this._pan(-step, 0),
          ArrowRight: () => this._pan(step, 0),
          ArrowUp: () => this._pan(0, -step),
          ArrowDown: () => this._pan(0, step),
        };
        if (keys[e.key]) {
          e.preventDefault();
          keys[e.key]();
        }
      });
    }

    _toMap(clientX, clientY) {
      const p = this.svg.createSVGPoint();
      p.x = clientX;
      p.y = clientY;
      const q = p.matrixTransform(this.svg.getScreenCTM().inverse());
      return { x: q.x, y: q.y };
    }

    _pan(dx, dy) {
      this._setView(this.view.x + dx, this.view.y + dy, this.view.w, this.view.h);
    }

    _setView(x, y, w, h) {
      w = Math.min(W, Math.max(W / MAX_ZOOM, w));
      h = (w * H) / W;
      x = Math.min(W - w, Math.max(0, x));
      y = Math.min(H - h, Math.max(0, y));
      this.view = { x, y, w, h };
      this.svg.setAttribute("viewBox", `${x} ${y} ${w} ${h}`);
      this._scalePins();
    }

    /** Zoom by `factor` (> 1 in) about `center` ({x, y} in map units; default the view's centre). */
    zoomBy(factor, center) {
      const v = this.view;
      const c = center || { x: v.x + v.w / 2, y: v.y + v.h / 2 };
      const w = v.w / factor;
      const h = v.h / factor;
      this._setView(c.x - ((c.x - v.x) * w) / v.w, c.y - ((c.y - v.y) * h) / v.h, w, h);
    }

    reset() {
      this._setView(0, 0, W, H);
    }

    /** Zoom so that every [lat, lon] in `points` shows, with `padDeg` degrees around. */
    fit(points, options) {
      const pad = (options && options.padDeg) || 8;
      if (!points.length) return this.reset();
      const xs = points.map((p) => X(p[1]));
      const ys = points.map((p) => Y(p[0]));
      const x0 = Math.min(...xs) - pad;
      const x1 = Math.max(...xs) + pad;
      const y0 = Math.min(...ys) - pad;
      const y1 = Math.max(...ys) + pad;
      const w = Math.max(x1 - x0, ((y1 - y0) * W) / H);
      this._setView((x0 + x1) / 2 - w / 2, (y0 + y1) / 2 - (w * H) / W / 2, w, (w * H) / W);
    }

    _scalePins() {
      const k = (this.view.w / W) * 1.6; // pins ~16 px tall on an 800 px map
      for (const p of this._pins) p.g.setAttribute("transform", `translate(${p.x} ${p.y}) scale(${k})`);
    }

    /** A pin at (lat, lon); `kind` picks its style (class wm-pin-KIND). Returns its <g>. */
    pin(lat, lon, options) {
      const o = options || {};
      const g = el("g", { class: `wm-pin wm-pin-${o.kind || "predicted"}` }, this.marks);
      if (o.kind === "true") {
        el("circle", { r: 2.2, class: "wm-pin-head" }, g); // a ring: the truth
        el("circle", { r: 0.7, class: "wm-pin-dot" }, g);
      } else {
        el("path", { d: "M0 0 L-1.6 -3.2 A1.8 1.8 0 1 1 1.6 -3.2 Z", class: "wm-pin-head" }, g);
        el("circle", { cy: -4.3, r: 0.7, class: "wm-pin-dot" }, g);
      }
      if (o.label) el("title", {}, g).textContent = o.label;
      const entry = { g, x: X(lon), y: Y(lat) };
      this._pins.push(entry);
      this._scalePins();
      return g;
    }

    /** A line from a to b ([lat, lon] each), the shorter way round. Returns its <path>. */
    line(a, b, options) {
      const o = options || {};
      const d = segments(a, b)
        .map(([p, q]) => `M${X(p[1])} ${Y(p[0])}L${X(q[1])} ${Y(q[0])}`)
        .join("");
      const path = el("path", { d, class: `wm-line wm-line-${o.kind || "error"}` });
      this.marks.insertBefore(path, this.marks.firstChild); // under the pins
      if (o.label) el("title", {}, path).textContent = o.label;
      return path;
    }

    /** Many points in one layer: one <path> per colour. `onClick(item, index)` gets the nearest
     * point within a few pixels of a click. Returns the layer's <g>. */
    points(items, options) {
      const o = options || {};
      const size = o.size || 5;
      const g = el("g", { class: "wm-points" }, this.layers);
      const byColor = new Map();
      items.forEach((it) => {
        const c = it.color || "#d33";
        if (!byColor.has(c)) byColor.set(c, []);
        byColor.get(c).push(`M${X(it.lon)} ${Y(it.lat)}h0`);
      });
      for (const [color, parts] of byColor) {
        el("path", { d: parts.join(""), stroke: color, "stroke-width": size, class: "wm-dots" }, g);
      }
      if (o.onClick) this._hits.push({ items, fn: o.onClick, size, g });
      return g;
    }

    /** Many lines in one layer ([{a: [lat, lon], b: [lat, lon], color}]): one <path> per colour. */
    lines(items, options) {
      const o = options || {};
      const g = el("g", { class: "wm-lines" }, this.layers);
      const byColor = new Map();
      items.forEach((it) => {
        const c = it.color || "#888";
        if (!byColor.has(c)) byColor.set(c, []);
        for (const [p, q] of segments(it.a, it.b)) {
          byColor.get(c).push(`M${X(p[1])} ${Y(p[0])}L${X(q[1])} ${Y(q[0])}`);
        }
      });
      for (const [color, parts] of byColor) {
        el("path", { d: parts.join(""), stroke: color, "stroke-width": o.width || 1, class: "wm-many" }, g);
      }
      return g;
    }

    _click(e) {
      if (!this._hits.length) return;
      const m = this._toMap(e.clientX, e.clientY);
      const rect = this.svg.getBoundingClientRect();
      const perPx = Math.max(this.view.w / rect.width, this.view.h / rect.height);
      for (const layer of this._hits) {
        if (!layer.g.isConnected) continue;
        let best = -1;
        let bestD = (layer.size / 2 + 3) * perPx;
        layer.items.forEach((it, i) => {
          const d = Math.hypot(X(it.lon) - m.x, Y(it.lat) - m.y);
          if (d <= bestD) {
            bestD = d;
            best = i;
          }
        });
        if (best >= 0) return layer.fn(layer.items[best], best);
      }
    }

    /** Remove every pin, line and layer (the outlines stay). */
    clear() {
      this.marks.replaceChildren();
      this.layers.replaceChildren();
      this._pins = [];
      this._hits = [];
    }
  }

  root.WorldMap = WorldMap;
})(typeof window !== "undefined" ? window : globalThis);
