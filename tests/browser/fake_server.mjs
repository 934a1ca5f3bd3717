// A stand-in for the Rust server, only for developing and benchmarking the
// seat map (crates/http/assets/seatmap.js) without it. Node 20, built-ins only.
//
//   node fake_server.mjs [--port 8090] [--seats 50000] [--coords] [--max-select 4]
//
// Routes:
//   GET  /shows/{id}[?seats=N&coords=1&max=4]   the page (DOM contract of the seat map)
//   GET  /preview                                a layout preview page (textarea)
//   GET  /assets/seatmap.js, /assets/seatmap.css from crates/http/assets
//   GET  /v1/shows/{id}/seats/stream[?seats=N&coords=1]
//        Server-Sent Events as the Rust server sends them: `snapshot`, then
//        `changes`, each with `id:` = version; honours Last-Event-ID (resumes
//        from the last 512 changes, else a fresh snapshot); `:` heartbeats.
//   POST /fake/change?n=1[&ids=A-1-3,A-1-4&status=HELD][&standing=2][&show=shw_X]
//        applies a change (n random seats, or the given ids) and pushes one
//        `changes` event to every open stream (of that show). Replies JSON.
//   POST /fake/snapshot[?ids=…&status=…][&show=…]  changes seats silently,
//        then pushes a fresh `snapshot` to every open stream (like a restart).
//   POST /fake/drop                              closes every open stream
//   GET  /fake/state                             shows, versions, open streams
//
// The page is served with `Content-Security-Policy: default-src 'self'`, so
// any inline script or style in the seat map would show up as a violation.

import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const ASSETS = path.resolve(here, '../../crates/http/assets');
const RING = 512; // changes kept for Last-Event-ID, like the server
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:";

const STATUSES = ['AVAILABLE', 'HELD', 'BOOKED'];
const CATEGORIES = [
  { name: 'premium', amount: 15000 },
  { name: 'standard', amount: 9000 },
  { name: 'economy', amount: 5000 },
];

/** A small deterministic PRNG, so runs are comparable. */
function rng(seed) {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
}

function sectionName(index) {
  // A..Z, then AA, AB, … (labels are letters or digits)
  let name = '';
  let n = index;
  do {
    name = String.fromCharCode(65 + (n % 26)) + name;
    n = Math.floor(n / 26) - 1;
  } while (n >= 0);
  return name;
}

/**
 * A show with `count` seats: sections of 50 rows whose rows widen from 36
 * to 60 seats (theatre-like), categories by row, ~70% available. With
 * `coords`, sections sit around an oval like an arena, in metres.
 */
export function makeShow(id, { seats: count = 50000, coords = false, seed = 42 } = {}) {
  const random = rng(seed);
  const seats = [];
  const sectionsCount = Math.max(1, Math.ceil(count / 2400));
  const layoutRows = [];
  for (let s = 0; seats.length < count; s++) {
    const section = sectionName(s);
    for (let r = 0; r < 50 && seats.length < count; r++) {
      const length = Math.min(36 + (r >> 1), count - seats.length);
      const category = r < 10 ? CATEGORIES[0] : r < 30 ? CATEGORIES[1] : CATEGORIES[2];
      for (let k = 1; k <= length; k++) {
        const roll = random();
        const seat = {
          id: `${section}-${r + 1}-${k}`,
          section,
          row: String(r + 1),
          number: String(k),
          category: category.name,
          price: { amount: category.amount, currency: 'EUR' },
          status: roll < 0.7 ? 'AVAILABLE' : roll < 0.8 ? 'HELD' : 'BOOKED',
        };
        if (coords) layoutRows.push({ seat, s, r, k, length });
        if (r === 0 && (k === 1 || k === length)) seat.accessible = true;
        seats.push(seat);
      }
    }
  }
  if (coords) placeOnOval(layoutRows, sectionsCount);
  return {
    id,
    version: 1000,
    seats,
    byId: new Map(seats.map((seat) => [seat.id, seat])),
    standing: [
      { section: 'FLOOR', category: 'ga', capacity: 5000, available: 4990, price: { amount: 6000, currency: 'EUR' } },
    ],
    ring: [], // [{version, text}] for Last-Event-ID
    streams: new Set(),
    snapshotCache: null, // {version, text}
  };
}

