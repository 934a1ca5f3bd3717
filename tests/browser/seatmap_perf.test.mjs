// The 50,000-seat seat map in Chromium against the real server: how long
// the snapshot takes to draw and a `changes` event to apply. Measured and
// reported (docs/benchmarks.md), never asserted as a time: the machine is
// shared. What is asserted is that every seat is drawn and every change
// applied without a page error.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { measureSeatMap } from "./seatmap_bench.mjs";
import { launchBrowser, screenshot, SCREENSHOTS, startServer } from "./support.mjs";

const SECTIONS = 10;
const ROWS_PER_SECTION = 50;
const SEATS_PER_ROW = 100;
const SEATS = SECTIONS * ROWS_PER_SECTION * SEATS_PER_ROW;
const PAGE_LOADS = 5;
const CHANGES = 40;

let server;
let browser;

before(async () => {
  // The changes come from one buyer as fast as the page applies them.
  server = await startServer({ BOXOFFICE_RATE_LIMITS: "off" });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

function arena() {
  const sections = [];
  for (let s = 0; s < SECTIONS; s += 1) {
    const rows = [];
    for (let r = 1; r <= ROWS_PER_SECTION; r += 1) rows.push({ label: String(r), seats: SEATS_PER_ROW });
    sections.push({ id: `S${s + 1}`, name: `Section ${s + 1}`, kind: "seated",
      category: s < 3 ? "premium" : "standard", rows });
  }
  return { name: "Stadium 50k", city: "Berlin", address: "Arena 1", timezone: "Europe/Berlin", sections };
}

test(`a ${SEATS}-seat map renders and applies changes in Chromium (measured)`, async () => {
  const admin = await server.api.adminToken();
  const { showId } = await server.api.newShow(admin, {
    venue: arena(),
    prices: { premium: { amount: 9900, currency: "EUR" }, standard: { amount: 4900, currency: "EUR" } },
  });
  const buyer = await server.api.newUser("perf");

  // Each trigger is one change: hold the next seat, or release the last hold.
  let heldId = null;
  let next = 0;
  const triggerChange = async () => {
    if (heldId) {
      await server.api.expect(204, "DELETE", `/v1/holds/${heldId}`, { token: buyer.token });
      heldId = null;
      return;
    }
    next += 1;
    const seat = `S${1 + (next % SECTIONS)}-${1 + (next % ROWS_PER_SECTION)}-${1 + (next % SEATS_PER_ROW)}`;
    const hold = await server.api.expect(201, "POST", "/v1/holds", {
      token: buyer.token, body: { show_id: showId, seat_ids: [seat] },
    });
    heldId = hold.id;
  };

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const result = await measureSeatMap(page, {
    url: `${server.baseUrl}/shows/${showId}`,
    triggerChange,
    repetitions: PAGE_LOADS,
    changes: CHANGES,
  });
  await screenshot(page, "seatmap-50k");
  const naive = await naiveBaseline(page, `${server.baseUrl}/v1/shows/${showId}/seats`);
  await context.close();
  result.naiveBaseline = naive;

  writeFileSync(path.join(SCREENSHOTS, "seatmap-50k.json"), JSON.stringify(result, null, 2));
  console.log(`# ${SEATS} seats: render ms ${JSON.stringify(result.render)}`);
  console.log(`# ${SEATS} seats: apply ms ${JSON.stringify(result.apply)}`);
  console.log(`# naive baseline (flat SVG of <rect>s, same run): ${JSON.stringify(naive)}`);
  assert.equal(result.domSeats, SEATS, "every seat is drawn");
  assert.equal(result.render.n, PAGE_LOADS, "every load was measured");
  assert.equal(result.apply.n, CHANGES, "every change was applied");
  assert.deepEqual(result.errors, [], "no page errors");
});

/**
 * The naive way, measured in the same browser and run as a baseline: one
 * flat SVG with a <rect> per seat from the same seat map, set with
 * innerHTML; a change sets one rect's class. Times run from the start of
 * the work to the end of the next painted frame, as seatmap.js measures.
 */
async function naiveBaseline(page, seatsUrl) {
  await page.goto("about:blank");
  const map = await (await fetch(seatsUrl)).json();
  return page.evaluate(async (seatMap) => {
    const painted = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
    const median = (values) => values.slice().sort((a, b) => a - b)[Math.floor(values.length / 2)];
    const renders = [];
    for (let load = 0; load < 5; load += 1) {
      document.body.innerHTML = "";
      await painted();
      const started = performance.now();
      const columns = 400;
      const parts = seatMap.seats.map((seat, index) =>
        `<rect x="${(index % columns) * 4}" y="${Math.floor(index / columns) * 4}" width="3" height="3" ` +
        `class="${seat.status.toLowerCase()}" data-seat-id="${seat.id}"></rect>`);
      const rows = Math.ceil(seatMap.seats.length / columns);
      document.body.innerHTML = `<svg viewBox="0 0 ${columns * 4} ${rows * 4}" width="1200">${parts.join("")}</svg>`;
      await painted();
      renders.push(performance.now() - started);
    }
    const rects = document.querySelectorAll("rect");
    const applies = [];
    for (let change = 0; change < 40; change += 1) {
      const started = performance.now();
      const rect = rects[(change * 997) % rects.length];
      rect.setAttribute("class", change % 2 ? "available" : "held");
      rect.setAttribute("fill", change % 2 ? "#2e9d4f" : "#e7c98b");
      await painted();
      applies.push(performance.now() - started);
    }
    return { renderMedianMs: Math.round(median(renders)), applyMedianMs: Math.round(median(applies) * 10) / 10,
      renderMs: renders.map(Math.round), applyMaxMs: Math.round(Math.max(...applies) * 10) / 10 };
  }, map);
}
