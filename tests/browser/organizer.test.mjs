// An organizer in a real browser: a venue from layout JSON (with preview),
// an event and a show, then the live sales page while a buyer books.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ADMIN_EMAIL, ADMIN_PASSWORD, launchBrowser, screenshot, startServer } from "./support.mjs";

/** How long the live sales page may take to show a booking (API.md: 1 s, plus margin for the page's own fetch). */
const SALES_UPDATE_MAX_MS = 3000;

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const LAYOUT = {
  name: "Elbe Hall",
  city: "Hamburg",
  address: "Kai 7",
  timezone: "Europe/Berlin",
  sections: [
    { id: "S", name: "Stalls", kind: "seated", category: "stalls",
      rows: [{ label: "1", seats: 12 }, { label: "2", seats: 14 }, { label: "3", seats: 14 }] },
    { id: "B", name: "Balcony", kind: "seated", category: "balcony",
      rows: [{ label: "1", seats: 16 }, { label: "2", seats: 16 }] },
    { id: "PIT", name: "Pit", kind: "standing", category: "pit", capacity: 120 },
  ],
};

test("an organizer creates a venue from JSON, an event and a show, and sees sales move when a buyer books", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${server.baseUrl}/admin`);
  await page.waitForURL(/\/login\?next=%2Fadmin/);
  await page.fill("input[name=email]", ADMIN_EMAIL);
  await page.fill("input[name=password]", ADMIN_PASSWORD);
  await page.click("form[action='/login'] button[type=submit]");
  await page.waitForURL(`${server.baseUrl}/admin`);

  await page.click("text=New venue");
  await page.fill("textarea[name=layout_json]", JSON.stringify(LAYOUT, null, 2));
  await page.waitForFunction(() => document.querySelectorAll("[data-layout-preview] [data-seat-id]").length === 72);
  assert.equal(await page.locator("[data-layout-preview] [data-standing-section=PIT]").count(), 1);
  await screenshot(page, "organizer-1-venue-preview");
  await page.click("[data-venue-form] button[type=submit]");
  await page.waitForURL(/\/admin\/venues\/ven_/);
  assert.match(await page.textContent("main"), /72 seats, 120 standing places/);

  await page.goto(`${server.baseUrl}/admin/events/new`);
  await page.fill("input[name=title]", "Harbour Lights");
  await page.fill("input[name=performer]", "Elbe Ensemble");
  await page.fill("input[name=genre]", "jazz");
  await page.fill("input[name=tags]", "jazz, harbour");
  await page.click("[data-event-form] button[type=submit]");
  await page.waitForURL(/\/admin\/events\/evt_/);

  await page.selectOption("select[name=venue_id]", { label: "Elbe Hall, Hamburg" });
  await page.click("text=Add a show");
  await page.waitForURL(/\/shows\?venue_id=/);
  const startsAt = new Date(Date.now() + 14 * 24 * 3600 * 1000).toISOString().slice(0, 16);
  await page.fill("input[name=starts_at]", startsAt);
  await page.fill("input[name=price_stalls]", "59.90");
  await page.fill("input[name=price_balcony]", "39");
  await page.fill("input[name=price_pit]", "25.50");
  await page.fill("input[name=max_tickets_per_user]", "6");
  await page.click("[data-show-form] button[type=submit]");
  await page.waitForURL(/\/admin\/shows\/shw_/);
  const showId = page.url().match(/shw_[a-z0-9]+/)[0];

  await page.click("text=Live sales");
  await page.waitForURL(/\/sales$/);
  assert.equal((await page.textContent("[data-tickets-sold]")).trim(), "0");
  await page.waitForFunction(() => /live/.test(document.querySelector("[data-live-status]").textContent));

  // A buyer books two stalls seats through the API, as any client would.
  const buyer = await server.api.newUser("harbour");
  const booked = Date.now();
  await server.api.book(buyer.token, showId, ["S-1-6", "S-1-7"]);
  await page.waitForFunction(
    () => document.querySelector("[data-tickets-sold]").textContent.trim() === "2",
    null,
    { timeout: SALES_UPDATE_MAX_MS },
  );
  console.log(`# the sales page showed the booking after ${Date.now() - booked} ms`);
  assert.match(await page.textContent("[data-revenue]"), /119[.,]80/);
  const stalls = page.locator('tr[data-section="S"]');
  assert.equal((await stalls.locator('[data-field="booked"]').textContent()).trim(), "2");
  assert.equal((await stalls.locator('[data-field="available"]').textContent()).trim(), "38");
  await screenshot(page, "organizer-2-sales");
  await context.close();
});
