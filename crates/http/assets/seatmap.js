/*
 * seatmap.js: the live seat map of a show (served at /assets/seatmap.js).
 *
 * Vanilla ES2020, no modules, no dependencies, CSP-friendly: no eval, no
 * inline handlers, no style attributes (geometry is set with SVG attributes,
 * looks come from seatmap.css; the only style writes go through the CSSOM,
 * which `style-src 'self'` allows).
 *
 * Mounts itself on every `[data-seat-map][data-stream-url]` at
 * DOMContentLoaded and follows `GET /v1/shows/{id}/seats/stream` (Server-Sent
 * Events: `snapshot`, then `changes` with `id:` = version). API:
 *   window.BoxofficeSeatMap.mount(element, options) -> controller
 *   window.BoxofficeSeatMap.preview(element, layout) -> true | false
 *
 * Measurements (element.seatMapStats, mirrored to window.__seatMapStats, and
 * the bubbling CustomEvents `seatmap:rendered` / `seatmap:applied`):
 *   renderMs: from the start of the `snapshot` event handler (before
 *     JSON.parse) until the first animation frame after the new SVG is in
 *     the DOM has been painted: requestAnimationFrame, then a MessageChannel
 *     message, which runs only after that frame's style, layout and paint.
 *     Rasterization on the compositor's threads is not included.
 *   applyMs: from the start of the `changes` event handler (before
 *     JSON.parse) until the end of the next painted frame, measured the same
 *     way. It includes waiting for that frame (up to one vsync, 16.7 ms at
 *     60 Hz); the handler's synchronous part is also reported as `workMs`,
 *     and the frame itself (requestAnimationFrame to painted) as `frameMs`.
 */
