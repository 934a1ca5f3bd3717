// A buyer in a real browser: search with a typo, pick seats on the live map,
// hold, pay, see QR tickets; a declined card; two buyers watching one map.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  launchBrowser, screenshot, seatState, signedInContext, startServer, waitForSeatMap,
} from "./support.mjs";

/** API.md: a change on the map reaches every subscriber within 1 s. */
const LIVE_UPDATE_MAX_MS = 1000;

let server;
let browser;
let admin;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  admin = await server.api.adminToken();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test("a buyer searches with a typo, picks two seats, holds, pays with tok_visa and sees two QR tickets", async () => {
  const { showId } = await server.api.newShow(admin, {
    event: { title: "Coldplay: Music of the Spheres", performer: "Coldplay", genre: "pop" },
  });
  // Someone was faster for a few seats: the map shows them booked.
  const early = await server.api.newUser("early");
  await server.api.book(early.token, showId, ["B-1-5", "B-1-6", "B-1-7", "B-1-8"]);
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();

  await page.goto(`${server.baseUrl}/signup`);
  const email = `coldplay-fan-${Date.now()}@browser.test`;
  await page.fill("input[name=name]", "Chris Fan");
  await page.fill("input[name=email]", email);
  await page.fill("input[name=password]", "yellow-stars-1");
  await page.click("form[action='/signup'] button[type=submit]");
  await page.waitForURL(`${server.baseUrl}/`);
  assert.ok(await page.isVisible("text=My bookings"), "signed in after sign-up");

  await page.fill("input[name=q]", "coldpay");
  await page.click("form.search button[type=submit]");
  await page.waitForURL(/\?q=coldpay/);
  const result = page.locator("[data-results] li.card", { hasText: "Coldplay" });
  assert.equal(await result.count(), 1, "the typo still finds Coldplay");
  await screenshot(page, "buyer-1-search");
  await result.locator("a.button", { hasText: "Choose seats" }).click();
  await page.waitForURL(`${server.baseUrl}/shows/${showId}`);

  await waitForSeatMap(page);
  await page.click('[data-seat-id="A-1-5"]');
  await page.click('[data-seat-id="A-1-6"]');
  assert.match(await seatState(page, "A-1-5"), /selected/);
  assert.match(await seatState(page, "A-1-6"), /selected/);
  assert.match(await page.textContent("[data-selection-summary]"), /A-1-5/);
  assert.match(await seatState(page, "B-1-5"), /\bbooked\b/);
  await screenshot(page, "buyer-2-seat-picker");
  await page.click("[data-hold-selected]");

  await page.waitForURL(/\/holds\/hld_/);
  assert.match(await page.textContent("[data-countdown]"), /^\d+:\d\d$/, "a visible countdown");
  const rows = await page.$$eval("table.places tr[data-seat-id]", (trs) => trs.map((tr) => tr.dataset.seatId));
  assert.deepEqual(rows.sort(), ["A-1-5", "A-1-6"]);
  assert.match(await page.textContent("[data-total]"), /100\.00/);
  await screenshot(page, "buyer-3-hold");
  await page.selectOption("select[name=payment_token]", "tok_visa");
  await page.click("[data-pay-form] button[type=submit]");

  await page.waitForURL(/\/bookings\/bkg_/);
  const tickets = page.locator("li.ticket");
  assert.equal(await tickets.count(), 2, "two tickets");
  assert.equal(await page.locator("li.ticket .qr svg").count(), 2, "each with a QR code");
  assert.match(await page.textContent("[data-booking-status]"), /Confirmed/);
  await screenshot(page, "buyer-4-tickets");

  assert.equal(await server.api.seatStatus(showId, "A-1-5"), "BOOKED");
  assert.equal(await server.api.seatStatus(showId, "A-1-6"), "BOOKED");
  await context.close();
});

test("a declined card shows a clear message and the seats go back on sale", async () => {
  const { showId } = await server.api.newShow(admin);
  const buyer = await server.api.newUser("declined");
  const context = await signedInContext(browser, server.baseUrl, buyer.token);
  const page = await context.newPage();
  await page.goto(`${server.baseUrl}/shows/${showId}`);
  await waitForSeatMap(page);
  await page.click('[data-seat-id="A-2-3"]');
  await page.click('[data-seat-id="A-2-4"]');
  await page.click("[data-hold-selected]");
  await page.waitForURL(/\/holds\/hld_/);
  assert.equal(await server.api.seatStatus(showId, "A-2-3"), "HELD");

  await page.selectOption("select[name=payment_token]", "tok_declined");
  await page.click("[data-pay-form] button[type=submit]");
  const message = page.locator('[data-problem-code="payment_declined"]');
  await message.waitFor();
  assert.match(await message.textContent(), /declined/i);
  assert.match(await message.textContent(), /back on sale/i);
  await screenshot(page, "declined-1-message");

  assert.equal(await server.api.seatStatus(showId, "A-2-3"), "AVAILABLE");
  assert.equal(await server.api.seatStatus(showId, "A-2-4"), "AVAILABLE");
  await page.goto(`${server.baseUrl}/shows/${showId}`);
  await waitForSeatMap(page);
  assert.match(await seatState(page, "A-2-3"), /\bavailable\b/);
  assert.match(await seatState(page, "A-2-4"), /\bavailable\b/);
  await context.close();
});

test("a seat held in one browser turns held in another within 1 s, and available again after release", async () => {
  const { showId } = await server.api.newShow(admin);
  const [alice, bob] = [await server.api.newUser("alice"), await server.api.newUser("bob")];
  const aliceContext = await signedInContext(browser, server.baseUrl, alice.token);
  const bobContext = await signedInContext(browser, server.baseUrl, bob.token);
  const alicePage = await aliceContext.newPage();
  const bobPage = await bobContext.newPage();
  await Promise.all([alicePage.goto(`${server.baseUrl}/shows/${showId}`), bobPage.goto(`${server.baseUrl}/shows/${showId}`)]);
  await Promise.all([waitForSeatMap(alicePage), waitForSeatMap(bobPage)]);
  assert.match(await seatState(bobPage, "A-1-1"), /\bavailable\b/);

  // Alice holds A-1-1 (the hold is committed when her hold page loads).
  await alicePage.click('[data-seat-id="A-1-1"]');
  await alicePage.click("[data-hold-selected]");
  await alicePage.waitForURL(/\/holds\/hld_/);
  const held = Date.now();
  await bobPage.waitForFunction(
    () => document.querySelector('[data-seat-id="A-1-1"]').classList.contains("held"),
    null,
    { timeout: LIVE_UPDATE_MAX_MS },
  );
  console.log(`# held seat seen by the other browser after ${Date.now() - held} ms`);
  await screenshot(bobPage, "two-browsers-1-held");

  await alicePage.click("text=Release these seats");
  await alicePage.waitForURL(`${server.baseUrl}/shows/${showId}`);
  const released = Date.now();
  await bobPage.waitForFunction(
    () => document.querySelector('[data-seat-id="A-1-1"]').classList.contains("available"),
    null,
    { timeout: LIVE_UPDATE_MAX_MS },
  );
  console.log(`# released seat seen by the other browser after ${Date.now() - released} ms`);
  await aliceContext.close();
  await bobContext.close();
});