/** Arena seating: each section a wedge around an oval, rows going outward. */
function placeOnOval(rows, sections) {
  const pitch = 0.5; // metres between seats
  const inner = (sections * 62 * pitch) / (2 * Math.PI) + 5;
  for (const { seat, s, r, k, length } of rows) {
    const angle = (2 * Math.PI * (s + 0.5)) / sections;
    const radius = inner + r * 0.8;
    const along = (k - (length + 1) / 2) * pitch;
    const cx = Math.cos(angle) * radius * 1.4;
    const cy = Math.sin(angle) * radius;
    // tangent of the oval at that angle, normalised
    const tx = -Math.sin(angle) * 1.4;
    const ty = Math.cos(angle);
    const norm = Math.hypot(tx, ty);
    seat.x = Math.round((cx + (tx / norm) * along + 500) * 100) / 100;
    seat.y = Math.round((cy + (ty / norm) * along + 400) * 100) / 100;
  }
}

function summaryOf(show) {
  const summary = { available: 0, held: 0, booked: 0 };
  for (const seat of show.seats) summary[seat.status.toLowerCase()]++;
  for (const place of show.standing) {
    summary.available += place.available;
    summary.booked += place.capacity - place.available;
  }
  return summary;
}

/** The snapshot event, serialized once per version (50,000 seats ≈ 7 MB). */
function snapshotEvent(show) {
  if (!show.snapshotCache || show.snapshotCache.version !== show.version) {
    const data = JSON.stringify({
      show_id: show.id,
      version: show.version,
      seats: show.seats,
      standing: show.standing,
      summary: summaryOf(show),
    });
    show.snapshotCache = { version: show.version, text: `event: snapshot\nid: ${show.version}\ndata: ${data}\n\n` };
  }
  return show.snapshotCache.text;
}

function nextStatus(status, random) {
  if (status === 'AVAILABLE') return 'HELD';
  if (status === 'HELD') return random() < 0.5 ? 'BOOKED' : 'AVAILABLE';
  return 'AVAILABLE';
}

/** Applies a change to the show and returns the `changes` payload. */
function applyChange(show, { n = 1, ids = null, status = null, standing = 0, random }) {
  const seats = [];
  const chosen = ids
    ? ids.map((id) => show.byId.get(id)).filter(Boolean)
    : Array.from({ length: n }, () => show.seats[Math.floor(random() * show.seats.length)]);
  const seen = new Set();
  for (const seat of chosen) {
    if (!seat || seen.has(seat.id)) continue;
    seen.add(seat.id);
    seat.status = status && STATUSES.includes(status) ? status : nextStatus(seat.status, random);
    seats.push({ id: seat.id, status: seat.status });
  }
  const standingChanges = [];
  if (standing) {
    for (const place of show.standing) {
      place.available = Math.max(0, Math.min(place.capacity, place.available - standing));
      standingChanges.push({ section: place.section, available: place.available });
    }
  }
  show.version += 1;
  return { version: show.version, seats, standing: standingChanges };
}

function send(show, text) {
  for (const stream of show.streams) stream.write(text);
}