(function () {
  'use strict';

  // ---- Geometry, in SVG user units -------------------------------------
  // Seat positions are rounded to whole units (short markup, fast number
  // formatting); a pitch of 20 units keeps that rounding invisible.
  const PITCH = 20; // distance between neighbouring seats on the grid
  const SEAT = 16; // a seat's square; the rest of PITCH is the aisle
  const INSET = (PITCH - SEAT) / 2;
  const GAP = 3 * PITCH; // between sections and boxes

  // Painting cost. Chromium repaints an SVG by walking every shape in it, and
  // re-sends the whole layer to the compositor: with 50,000 seats in one
  // <svg>, changing one seat's class costs ~50 ms per frame. Larger maps are
  // therefore cut into tiles of whole rows (at most TILE_SEATS seats), each a
  // nested <svg> in a <foreignObject> with its own compositing layer: a
  // change then repaints ~2,500 seats (a few ms). Below LAYERED_FROM seats
  // the map stays one flat <svg>, which is cheap enough.
  const LAYERED_FROM = 3000;
  const TILE_SEATS = 2500;
  const TILE_PAD = 4; // room for a selected seat's stroke

  const STATUS_CLASS = { AVAILABLE: 'available', HELD: 'held', BOOKED: 'booked' };
  const PALETTE_SIZE = 12; // category colours c0..c11 in seatmap.css
  const ZOOMS = [1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24];
  const MESSAGE_MS = 6000; // how long a message replaces "Live"
  const APPLY_SAMPLES = 100;
  const RECONNECT_MAX_MS = 30000;
  const DEFAULT_MAX_SELECT = 4;
  // Bounds of the server's layout validation (crates/domain layout/validate.rs).
  const SEATS_PER_VENUE_MAX = 200000;
  const SEATS_PER_ROW_MAX = 1000;

  // ---- Small helpers ---------------------------------------------------

  const now = () => performance.now();

  /**
   * Calls back once the next frame has been painted (see renderMs above),
   * with the time that frame started (its requestAnimationFrame callback).
   */
  function afterNextPaint(callback) {
    requestAnimationFrame(() => {
      const frameStart = now();
      const channel = new MessageChannel();
      channel.port1.onmessage = () => {
        channel.port1.close();
        callback(frameStart);
      };
      channel.port2.postMessage(null);
    });
  }

  const ENTITIES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  const NEEDS_ESCAPE = /[&<>"']/;
  /** Escapes text for markup; the fast path matters for 50,000 seat ids. */
  function esc(value) {
    const text = String(value);
    return NEEDS_ESCAPE.test(text) ? text.replace(/[&<>"']/g, (c) => ENTITIES[c]) : text;
  }

  const clamp = (value, low, high) => Math.min(high, Math.max(low, value));

  function plural(count, one, many) {
    return `${count.toLocaleString()} ${count === 1 ? one : many}`;
  }

  // Money arrives in minor units; the currency says how many digits those
  // are (EUR 2, JPY 0), and Intl knows that.
  const moneyFormats = new Map();
  function moneyFormat(currency) {
    let entry = moneyFormats.get(currency);
    if (!entry) {
      try {
        const format = new Intl.NumberFormat(undefined, { style: 'currency', currency });
        entry = { format, digits: format.resolvedOptions().maximumFractionDigits };
      } catch (_) {
        entry = { format: null, digits: 2 };
      }
      moneyFormats.set(currency, entry);
    }
    return entry;
  }

  function formatMoney(price) {
    if (!price || typeof price.amount !== 'number') return '';
    const { format, digits } = moneyFormat(price.currency);
    const major = price.amount / 10 ** digits;
    return format ? format.format(major) : `${major.toFixed(digits)} ${price.currency}`;
  }

  /** "€300.00", or "€300.00 + $20.00" should currencies ever be mixed. */
  function formatTotal(prices) {
    const sums = new Map();
    for (const price of prices) {
      if (price) sums.set(price.currency, (sums.get(price.currency) || 0) + price.amount);
    }
    return Array.from(sums, ([currency, amount]) => formatMoney({ amount, currency })).join(' + ');
  }

  function emit(element, name, detail) {
    element.dispatchEvent(new CustomEvent(name, { detail, bubbles: true }));
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ---- Where everything goes -------------------------------------------
  //
  // The model both the live map and the preview draw:
  //   seats: [{id, section, row, category, price?, status, x?, y?, accessible?}]
  //   standing: [{section, category, capacity, available, price?}]
  //   names: Map section id -> display name (the preview knows names)

  /** Seats grouped by section and row, in order of first appearance. */
  function groupSections(seats) {
    const sections = [];
    const byId = new Map();
    let section = null;
    let row = null;
    for (let i = 0; i < seats.length; i++) {
      const seat = seats[i];
      // Seats come in layout order: most belong to the previous seat's row.
      if (!row || seat.row !== seats[i - 1].row || seat.section !== section.id) {
        section = byId.get(seat.section);
        if (!section) {
          section = { id: seat.section, rows: [], rowByLabel: new Map(), placed: true };
          byId.set(seat.section, section);
          sections.push(section);
        }
        row = section.rowByLabel.get(seat.row);
        if (!row) {
          row = [];
          section.rowByLabel.set(seat.row, row);
          section.rows.push(row);
        }
      }
      row.push(i);
      if (typeof seat.x !== 'number' || typeof seat.y !== 'number') section.placed = false;
    }
    return sections;
  }

  /**
   * The usual distance between neighbours in a row, in layout units: drawn
   * coordinates are scaled so that it becomes PITCH, whatever unit the
   * organizer used.
   */
  function estimatePitch(seats, sections) {
    const distances = [];
    for (const section of sections) {
      for (const row of section.rows) {
        for (let k = 1; k < row.length && distances.length < 4000; k++) {
          const a = seats[row[k - 1]];
          const b = seats[row[k]];
          const d = Math.hypot(b.x - a.x, b.y - a.y);
          if (d > 0) distances.push(d);
        }
      }
    }
    if (!distances.length) return PITCH;
    distances.sort((a, b) => a - b);
    return distances[distances.length >> 1];
  }

  /**
   * Top-left corners of every seat (xs, ys), section labels, standing boxes
   * and the viewBox. Sections whose seats all have x/y are drawn at those
   * coordinates; the others, and standing sections, flow below as blocks
   * (rows stacked, seats left to right, centred), left to right, wrapping.
   */
  function computeLayout(model) {
    const { seats, standing, names } = model;
    const xs = new Float64Array(seats.length);
    const ys = new Float64Array(seats.length);
    const sections = groupSections(seats);
    const labels = [];
    const nameOf = (id) => (names && names.get(id)) || id;

    // Sections drawn at their coordinates, scaled so that neighbours in a
    // row are PITCH apart: first their extent, which the label size needs.
    const placed = sections.filter((section) => section.placed);
    const extent = { minX: Infinity, minY: Infinity, maxX: -Infinity, maxY: -Infinity };
    if (placed.length) {
      const scale = PITCH / estimatePitch(seats, placed);
      for (const section of placed) {
        for (const row of section.rows) {
          for (const i of row) {
            const x = seats[i].x * scale - SEAT / 2;
            const y = seats[i].y * scale - SEAT / 2;
            xs[i] = x;
            ys[i] = y;
            if (x < extent.minX) extent.minX = x;
            if (y < extent.minY) extent.minY = y;
            if (x > extent.maxX) extent.maxX = x;
            if (y > extent.maxY) extent.maxY = y;
          }
        }
      }
    }
    const placedWidth = placed.length ? extent.maxX - extent.minX + SEAT : 0;

    // One label size for the whole map, from its rough width, so that the
    // labels stay readable when the whole venue fits the screen.
    const roughWidth = Math.sqrt((seats.length + standing.length * 400) * PITCH * PITCH * 2);
    const font = Math.round(clamp(Math.max(roughWidth, placedWidth) / 70, 16, 600));
    const labelHeight = font * 1.4;

    let top = 0;
    let width = placedWidth;
    if (placed.length) {
      const dx = -extent.minX;
      const dy = labelHeight - extent.minY;
      for (const section of placed) {
        let sx = Infinity;
        let sy = Infinity;
        for (const row of section.rows) {
          for (const i of row) {
            xs[i] += dx;
            ys[i] += dy;
            if (xs[i] < sx) sx = xs[i];
            if (ys[i] < sy) sy = ys[i];
          }
        }
        labels.push({ x: sx, y: sy - font * 0.35, text: nameOf(section.id) });
      }
      top = extent.maxY - extent.minY + SEAT + labelHeight + GAP;
    }

    const blocks = [];
    for (const section of sections) {
      if (section.placed) continue;
      const columns = Math.max(...section.rows.map((row) => row.length));
      blocks.push({
        w: Math.max(columns * PITCH, nameOf(section.id).length * font * 0.62),
        h: labelHeight + section.rows.length * PITCH,
        place(bx, by) {
          labels.push({ x: bx, y: by + font, text: nameOf(section.id) });
          section.rows.forEach((row, r) => {
            const left = bx + ((columns - row.length) / 2) * PITCH + INSET;
            const y = by + labelHeight + r * PITCH + INSET;
            for (let k = 0; k < row.length; k++) {
              xs[row[k]] = left + k * PITCH;
              ys[row[k]] = y;
            }
          });
        },
      });
    }
    const boxes = [];
    for (const place of standing) {
      // Grows with the capacity, but never dwarfs the seated part.
      const seatedSpan = Math.max(12 * PITCH, roughWidth, placedWidth / 3);
      const w = clamp(Math.sqrt(place.capacity || 1) * PITCH * 0.7, 8 * PITCH, Math.min(60 * PITCH, seatedSpan));
      const h = w / 2;
      const label = standingText(nameOf(place.section), place.capacity);
      const textSize = Math.round(Math.min(w / (label.length * 0.62), h / 3, font * 1.5));
      blocks.push({
        w,
        h,
        place(bx, by) {
          boxes.push({ place, x: bx, y: by, w, h, font: textSize });
        },
      });
    }

    // Shelf packing, aiming at a landscape shape (or the drawn part's width).
    let area = 0;
    let widest = 0;
    for (const block of blocks) {
      area += (block.w + GAP) * (block.h + GAP);
      widest = Math.max(widest, block.w);
    }
    const target = Math.max(width, widest, Math.sqrt(area * 1.6));
    let x = 0;
    let y = top;
    let shelf = 0;
    for (const block of blocks) {
      if (x > 0 && x + block.w > target) {
        x = 0;
        y += shelf + GAP;
        shelf = 0;
      }
      block.place(x, y);
      x += block.w + GAP;
      width = Math.max(width, x - GAP);
      shelf = Math.max(shelf, block.h);
    }
    const height = blocks.length ? y + shelf : Math.max(top - GAP, PITCH);
    const margin = PITCH;
    return {
      xs,
      ys,
      ...makeTiles(sections, xs, ys),
      labels,
      boxes,
      font,
      viewBox: [-margin, -margin, Math.ceil(width + 2 * margin), Math.ceil(height + 2 * margin)],
    };
  }

  /**
   * Consecutive rows, at most TILE_SEATS seats each (a row is never split),
   * with the bounding box of their seats; the markup draws seats tile by
   * tile, so seat i is child slot[i] of tile tileOf[i].
   */
  function makeTiles(sections, xs, ys) {
    const tiles = [];
    const tileOf = new Int32Array(xs.length); // seat index -> tile index
    const slot = new Int32Array(xs.length); // seat index -> position in its tile
    let tile = null;
    for (const section of sections) {
      for (const row of section.rows) {
        if (!tile || (tile.count > 0 && tile.count + row.length > TILE_SEATS)) {
          tile = { rows: [], count: 0 };
          tiles.push(tile);
        }
        tile.rows.push(row);
        tile.count += row.length;
      }
    }
    tiles.forEach((t, index) => {
      let k = 0;
      for (const row of t.rows) {
        for (const i of row) {
          tileOf[i] = index;
          slot[i] = k++;
        }
      }
      let minX = Infinity;
      let minY = Infinity;
      let maxX = -Infinity;
      let maxY = -Infinity;
      for (const row of t.rows) {
        for (const i of row) {
          if (xs[i] < minX) minX = xs[i];
          if (ys[i] < minY) minY = ys[i];
          if (xs[i] > maxX) maxX = xs[i];
          if (ys[i] > maxY) maxY = ys[i];
        }
      }
      t.x = Math.floor(minX - TILE_PAD);
      t.y = Math.floor(minY - TILE_PAD);
      t.w = Math.ceil(maxX + SEAT + TILE_PAD) - t.x;
      t.h = Math.ceil(maxY + SEAT + TILE_PAD) - t.y;
    });
    return { tiles, tileOf, slot };
  }

  // ---- Markup ----------------------------------------------------------

  /** Category -> palette index, in order of first appearance. */
  function categoryIndex(model) {
    const index = new Map();
    for (const seat of model.seats) {
      if (!index.has(seat.category)) index.set(seat.category, index.size % PALETTE_SIZE);
    }
    for (const place of model.standing) {
      if (!index.has(place.category)) index.set(place.category, index.size % PALETTE_SIZE);
    }
    return index;
  }

  /** "FLOOR · 4990 left" (plain digits: tests and screen readers match it). */
  function standingText(name, available) {
    return `${name} · ${Number(available)} left`;
  }

  /**
   * The whole map as one string, so the browser parses it in one go
   * (innerHTML) instead of 50,000 createElementNS calls. Seats appear in the
   * order of layout.tiles, which lets the caller pair seats and elements.
   */
  function svgMarkup(model, layout, seatClass) {
    const { seats, names } = model;
    const { xs, ys } = layout;
    const layered = seats.length >= LAYERED_FROM;
    const r = Math.round;
    const parts = [
      `<svg class="seat-map-svg" xmlns="http://www.w3.org/2000/svg" viewBox="${layout.viewBox.join(' ')}" aria-label="Seat map">`,
      '<g class="seat-map-standing">',
    ];
    for (const box of layout.boxes) {
      const place = box.place;
      const name = (names && names.get(place.section)) || place.section;
      parts.push(
        `<g class="standing-box c${model.categories.get(place.category)}" data-standing-section="${esc(place.section)}" data-available="${esc(place.available)}">`,
        `<rect x="${r(box.x)}" y="${r(box.y)}" width="${r(box.w)}" height="${r(box.h)}"/>`,
        `<text x="${r(box.x + box.w / 2)}" y="${r(box.y + box.h / 2)}" font-size="${box.font}" text-anchor="middle" dominant-baseline="central">${esc(standingText(name, place.available))}</text></g>`
      );
    }
    parts.push('</g><g class="seat-map-seats">');
    for (const tile of layout.tiles) {
      // The element holding a tile's seats has the class seat-map-tile.
      if (layered) {
        const box = `x="${tile.x}" y="${tile.y}" width="${tile.w}" height="${tile.h}"`;
        parts.push(
          `<foreignObject class="seat-map-layer" ${box}><svg xmlns="http://www.w3.org/2000/svg" class="seat-map-tile" viewBox="${tile.x} ${tile.y} ${tile.w} ${tile.h}" width="${tile.w}" height="${tile.h}">`
        );
      } else {
        parts.push('<g class="seat-map-tile">');
      }
      for (const row of tile.rows) {
        for (const i of row) {
          // A <polygon>, not a <rect>: a rect's x/y/width/height are CSS
          // properties in Chromium (SVG 2 geometry), so 50,000 rects mean
          // 50,000 distinct styles to compute; a polygon's points are not,
          // and seats of one class share one computed style. Parsing and
          // style together are about twice as fast. (One template string
          // per seat, joined once, was the fastest way to build this.)
          const x = r(xs[i]);
          const y = r(ys[i]);
          const x2 = x + SEAT;
          const y2 = y + SEAT;
          parts.push(
            `<polygon points="${x},${y} ${x2},${y} ${x2},${y2} ${x},${y2}" class="${seatClass(seats[i])}" data-seat-id="${esc(seats[i].id)}"/>`
          );
        }
      }
      parts.push(layered ? '</svg></foreignObject>' : '</g>');
    }
    parts.push(`</g><g class="seat-map-labels" font-size="${layout.font}">`);
    for (const label of layout.labels) {
      parts.push(`<text x="${r(label.x)}" y="${r(label.y)}">${esc(label.text)}</text>`);
    }
    parts.push('</g></svg>');
    return parts.join('');
  }

  // ---- The drawing surface: toolbar, scrollable viewport, tooltip -------

  class SeatCanvas {
    /**
     * @param {Element} host where the canvas goes (appended)
     * @param {{describe(seatElement): string, onSeat?(seatElement): void}} hooks
     */
    constructor(host, hooks) {
      this.host = host;
      this.hooks = hooks;
      this.zoom = 0; // index into ZOOMS
      this.svg = null;

      this.toolbar = el('div', 'seat-map-toolbar');
      this.zoomOut = this.button('−', 'Zoom out', () => this.setZoom(this.zoom - 1));
      this.zoomIn = this.button('+', 'Zoom in', () => this.setZoom(this.zoom + 1));
      this.zoomFit = this.button('Fit', null, () => this.setZoom(0));
      this.viewport = el('div', 'seat-map-viewport');
      this.tooltip = el('div', 'seat-map-tooltip');
      this.tooltip.hidden = true;
      this.tooltip.setAttribute('role', 'tooltip');
      host.append(this.toolbar, this.viewport, this.tooltip);
      this.updateZoomButtons();

      // Event delegation: three listeners for the whole map, none per seat.
      this.viewport.addEventListener('click', (event) => {
        const seat = event.target.closest && event.target.closest('[data-seat-id]');
        if (!seat || !this.hooks.onSeat) return;
        this.hooks.onSeat(seat);
        if (!this.tooltip.hidden) this.tooltip.textContent = this.hooks.describe(seat);
      });
      this.viewport.addEventListener('pointerover', (event) => this.showTooltip(event));
      this.viewport.addEventListener('pointerleave', () => (this.tooltip.hidden = true));
      this.viewport.addEventListener('scroll', () => (this.tooltip.hidden = true), { passive: true });
    }

    /** A toolbar button; `label` names a button whose text is a symbol. */
    button(text, label, action) {
      const button = el('button', 'seat-map-zoom', text);
      button.type = 'button';
      if (label) button.setAttribute('aria-label', label);
      button.title = label || 'Show the whole venue';
      button.addEventListener('click', action);
      this.toolbar.append(button);
      return button;
    }

    /** Replaces the drawing; returns the new <svg>. */
    draw(markup) {
      this.tooltip.hidden = true;
      this.viewport.innerHTML = markup;
      this.svg = this.viewport.firstElementChild;
      this.applyZoom();
      return this.svg;
    }

    setZoom(index) {
      const next = clamp(index, 0, ZOOMS.length - 1);
      if (next === this.zoom) return;
      // Keep the point in the middle of the viewport where it is.
      const v = this.viewport;
      const cx = (v.scrollLeft + v.clientWidth / 2) / (v.scrollWidth || 1);
      const cy = (v.scrollTop + v.clientHeight / 2) / (v.scrollHeight || 1);
      this.zoom = next;
      this.applyZoom();
      v.scrollLeft = cx * v.scrollWidth - v.clientWidth / 2;
      v.scrollTop = cy * v.scrollHeight - v.clientHeight / 2;
      this.updateZoomButtons();
    }

    applyZoom() {
      // CSSOM, not a style attribute: allowed under `style-src 'self'`.
      if (this.svg) this.svg.style.width = `${ZOOMS[this.zoom] * 100}%`;
      this.host.classList.toggle('seat-map-zoomed', this.zoom > 0);
    }

    updateZoomButtons() {
      this.zoomOut.disabled = this.zoom === 0;
      this.zoomFit.disabled = this.zoom === 0;
      this.zoomIn.disabled = this.zoom === ZOOMS.length - 1;
    }

    showTooltip(event) {
      const target = event.target.closest && event.target.closest('[data-seat-id], [data-standing-section]');
      if (!target) {
        this.tooltip.hidden = true;
        return;
      }
      this.tooltip.textContent = this.hooks.describe(target);
      const box = this.host.getBoundingClientRect();
      this.tooltip.style.left = `${Math.round(event.clientX - box.left + 12)}px`;
      this.tooltip.style.top = `${Math.round(event.clientY - box.top + 12)}px`;
      this.tooltip.hidden = false;
    }
  }

  // ---- The legend ------------------------------------------------------

  function swatch(className) {
    const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('class', 'seat-map-swatch');
    svg.setAttribute('viewBox', '0 0 10 10');
    svg.setAttribute('aria-hidden', 'true');
    const rect = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
    rect.setAttribute('class', className);
    rect.setAttribute('width', '10');
    rect.setAttribute('height', '10');
    svg.append(rect);
    return svg;
  }

  function legendItem(className, text) {
    const item = el('li', 'seat-map-legend-item');
    const label = el('span', '', text);
    item.append(swatch(className), label);
    return { item, label };
  }

  /**
   * Fills a legend element: categories with colour and price, standing
   * sections, the status swatches. Returns the status labels so counts can
   * be updated without rebuilding.
   */
  function fillLegend(legend, model, { statuses }) {
    const categories = el('ul', 'seat-map-legend-list');
    const seen = new Set();
    for (const seat of model.seats) {
      if (seen.has(seat.category)) continue;
      seen.add(seat.category);
      const price = formatMoney(seat.price);
      const text = price ? `${seat.category} · ${price}` : seat.category;
      categories.append(legendItem(`swatch c${model.categories.get(seat.category)}`, text).item);
    }
    for (const place of model.standing) {
      const name = (model.names && model.names.get(place.section)) || place.section;
      const price = formatMoney(place.price);
      const text = `${name} (standing, ${place.category})${price ? ` · ${price}` : ''}`;
      categories.append(legendItem(`swatch standing c${model.categories.get(place.category)}`, text).item);
    }
    const parts = [categories];
    const counts = {};
    if (statuses) {
      const list = el('ul', 'seat-map-legend-list seat-map-legend-statuses');
      for (const [key, text] of [
        ['available', 'Available'],
        ['held', 'Held'],
        ['booked', 'Booked'],
        ['selected', 'Selected'],
      ]) {
        const entry = legendItem(`swatch ${key}`, text);
        entry.text = text;
        counts[key] = entry;
        list.append(entry.item);
      }
      parts.push(list);
    }
    legend.classList.add('seat-map-legend');
    legend.replaceChildren(...parts);
    return counts;
  }

  // ---- The live map ----------------------------------------------------

  class LiveSeatMap {
    constructor(element, options) {
      this.element = element;
      this.streamUrl = options.streamUrl || element.getAttribute('data-stream-url');
      const max = Number(options.maxSelect || element.getAttribute('data-max-select'));
      this.maxSelect = Number.isInteger(max) && max > 0 ? max : DEFAULT_MAX_SELECT;
      this.legends = options.legend ? [options.legend] : Array.from(document.querySelectorAll('[data-seat-map-legend]'));

      this.model = null; // the snapshot being shown, with its lookups
      this.version = -Infinity;
      this.selection = new Map(); // seat id -> seat index, in the order picked
      this.legendCounts = [];
      this.source = null;
      this.retryMs = 1000;
      this.retryTimer = 0;
      this.baseStatus = '';
      this.messageTimer = 0;
      this.stats = { seats: 0, version: null, renderMs: null, applyMs: [], lastApplyMs: null };
      element.seatMapStats = this.stats;
      window.__seatMapStats = this.stats;

      this.statusElement = element.querySelector('[data-seat-map-status]');
      if (!this.statusElement) {
        this.statusElement = el('p');
        this.statusElement.setAttribute('data-seat-map-status', '');
        element.prepend(this.statusElement);
      }
      this.statusElement.setAttribute('role', 'status');
      this.statusElement.setAttribute('aria-live', 'polite');
      element.classList.add('seat-map');
      this.canvas = new SeatCanvas(element, {
        describe: (target) => this.describe(target),
        onSeat: (seatElement) => this.toggle(seatElement.getAttribute('data-seat-id')),
      });
      if (this.streamUrl) this.connect();
      else this.setBaseStatus('This seat map has no data-stream-url.');
    }

    // -- the stream

    connect() {
      const source = new EventSource(this.streamUrl);
      this.source = source;
      source.addEventListener('snapshot', (event) => this.onSnapshot(event));
      source.addEventListener('changes', (event) => this.onChanges(event));
      source.addEventListener('open', () => {
        this.retryMs = 1000;
        if (this.model) this.setBaseStatus('Live');
      });
      source.addEventListener('error', () => {
        this.setBaseStatus('Reconnecting…');
        // CONNECTING: the browser retries by itself (with Last-Event-ID).
        // CLOSED (an HTTP error, a wrong content type): it gave up, so we
        // retry with backoff; the server will start with a snapshot.
        if (source.readyState === EventSource.CLOSED && this.source === source) {
          this.source = null;
          this.retryTimer = setTimeout(() => this.connect(), this.retryMs);
          this.retryMs = Math.min(this.retryMs * 2, RECONNECT_MAX_MS);
        }
      });
    }

    destroy() {
      if (this.source) this.source.close();
      this.source = null;
      clearTimeout(this.retryTimer);
      clearTimeout(this.messageTimer);
    }

    onSnapshot(event) {
      const started = now();
      let data;
      try {
        data = JSON.parse(event.data);
      } catch (_) {
        this.tell('The seat map could not be read.');
        return;
      }
      const parsed = now();
      const model = liveModel(data);
      // Keep what the user picked, as long as it is still available.
      const taken = [];
      const selection = new Map();
      for (const id of this.selection.keys()) {
        const index = model.byId.get(id);
        if (index !== undefined && model.seats[index].status === 'AVAILABLE') selection.set(id, index);
        else taken.push(id);
      }
      this.selection = selection;
      this.model = model;
      this.version = model.version;

      const modelled = now();
      const layout = computeLayout(model);
      const laidOut = now();
      const markup = svgMarkup(model, layout, (seat) => this.seatClass(seat));
      const built = now();
      const svg = this.canvas.draw(markup);
      this.attach(svg, layout);
      this.renderLegends();
      const inDom = now();

      this.setBaseStatus('Live');
      if (taken.length) this.tellTaken(taken);
      this.selectionChanged();
      Object.assign(this.stats, { seats: model.seats.length, version: model.version });
      // Where the time goes: JSON.parse, lookups, geometry, markup string,
      // innerHTML (+ legend), and the frame (style, layout, paint).
      const phases = {
        parseMs: parsed - started,
        modelMs: modelled - parsed,
        layoutMs: laidOut - modelled,
        markupMs: built - laidOut,
        domMs: inDom - built,
      };
      afterNextPaint(() => {
        const renderMs = now() - started;
        phases.frameMs = renderMs - (inDom - started);
        this.stats.renderMs = renderMs;
        this.stats.renderPhases = phases;
        emit(this.element, 'seatmap:rendered', {
          renderMs,
          seats: model.seats.length,
          version: model.version,
          phases,
        });
      });
    }

    /**
     * What changes need to find elements later. Seat elements are not
     * collected here (50,000 lookups): elementOf finds one on demand.
     */
    attach(svg, layout) {
      const model = this.model;
      // Tiles in order: <g> children of the seats group, or the <svg> inside
      // each <foreignObject> (see svgMarkup). A static array: indexing a
      // live collection would search the whole map.
      const group = svg.querySelector('.seat-map-seats');
      model.tiles = Array.from(group.children, (child) =>
        child.classList.contains('seat-map-tile') ? child : child.firstElementChild
      );
      model.tileOf = layout.tileOf;
      model.slot = layout.slot;
      model.elements = new Array(model.seats.length);
      model.boxes = new Map();
      const standing = svg.querySelector('.seat-map-standing');
      for (const box of standing ? standing.children : []) {
        model.boxes.set(box.getAttribute('data-standing-section'), box);
      }
    }

    /** The element of seat `index`: child slot[index] of its tile. */
    elementOf(index) {
      const model = this.model;
      let element = model.elements[index];
      if (!element) {
        element = model.tiles[model.tileOf[index]].children[model.slot[index]];
        model.elements[index] = element;
      }
      return element;
    }

    paintSeat(index) {
      this.elementOf(index).setAttribute('class', this.seatClass(this.model.seats[index]));
    }

    onChanges(event) {
      const started = now();
      let data;
      try {
        data = JSON.parse(event.data);
      } catch (_) {
        return;
      }
      // Before the first snapshot there is nothing to change; an old or
      // repeated version (a resumed stream) is already shown.
      if (!this.model || !(data.version > this.version)) return;
      this.version = data.version;
      const { seats, byId, counts } = this.model;
      const taken = [];
      for (const change of data.seats || []) {
        const index = byId.get(change.id);
        if (index === undefined || !STATUS_CLASS[change.status]) continue;
        const seat = seats[index];
        if (seat.status === change.status) continue;
        counts[STATUS_CLASS[seat.status]]--;
        counts[STATUS_CLASS[change.status]]++;
        seat.status = change.status;
        if (change.status !== 'AVAILABLE' && this.selection.delete(seat.id)) taken.push(seat.id);
        this.paintSeat(index);
      }
      for (const change of data.standing || []) this.updateStanding(change);
      if (taken.length) {
        this.tellTaken(taken);
        this.selectionChanged();
      }
      this.updateLegendCounts();
      this.stats.version = data.version;
      const workMs = now() - started;
      afterNextPaint((frameStart) => {
        const end = now();
        const applyMs = end - started;
        // The frame's own style, layout and paint; the rest is waiting for it.
        const frameMs = end - frameStart;
        const samples = this.stats.applyMs;
        samples.push(applyMs);
        if (samples.length > APPLY_SAMPLES) samples.shift();
        this.stats.lastApplyMs = applyMs;
        this.stats.lastApplyWorkMs = workMs;
        this.stats.lastApplyFrameMs = frameMs;
        emit(this.element, 'seatmap:applied', {
          applyMs,
          workMs,
          frameMs,
          version: data.version,
          seats: (data.seats || []).length,
        });
      });
    }

    updateStanding(change) {
      const place = this.model.standingById.get(change.section);
      if (!place || typeof change.available !== 'number') return;
      place.available = change.available;
      const box = this.model.boxes.get(change.section);
      if (!box) return;
      box.setAttribute('data-available', String(change.available));
      const text = box.querySelector('text');
      if (text) text.textContent = standingText(change.section, change.available);
    }

    // -- selection

    /** "seat available c0", plus "accessible" and "selected" when so. */
    seatClass(seat) {
      let name = 'seat ' + (STATUS_CLASS[seat.status] || 'booked') + this.model.categoryClass.get(seat.category);
      if (seat.accessible) name += ' accessible';
      if (this.selection.has(seat.id)) name += ' selected';
      return name;
    }

    toggle(id) {
      const index = this.model ? this.model.byId.get(id) : undefined;
      if (index === undefined) return;
      const seat = this.model.seats[index];
      if (this.selection.has(id)) {
        this.selection.delete(id);
      } else if (seat.status !== 'AVAILABLE') {
        this.tell(`${id} is not available.`);
        return;
      } else if (this.selection.size >= this.maxSelect) {
        this.tell(`You can select at most ${plural(this.maxSelect, 'seat', 'seats')}.`);
        return;
      } else {
        this.selection.set(id, index);
      }
      this.paintSeat(index);
      this.selectionChanged();
    }

    /** Forms, summaries, legend and the `seatmap:selection` event. */
    selectionChanged() {
      const seats = Array.from(this.selection.values(), (index) => this.model.seats[index]);
      for (const form of document.querySelectorAll('form[data-seat-form]')) {
        for (const input of form.querySelectorAll('input[type="hidden"][name="seat_ids"]')) input.remove();
        for (const seat of seats) {
          const input = document.createElement('input');
          input.type = 'hidden';
          input.name = 'seat_ids';
          input.value = seat.id;
          form.append(input);
        }
      }
      const summary = seats.length
        ? `${plural(seats.length, 'seat', 'seats')}: ${seats.map((s) => s.id).join(', ')} — ${formatTotal(seats.map((s) => s.price))}`
        : 'No seats selected';
      for (const target of document.querySelectorAll('[data-selection-summary]')) target.textContent = summary;
      this.updateLegendCounts();
      emit(this.element, 'seatmap:selection', {
        seats: seats.map((s) => ({ id: s.id, category: s.category, price: s.price })),
      });
    }

    /** The selected seat ids, in the order picked. */
    selectedSeats() {
      return Array.from(this.selection.keys());
    }

    // -- words

    describe(target) {
      const model = this.model;
      if (!model) return '';
      const section = target.getAttribute('data-standing-section');
      if (section !== null) {
        const place = model.standingById.get(section);
        return place ? `${section} (standing) · ${formatMoney(place.price)} · ${place.available} left` : section;
      }
      const index = model.byId.get(target.getAttribute('data-seat-id'));
      if (index === undefined) return '';
      const seat = model.seats[index];
      const state = this.selection.has(seat.id) ? 'selected' : STATUS_CLASS[seat.status];
      return `${seat.id} · ${seat.category} · ${formatMoney(seat.price)} · ${state}${seat.accessible ? ' · accessible' : ''}`;
    }

    setBaseStatus(text) {
      this.baseStatus = text;
      clearTimeout(this.messageTimer);
      this.statusElement.textContent = text;
    }

    /** A short message in the status line, then back to "Live". */
    tell(text) {
      clearTimeout(this.messageTimer);
      this.statusElement.textContent = text;
      this.messageTimer = setTimeout(() => {
        this.statusElement.textContent = this.baseStatus;
      }, MESSAGE_MS);
    }

    tellTaken(ids) {
      const list = ids.length > 1 ? `${ids.slice(0, -1).join(', ')} and ${ids[ids.length - 1]}` : ids[0];
      this.tell(`${list} ${ids.length > 1 ? 'were' : 'was'} just taken`);
    }

    renderLegends() {
      this.legendCounts = this.legends.map((legend) => fillLegend(legend, this.model, { statuses: true }));
      this.updateLegendCounts();
    }

    updateLegendCounts() {
      if (!this.model) return;
      const counts = Object.assign({ selected: this.selection.size }, this.model.counts);
      for (const entries of this.legendCounts) {
        for (const key of Object.keys(entries)) {
          const entry = entries[key];
          const text = `${entry.text} (${(counts[key] || 0).toLocaleString()})`;
          if (entry.label.textContent !== text) entry.label.textContent = text;
        }
      }
    }
  }

  /** The snapshot as a model, with the lookups changes need. */
  function liveModel(data) {
    const seats = Array.isArray(data.seats) ? data.seats : [];
    const standing = Array.isArray(data.standing) ? data.standing : [];
    const model = { version: Number(data.version), seats, standing, names: null };
    const byId = new Map(); // seat id -> index
    const counts = { available: 0, held: 0, booked: 0 };
    for (let i = 0; i < seats.length; i++) {
      byId.set(seats[i].id, i);
      counts[STATUS_CLASS[seats[i].status] || 'booked']++;
    }
    model.byId = byId;
    model.counts = counts;
    model.standingById = new Map(standing.map((place) => [place.section, place]));
    model.categories = categoryIndex(model);
    model.categoryClass = new Map(Array.from(model.categories, ([name, index]) => [name, ` c${index}`]));
    return model;
  }

  // ---- Preview of a venue layout (admin) -------------------------------

  class LayoutError extends Error {}

  /** A layout in API.md's format as a model; throws LayoutError. */
  function layoutModel(layout) {
    if (!layout || typeof layout !== 'object' || Array.isArray(layout)) {
      throw new LayoutError('The layout must be a JSON object with "sections".');
    }
    if (!Array.isArray(layout.sections) || !layout.sections.length) {
      throw new LayoutError('sections: a venue needs at least one section.');
    }
    const seats = [];
    const standing = [];
    const names = new Map();
    layout.sections.forEach((section, s) => {
      const path = `sections[${s}]`;
      if (!section || typeof section !== 'object') throw new LayoutError(`${path}: must be an object.`);
      const id = String(section.id || '');
      if (!id) throw new LayoutError(`${path}.id: missing.`);
      if (names.has(id)) throw new LayoutError(`${path}.id: duplicate section id "${id}".`);
      names.set(id, String(section.name || id));
      const category = String(section.category || '');
      if (!category) throw new LayoutError(`${path}.category: missing.`);
      if (section.kind === 'standing') {
        const capacity = Number(section.capacity);
        if (!Number.isInteger(capacity) || capacity < 1) {
          throw new LayoutError(`${path}.capacity: a standing section needs a whole number above 0.`);
        }
        standing.push({ section: id, category, capacity, available: capacity });
      } else if (section.kind === 'seated') {
        if (!Array.isArray(section.rows) || !section.rows.length) {
          throw new LayoutError(`${path}.rows: a seated section needs rows.`);
        }
        section.rows.forEach((row, r) => addRow(seats, id, category, row, `${path}.rows[${r}]`));
      } else {
        throw new LayoutError(`${path}.kind: must be "seated" or "standing".`);
      }
    });
    const model = { version: 0, seats, standing, names };
    model.categories = categoryIndex(model);
    return model;
  }

  function addRow(seats, sectionId, category, row, path) {
    if (!row || typeof row !== 'object') throw new LayoutError(`${path}: must be an object.`);
    const label = String(row.label ?? '');
    if (!label) throw new LayoutError(`${path}.label: missing.`);
    const list = row.seats;
    const count = Array.isArray(list) ? list.length : list;
    if (!Number.isInteger(count) || count < 1 || count > SEATS_PER_ROW_MAX) {
      throw new LayoutError(`${path}.seats: a row needs 1 to ${SEATS_PER_ROW_MAX} seats (a count or a list).`);
    }
    if (seats.length + count > SEATS_PER_VENUE_MAX) {
      throw new LayoutError(`A venue has at most ${SEATS_PER_VENUE_MAX.toLocaleString()} seats.`);
    }
    for (let k = 0; k < count; k++) {
      const input = Array.isArray(list) ? list[k] : { number: k + 1 };
      if (!input || typeof input !== 'object' || input.number === undefined || input.number === '') {
        throw new LayoutError(`${path}.seats[${k}].number: missing.`);
      }
      const seat = {
        id: `${sectionId}-${label}-${input.number}`,
        section: sectionId,
        row: label,
        number: String(input.number),
        category: input.category ? String(input.category) : category,
        status: 'AVAILABLE',
      };
      for (const axis of ['x', 'y']) {
        if (input[axis] === undefined || input[axis] === null) continue;
        if (typeof input[axis] !== 'number' || !Number.isFinite(input[axis])) {
          throw new LayoutError(`${path}.seats[${k}].${axis}: must be a number.`);
        }
        seat[axis] = input[axis];
      }
      if (input.accessible) seat.accessible = true;
      seats.push(seat);
    }
  }

  /**
   * Draws a venue layout (object or JSON text) without live status: all
   * seats available, nothing selectable. Never throws: a bad layout gives a
   * readable message in the element. Returns whether it drew.
   */
  function preview(element, layout) {
    let parsed;
    let model;
    try {
      parsed = typeof layout === 'string' ? JSON.parse(layout) : layout;
      model = layoutModel(parsed);
    } catch (error) {
      const reason = error instanceof SyntaxError ? `the JSON is not valid (${error.message})` : error.message;
      element.replaceChildren(el('p', 'seat-map-error', `Cannot preview this layout: ${reason}`));
      return false;
    }
    element.replaceChildren();
    element.classList.add('seat-map', 'seat-map-preview');
    const standingPlaces = model.standing.reduce((sum, place) => sum + place.capacity, 0);
    const title = [parsed.name, parsed.city].filter(Boolean).join(', ');
    const summary = [
      plural(model.seats.length, 'seat', 'seats'),
      plural(model.names.size, 'section', 'sections'),
      standingPlaces ? `${standingPlaces.toLocaleString()} standing` : '',
    ].filter(Boolean).join(' · ');
    element.append(el('p', 'seat-map-preview-summary', title ? `${title}: ${summary}` : summary));
    const canvas = new SeatCanvas(element, {
      describe(target) {
        const section = target.getAttribute('data-standing-section');
        if (section !== null) return `${model.names.get(section)} (standing)`;
        const seat = target.getAttribute('data-seat-id');
        const found = model.seats.find((s) => s.id === seat);
        return found ? `${seat} · ${found.category}${found.accessible ? ' · accessible' : ''}` : seat;
      },
    });
    const seatClass = (seat) =>
      `seat available c${model.categories.get(seat.category)}${seat.accessible ? ' accessible' : ''}`;
    canvas.draw(svgMarkup(model, computeLayout(model), seatClass));
    const legend = el('div');
    fillLegend(legend, model, { statuses: false });
    element.append(legend);
    return true;
  }

  // ---- Public API and auto-mount ---------------------------------------

  /**
   * Mounts a live map. options: {streamUrl, maxSelect, legend} (default
   * from data-stream-url, data-max-select, every [data-seat-map-legend]).
   * Returns a controller {selectedSeats(), toggle(id), destroy(), stats}.
   */
  function mount(element, options) {
    if (element.__boxofficeSeatMap) return element.__boxofficeSeatMap;
    const map = new LiveSeatMap(element, options || {});
    element.__boxofficeSeatMap = map;
    return map;
  }

  function autoMount() {
    for (const element of document.querySelectorAll('[data-seat-map][data-stream-url]')) mount(element);
  }

  window.BoxofficeSeatMap = { mount, preview };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', autoMount);
  else autoMount();
})();
