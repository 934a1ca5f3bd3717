// Door staff in a real browser: a ticket is admitted once, then refused as
// already checked in; a made-up code is invalid.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { launchBrowser, screenshot, signedInContext, startServer } from "./support.mjs";

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

test("door staff check a ticket in, then the same ticket again is already checked in", async () => {
  const admin = await server.api.adminToken();
  const { showId } = await server.api.newShow(admin);
  const buyer = await server.api.newUser("guest");
  const booking = await server.api.book(buyer.token, showId, ["A-1-2"]);
  const code = booking.tickets[0].code;

  const staff = await server.api.newUser("door");
  await server.api.expect(200, "PATCH", `/v1/users/${staff.user.id}`, { token: admin, body: { role: "staff" } });
  const staffToken = await server.api.login(staff.email, staff.password);
  const context = await signedInContext(browser, server.baseUrl, staffToken, { viewport: { width: 390, height: 844 } });
  const page = await context.newPage();

  await page.goto(`${server.baseUrl}/checkin`);
  await page.fill("input[name=code]", code);
  await page.click("[data-checkin-form] button[type=submit]");
  const admitted = page.locator('[data-verdict="admitted"]');
  await admitted.waitFor();
  assert.match(await admitted.textContent(), /Admitted/);
  assert.match(await admitted.textContent(), /A-1-2/);
  await screenshot(page, "door-1-admitted");

  await page.fill("input[name=code]", code);
  await page.click("[data-checkin-form] button[type=submit]");
  const repeat = page.locator('[data-verdict="already_checked_in"]');
  await repeat.waitFor();
  assert.match(await repeat.textContent(), /Already checked in/);
  assert.match(await repeat.textContent(), /at \w{3} \d+ \w{3} \d{4}, \d\d:\d\d UTC/);
  await screenshot(page, "door-2-already");

  await page.fill("input[name=code]", `${code.slice(0, -4)}AAAA`);
  await page.click("[data-checkin-form] button[type=submit]");
  await page.locator('[data-verdict="invalid"]').waitFor();
  assert.match(await page.textContent('[data-verdict="invalid"]'), /Invalid/);
  await context.close();
});

test("a customer cannot open the check-in page", async () => {
  const buyer = await server.api.newUser("nosy");
  const context = await signedInContext(browser, server.baseUrl, buyer.token);
  const page = await context.newPage();
  const response = await page.goto(`${server.baseUrl}/checkin`);
  assert.equal(response.status(), 403);
  assert.match(await page.textContent("h1"), /Not allowed/);
  await context.close();
});
