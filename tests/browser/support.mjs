// Shared parts of the browser tests: a real `boxoffice serve` on a fresh
// SQLite file, the HTTP API for setting up data, and Debian's Chromium
// driven by playwright-core.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const SCREENSHOTS = path.join(ROOT, "target", "browser-screenshots");
export const ADMIN_EMAIL = "organizer@browser.test";
export const ADMIN_PASSWORD = "organizer-password-1";
/** How long a server gets to say where it listens. */
const STARTUP_TIMEOUT_MS = 60_000;

const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run",
];

/** Starts `boxoffice serve` on a free port with its own database. */
export async function startServer(extraEnv = {}) {
  const binary = process.env.BOXOFFICE_BIN ?? path.join(ROOT, "target", "debug", "boxoffice");
  const dir = mkdtempSync(path.join(tmpdir(), "bx-browser-"));
  const env = {
    ...process.env,
    BOXOFFICE_LISTEN: "127.0.0.1:0",
    DATABASE_URL: `sqlite://${path.join(dir, "boxoffice.db")}`,
    BOXOFFICE_ADMIN_EMAIL: ADMIN_EMAIL,
    BOXOFFICE_ADMIN_PASSWORD: ADMIN_PASSWORD,
    BOXOFFICE_MAILBOX_DIR: path.join(dir, "mailbox"),
    ...extraEnv,
  };
  // One process, one embedded database: nothing shared with other runs.
  for (const name of ["REDIS_URL", "NATS_URL", "BOXOFFICE_METRICS_LISTEN"]) {
    if (!(name in extraEnv)) delete env[name];
  }
  const child = spawn(binary, ["serve"], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log = [];
  child.stderr.on("data", (chunk) => {
    log.push(chunk.toString());
    if (log.length > 200) log.shift();
    if (process.env.TEST_LOG) process.stderr.write(chunk);
  });
  const baseUrl = await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`boxoffice did not start in time:\n${log.join("")}`)),
      STARTUP_TIMEOUT_MS,
    );
    let buffered = "";
    child.stdout.on("data", (chunk) => {
      buffered += chunk.toString();
      const match = buffered.match(/boxoffice listening on (\S+)/);
      if (match) {
        clearTimeout(timer);
        resolve(match[1].replace(/\/$/, ""));
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`boxoffice exited with ${code}:\n${log.join("")}`));
    });
  });
  const api = new Api(baseUrl);
  return {
    baseUrl,
    api,
    log,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((resolve) => {
        if (child.exitCode !== null) resolve();
        else child.on("exit", resolve);
      });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The JSON API, as every client uses it. */
export class Api {
  constructor(baseUrl) {
    this.baseUrl = baseUrl;
  }

  async call(method, route, { body, token, headers = {} } = {}) {
    const response = await fetch(this.baseUrl + route, {
      method,
      headers: {
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    const json = text ? JSON.parse(text) : null;
    return { status: response.status, body: json };
  }

  /** Like `call`, but the answer must have `status`. */
  async expect(status, method, route, options) {
    const answer = await this.call(method, route, options);
    if (answer.status !== status) {
      throw new Error(`${method} ${route}: expected ${status}, got ${answer.status}: ${JSON.stringify(answer.body)}`);
    }
    return answer.body;
  }

  async login(email, password) {
    const body = await this.expect(200, "POST", "/v1/auth/login", { body: { email, password } });
    return body.access_token;
  }

  async adminToken() {
    return this.login(ADMIN_EMAIL, ADMIN_PASSWORD);
  }

  /** A new customer; returns `{email, password, token, user}`. */
  async newUser(prefix = "buyer") {
    const email = `${prefix}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}@browser.test`;
    const password = "buyer-password-1";
    const body = await this.expect(201, "POST", "/v1/auth/register", {
      body: { email, password, name: `${prefix} tester` },
    });
    return { email, password, token: body.access_token, user: body.user };
  }

  /** A venue, an event and a show on sale now; returns their IDs. */
  async newShow(admin, { event = {}, venue, prices, show = {} } = {}) {
    const venueBody = venue ?? {
      name: "Browser Hall", city: "Berlin", address: "Testweg 1", timezone: "Europe/Berlin",
      sections: [
        { id: "A", name: "Block A", kind: "seated", category: "premium",
          rows: [{ label: "1", seats: 10 }, { label: "2", seats: 10 }] },
        { id: "B", name: "Block B", kind: "seated", category: "standard",
          rows: [{ label: "1", seats: 12 }, { label: "2", seats: 14 }, { label: "3", seats: 14 }] },
        { id: "FLOOR", name: "Floor", kind: "standing", category: "ga", capacity: 50 },
      ],
    };
    const createdVenue = await this.expect(201, "POST", "/v1/venues", { token: admin, body: venueBody });
    const createdEvent = await this.expect(201, "POST", "/v1/events", {
      token: admin,
      body: { title: "Browser Night", performer: "The Testers", genre: "rock", tags: [], ...event },
    });
    const startsAt = new Date(Date.now() + 7 * 24 * 3600 * 1000).toISOString().replace(/\.\d+Z$/, "Z");
    const createdShow = await this.expect(201, "POST", `/v1/events/${createdEvent.id}/shows`, {
      token: admin,
      body: {
        venue_id: createdVenue.id,
        starts_at: startsAt,
        prices: prices ?? {
          premium: { amount: 5000, currency: "EUR" },
          standard: { amount: 3500, currency: "EUR" },
          ga: { amount: 2000, currency: "EUR" },
        },
        ...show,
      },
    });
    return { venueId: createdVenue.id, eventId: createdEvent.id, showId: createdShow.id };
  }

  /** Holds `seatIds` and pays with `tok_visa`; returns the booking. */
  async book(token, showId, seatIds) {
    const hold = await this.expect(201, "POST", "/v1/holds", {
      token, body: { show_id: showId, seat_ids: seatIds },
    });
    return this.expect(201, "POST", "/v1/bookings", {
      token,
      headers: { "idempotency-key": `browser-${hold.id}` },
      body: { hold_id: hold.id, payment_token: "tok_visa" },
    });
  }

  async seatStatus(showId, seatId) {
    const map = await this.expect(200, "GET", `/v1/shows/${showId}/seats`);
    return map.seats.find((seat) => seat.id === seatId)?.status;
  }
}

/** Debian's Chromium, headless, with the flags this closed network needs. */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: CHROMIUM_ARGS,
  });
}

/** A browser context signed in as the holder of `token` (the session cookie). */
export async function signedInContext(browser, baseUrl, token, options = {}) {
  const context = await browser.newContext(options);
  await context.addCookies([{ name: "bx_session", value: token, url: baseUrl, httpOnly: true, sameSite: "Lax" }]);
  return context;
}

/** Saves a full-page screenshot under target/browser-screenshots. */
export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Waits until the seat map has drawn its snapshot. */
export async function waitForSeatMap(page) {
  await page.waitForFunction(() => {
    const status = document.querySelector("[data-seat-map-status]");
    return document.querySelector("[data-seat-map] svg [data-seat-id], [data-seat-map] svg [data-standing-section]")
      && status && /live/i.test(status.textContent);
  }, null, { timeout: 15_000 });
}

/** The state classes of a seat on the map. */
export async function seatState(page, seatId) {
  return page.$eval(`[data-seat-id="${seatId}"]`, (element) => element.getAttribute("class"));
}