function readBody(request) {
  return new Promise((resolve) => {
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

function showPage(id, { seats, coords, max }) {
  const query = new URLSearchParams({ seats: String(seats), coords: coords ? '1' : '0' });
  const stream = `/v1/shows/${encodeURIComponent(id)}/seats/stream?${query}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Fake show ${escapeHtml(id)}</title>
<link rel="stylesheet" href="/assets/seatmap.css">
</head>
<body>
<h1>Fake show ${escapeHtml(id)}</h1>
<div class="seat-map" data-seat-map data-stream-url="${escapeHtml(stream)}" data-max-select="${escapeHtml(max)}">
  <p data-seat-map-status>Loading the seat map…</p>
</div>
<div data-seat-map-legend></div>
<form data-seat-form method="post" action="/fake/hold">
  <p data-selection-summary>No seats selected.</p>
  <button type="submit">Hold selected seats</button>
</form>
<script src="/assets/seatmap.js" defer></script>
</body>
</html>
`;
}

const PREVIEW_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Layout preview</title>
<link rel="stylesheet" href="/assets/seatmap.css">
</head>
<body>
<textarea id="layout" rows="8" cols="60"></textarea>
<div id="preview"></div>
<script src="/assets/seatmap.js" defer></script>
</body>
</html>
`;

/**
 * Starts the fake server. Options: {port = 0, host = '127.0.0.1', seats =
 * 50000, coords = false, maxSelect = 4, heartbeatMs = 15000}. Resolves to
 * {url, port, close(), shows}.
 */
export async function startFakeServer(options = {}) {
  const defaults = {
    seats: options.seats ?? 50000,
    coords: options.coords ?? false,
    max: options.maxSelect ?? 4,
  };
  const heartbeatMs = options.heartbeatMs ?? 15000;
  const random = rng(7);
  const shows = new Map(); // key `${id}|${seats}|${coords}` -> show

  function showFor(id, params) {
    const seats = Math.max(0, Math.min(200000, Number(params.get('seats') ?? defaults.seats) || 0));
    const coords = params.has('coords') ? params.get('coords') === '1' : defaults.coords;
    const key = `${id}|${seats}|${coords}`;
    let show = shows.get(key);
    if (!show) {
      show = makeShow(id, { seats, coords });
      shows.set(key, show);
    }
    return show;
  }

  function targets(params) {
    const only = params.get('show');
    return Array.from(shows.values()).filter((show) => !only || show.id === only);
  }

  function openStream(request, response, show) {
    response.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    // Headers now, as the Rust server does: the browser's EventSource opens
    // (and the map says "Live" again) even when a resumed stream is quiet.
    response.flushHeaders();
    const last = Number.parseInt(request.headers['last-event-id'] ?? '', 10);
    const oldest = show.ring.length ? show.ring[0].version : show.version + 1;
    if (Number.isFinite(last) && last <= show.version && last >= oldest - 1) {
      // Resume: the changes after `last` that are still kept.
      for (const entry of show.ring) if (entry.version > last) response.write(entry.text);
    } else {
      response.write(snapshotEvent(show));
    }
    show.streams.add(response);
    const heartbeat = setInterval(() => response.write(':\n\n'), heartbeatMs);
    const done = () => {
      clearInterval(heartbeat);
      show.streams.delete(response);
    };
    request.on('close', done);
    response.on('close', done);
  }

  async function handle(request, response) {
    const url = new URL(request.url, 'http://localhost');
    const params = url.searchParams;
    let match;
    if (request.method === 'GET' && (match = url.pathname.match(/^\/assets\/(seatmap\.(?:js|css))$/))) {
      const body = await readFile(path.join(ASSETS, match[1]));
      const type = match[1].endsWith('.js') ? 'text/javascript; charset=utf-8' : 'text/css; charset=utf-8';
      response.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
      return response.end(body);
    }
    if (request.method === 'GET' && (match = url.pathname.match(/^\/shows\/([A-Za-z0-9_-]+)$/))) {
      const page = showPage(match[1], {
        seats: params.get('seats') ?? defaults.seats,
        coords: params.has('coords') ? params.get('coords') === '1' : defaults.coords,
        max: params.get('max') ?? defaults.max,
      });
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': CSP });
      return response.end(page);
    }
    if (request.method === 'GET' && url.pathname === '/preview') {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': CSP });
      return response.end(PREVIEW_PAGE);
    }
    if (request.method === 'GET' && (match = url.pathname.match(/^\/v1\/shows\/([A-Za-z0-9_-]+)\/seats\/stream$/))) {
      return openStream(request, response, showFor(match[1], params));
    }
    if (request.method === 'POST' && url.pathname === '/fake/change') {
      await readBody(request);
      const ids = params.get('ids') ? params.get('ids').split(',') : null;
      const results = [];
      for (const show of targets(params)) {
        const change = applyChange(show, {
          n: Math.max(1, Number(params.get('n') ?? 1) || 1),
          ids,
          status: params.get('status'),
          standing: Number(params.get('standing') ?? 0) || 0,
          random,
        });
        const text = `event: changes\nid: ${change.version}\ndata: ${JSON.stringify(change)}\n\n`;
        show.ring.push({ version: change.version, text });
        if (show.ring.length > RING) show.ring.shift();
        send(show, text);
        results.push({ show: show.id, streams: show.streams.size, ...change });
      }
      response.writeHead(200, { 'content-type': 'application/json' });
      return response.end(JSON.stringify(results));
    }
    if (request.method === 'POST' && url.pathname === '/fake/snapshot') {
      await readBody(request);
      const ids = params.get('ids') ? params.get('ids').split(',') : null;
      const results = [];
      for (const show of targets(params)) {
        if (ids) {
          // Silently: the next snapshot carries it, no `changes` event does.
          applyChange(show, { ids, status: params.get('status'), random });
          show.ring = []; // a resumed stream must get a snapshot now
        }
        send(show, snapshotEvent(show));
        results.push({ show: show.id, streams: show.streams.size, version: show.version });
      }
      response.writeHead(200, { 'content-type': 'application/json' });
      return response.end(JSON.stringify(results));
    }
    if (request.method === 'POST' && url.pathname === '/fake/drop') {
      await readBody(request);
      let dropped = 0;
      for (const show of shows.values()) {
        for (const stream of show.streams) {
          stream.end();
          dropped++;
        }
        show.streams.clear();
      }
      response.writeHead(200, { 'content-type': 'application/json' });
      return response.end(JSON.stringify({ dropped }));
    }
    if (request.method === 'POST' && url.pathname === '/fake/hold') {
      // The page's form posts here; echo what the browser sent.
      const body = new URLSearchParams(await readBody(request));
      response.writeHead(200, { 'content-type': 'application/json' });
      return response.end(JSON.stringify({ seat_ids: body.getAll('seat_ids') }));
    }
    if (request.method === 'GET' && url.pathname === '/fake/state') {
      const state = Array.from(shows.values(), (show) => ({
        show: show.id,
        seats: show.seats.length,
        version: show.version,
        streams: show.streams.size,
      }));
      response.writeHead(200, { 'content-type': 'application/json' });
      return response.end(JSON.stringify(state));
    }
    if (url.pathname === '/favicon.ico') {
      response.writeHead(204);
      return response.end();
    }
    response.writeHead(404, { 'content-type': 'text/plain' });
    response.end('not found\n');
  }

  const server = http.createServer((request, response) => {
    handle(request, response).catch((error) => {
      console.error(error);
      if (!response.headersSent) response.writeHead(500);
      response.end();
    });
  });
  await new Promise((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    port,
    shows,
    close() {
      for (const show of shows.values()) for (const stream of show.streams) stream.destroy();
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

function parseArgs(argv) {
  const options = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--port') options.port = Number(argv[++i]);
    else if (arg === '--host') options.host = argv[++i];
    else if (arg === '--seats') options.seats = Number(argv[++i]);
    else if (arg === '--coords') options.coords = true;
    else if (arg === '--max-select') options.maxSelect = Number(argv[++i]);
    else if (arg === '--heartbeat-ms') options.heartbeatMs = Number(argv[++i]);
    else {
      console.error(`unknown option ${arg}`);
      process.exit(2);
    }
  }
  return options;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const server = await startFakeServer({ port: 8090, ...parseArgs(process.argv.slice(2)) });
  console.log(`fake seat-map server on ${server.url} (try ${server.url}/shows/shw_fake)`);
  const stop = () => server.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
