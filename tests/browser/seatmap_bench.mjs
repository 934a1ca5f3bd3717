// Benchmark of the live seat map (crates/http/assets/seatmap.js) in headless
// Chromium: render time of the snapshot over several page loads, and time to
// apply a `changes` event over many changes. The numbers are the page's own
// (element.seatMapStats / the `seatmap:rendered` and `seatmap:applied`
// events; their definitions are at the top of seatmap.js).
//
//   node seatmap_bench.mjs --fake [--seats 50000] [--coords] [--loads 5] [--changes 50]
//   node seatmap_bench.mjs --base-url http://127.0.0.1:8080 --show-id shw_… \
//        [--change-url URL (POSTed per change) | --change-cmd 'shell command']
//   (BASE_URL, SHOW_ID, CHANGE_URL, CHANGE_CMD work as environment variables too)
//
// Prints one JSON object on stdout. Import the functions to measure from a
// test with another way to trigger a change (e.g. API calls on the real server).

import { chromium } from 'playwright-core';
import { exec } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Launches the system Chromium with the flags above. */
export function launchChromium(options = {}) {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, ...options });
}

/** {n, min, median, p90, max, mean} of a list of milliseconds, rounded to 0.1. */
export function summarize(samples) {
  const sorted = samples.filter((v) => typeof v === 'number' && Number.isFinite(v)).sort((a, b) => a - b);
  const r = (v) => (v === undefined ? null : Math.round(v * 10) / 10);
  if (!sorted.length) return { n: 0, min: null, median: null, p90: null, max: null, mean: null };
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  const median =
    sorted.length % 2 ? sorted[sorted.length >> 1] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
  return {
    n: sorted.length,
    min: r(sorted[0]),
    median: r(median),
    p90: r(at(0.9)),
    max: r(sorted[sorted.length - 1]),
    mean: r(sorted.reduce((a, b) => a + b, 0) / sorted.length),
  };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Collects the map's events from the very start of every document, so none
// is missed however fast it comes.
function collector() {
  if (window.__bench) return;
  const bench = (window.__bench = { rendered: [], applied: [] });
  document.addEventListener('seatmap:rendered', (event) => bench.rendered.push(event.detail));
  document.addEventListener('seatmap:applied', (event) => bench.applied.push(event.detail));
}

const prepared = new WeakSet();
const pageErrors = new WeakMap();

/** Installs the event collector and error capture on a page (once). */
export async function preparePage(page) {
  if (prepared.has(page)) return;
  prepared.add(page);
  const errors = [];
  pageErrors.set(page, errors);
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  await page.addInitScript(collector);
}

/** Errors (uncaught, console.error, CSP violations) seen on the page so far. */
export function errorsOf(page) {
  return pageErrors.get(page) || [];
}

/**
 * Resolves with the detail of the page's `index`-th (0-based) `seatmap:<kind>`
 * event of the current document, waiting for it if needed.
 */
export function seatMapEvent(page, kind, index, timeoutMs = 60000) {
  return page.evaluate(
    ([kind, index, timeoutMs]) =>
      new Promise((resolve, reject) => {
        const list = window.__bench[kind];
        if (list.length > index) return resolve(list[index]);
        const name = `seatmap:${kind}`;
        const timer = setTimeout(() => {
          document.removeEventListener(name, listener);
          reject(new Error(`no ${name} event #${index} within ${timeoutMs} ms`));
        }, timeoutMs);
        function listener() {
          if (list.length <= index) return;
          clearTimeout(timer);
          document.removeEventListener(name, listener);
          resolve(list[index]);
        }
        document.addEventListener(name, listener);
      }),
    [kind, index, timeoutMs]
  );
}

/**
 * Loads `url` `repetitions` times and waits each time for the seat map's
 * first `seatmap:rendered`. Returns {renderMs, loadToRenderMs, phases, seats}
 * with renderMs/loadToRenderMs as summaries (and their samples).
 */
export async function measureRender(page, { url, repetitions = 5, timeoutMs = 60000 }) {
  await preparePage(page);
  const render = [];
  const loadToRender = [];
  const phases = { parseMs: [], modelMs: [], layoutMs: [], markupMs: [], domMs: [], frameMs: [] };
  let seats = null;
  for (let i = 0; i < repetitions; i++) {
    const started = performance.now();
    await page.goto(url, { waitUntil: 'domcontentloaded', timeout: timeoutMs });
    const detail = await seatMapEvent(page, 'rendered', 0, timeoutMs);
    loadToRender.push(performance.now() - started);
    render.push(detail.renderMs);
    for (const key of Object.keys(phases)) phases[key].push(detail.phases?.[key]);
    seats = detail.seats;
  }
  return {
    seats,
    renderMs: { ...summarize(render), samples: render.map(round) },
    loadToRenderMs: { ...summarize(loadToRender), samples: loadToRender.map(round) },
    phases: Object.fromEntries(Object.entries(phases).map(([key, list]) => [key, summarize(list).median])),
  };
}

/**
 * On a page whose map is drawn, calls `triggerChange({index, page})`
 * `changes` times (awaiting it, then the page's `seatmap:applied`, then
 * `pauseMs`). triggerChange must cause at least one `changes` event for the
 * page's show. Returns {applyMs, workMs, frameMs, endToEndMs} summaries:
 * applyMs as defined in seatmap.js (handler start to painted frame), workMs
 * its synchronous part, frameMs the painted frame alone (rAF to painted),
 * endToEndMs from calling triggerChange to the applied event (with server).
 */
export async function measureApply(page, { triggerChange, changes = 50, pauseMs = 100, timeoutMs = 30000 }) {
  await preparePage(page);
  const apply = [];
  const work = [];
  const frame = [];
  const endToEnd = [];
  for (let i = 0; i < changes; i++) {
    const index = await page.evaluate(() => window.__bench.applied.length);
    const waiting = seatMapEvent(page, 'applied', index, timeoutMs);
    const started = performance.now();
    await triggerChange({ index: i, page });
    const detail = await waiting;
    endToEnd.push(performance.now() - started);
    apply.push(detail.applyMs);
    work.push(detail.workMs);
    frame.push(detail.frameMs);
    // Let a trigger that caused several events finish before the next one.
    await sleep(pauseMs);
  }
  return {
    applyMs: { ...summarize(apply), samples: apply.map(round) },
    workMs: summarize(work),
    frameMs: summarize(frame),
    endToEndMs: summarize(endToEnd),
  };
}

/**
 * The whole benchmark on one page: `repetitions` loads of `url` (render),
 * then `changes` changes on the last load (apply), if triggerChange is given.
 */
export async function measureSeatMap(
  page,
  { url, triggerChange = null, repetitions = 5, changes = 50, pauseMs = 100, timeoutMs = 60000 }
) {
  const render = await measureRender(page, { url, repetitions, timeoutMs });
  const domSeats = await page.locator('[data-seat-map] [data-seat-id]').count();
  const apply = triggerChange ? await measureApply(page, { triggerChange, changes, pauseMs, timeoutMs }) : null;
  return {
    url,
    seats: render.seats,
    domSeats,
    render: render.renderMs,
    loadToRender: render.loadToRenderMs,
    renderPhases: render.phases,
    apply: apply && apply.applyMs,
    applyWork: apply && apply.workMs,
    applyFrame: apply && apply.frameMs,
    applyEndToEnd: apply && apply.endToEndMs,
    errors: [...errorsOf(page)],
  };
}

/** triggerChange for fake_server.mjs: POST /fake/change?… (default one seat). */
export function fakeChangeTrigger(baseUrl, query = 'n=1') {
  return async () => {
    const response = await fetch(`${baseUrl}/fake/change?${query}`, { method: 'POST' });
    if (!response.ok) throw new Error(`POST /fake/change: ${response.status}`);
    await response.arrayBuffer();
  };
}

function round(value) {
  return Math.round(value * 10) / 10;
}

// ---- Command line ----------------------------------------------------

function parseArgs(argv) {
  const options = {
    fake: false,
    seats: 50000,
    coords: false,
    loads: 5,
    changes: 50,
    pauseMs: 100,
    width: 1280,
    height: 800,
    baseUrl: process.env.BASE_URL || null,
    showId: process.env.SHOW_ID || null,
    changeUrl: process.env.CHANGE_URL || null,
    changeCmd: process.env.CHANGE_CMD || null,
  };
  const value = (i) => {
    if (argv[i + 1] === undefined) throw new Error(`${argv[i]} needs a value`);
    return argv[i + 1];
  };
  for (let i = 0; i < argv.length; i++) {
    switch (argv[i]) {
      case '--fake': options.fake = true; break;
      case '--coords': options.coords = true; break;
      case '--seats': options.seats = Number(value(i++)); break;
      case '--loads': options.loads = Number(value(i++)); break;
      case '--changes': options.changes = Number(value(i++)); break;
      case '--pause-ms': options.pauseMs = Number(value(i++)); break;
      case '--width': options.width = Number(value(i++)); break;
      case '--height': options.height = Number(value(i++)); break;
      case '--base-url': options.baseUrl = value(i++); break;
      case '--show-id': options.showId = value(i++); break;
      case '--change-url': options.changeUrl = value(i++); break;
      case '--change-cmd': options.changeCmd = value(i++); break;
      default:
        throw new Error(`unknown option ${argv[i]} (see the top of seatmap_bench.mjs)`);
    }
  }
  return options;
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  let server = null;
  let url;
  let triggerChange = null;
  if (options.fake) {
    const { startFakeServer } = await import('./fake_server.mjs');
    server = await startFakeServer({ seats: options.seats, coords: options.coords });
    const showId = options.showId || 'shw_bench';
    url = `${server.url}/shows/${showId}?seats=${options.seats}&coords=${options.coords ? 1 : 0}`;
    triggerChange = fakeChangeTrigger(server.url, `n=1&show=${encodeURIComponent(showId)}`);
  } else {
    if (!options.baseUrl || !options.showId) throw new Error('give --fake, or --base-url and --show-id');
    url = `${options.baseUrl.replace(/\/$/, '')}/shows/${options.showId}`;
    if (options.changeUrl) {
      triggerChange = async () => {
        const response = await fetch(options.changeUrl, { method: 'POST' });
        if (!response.ok) throw new Error(`POST ${options.changeUrl}: ${response.status}`);
        await response.arrayBuffer();
      };
    } else if (options.changeCmd) {
      const run = promisify(exec);
      triggerChange = () => run(options.changeCmd);
    }
  }
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: options.width, height: options.height } });
    const result = await measureSeatMap(page, {
      url,
      triggerChange,
      repetitions: options.loads,
      changes: options.changes,
      pauseMs: options.pauseMs,
    });
    result.coords = options.fake ? options.coords : undefined;
    result.viewport = { width: options.width, height: options.height };
    result.chromium = browser.version();
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await browser.close();
    if (server) await server.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
