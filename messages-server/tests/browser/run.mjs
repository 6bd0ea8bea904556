// The chat page in a real browser: playwright-core driving the system's Chromium against a
// messages-server this script starts, stops and starts again (on the embedded default, a
// SQLite file in DATA_DIR). Run by the Rust test `browser` (messages-server/tests/api), which
// sets:
//   SERVER_BIN   the messages-server binary
//   SERVER_PORT  the port it listens on
//   DATA_DIR     its data directory
//   BASE_URL     where the page is: http://127.0.0.1:PORT/, or a gateway's http://HOST/messages/
//   SHOTS_DIR    where screenshots go
//   SHOTS_NAME   a prefix for their names
//   CHROMIUM     the browser (default /usr/bin/chromium)
// Exits 1 when a check fails.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { chromium } from "playwright-core";

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is required`);
  return value;
};
const SERVER_BIN = env("SERVER_BIN");
const SERVER_PORT = env("SERVER_PORT");
const DATA_DIR = env("DATA_DIR");
const BASE_URL = env("BASE_URL");
const SHOTS_DIR = env("SHOTS_DIR");
const SHOTS_NAME = env("SHOTS_NAME", "page");
const CHROMIUM = env("CHROMIUM", "/usr/bin/chromium");
const SERVER = `http://127.0.0.1:${SERVER_PORT}`;

// --- the server -------------------------------------------------------------------------------

let server = null;

async function startServer() {
  server = spawn(SERVER_BIN, [], {
    env: {
      PATH: process.env.PATH,
      BIND_ADDR: `127.0.0.1:${SERVER_PORT}`,
      DATA_DIR,
      STREAM_RETRY_MS: "1000",
      SHUTDOWN_TIMEOUT_SECONDS: "2",
      RUST_LOG: "warn",
      // The test seeds its threads through the API far faster than a person writes.
      RATE_LIMIT_WRITES_PER_SECOND: "0",
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const exited = new Promise((resolve) => server.once("exit", resolve));
  server.exited = exited;
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${SERVER}/healthz`)).ok) return;
    } catch {
      // not yet
    }
    await sleep(50);
  }
  throw new Error("the server did not start");
}

async function stopServer() {
  if (!server) return;
  server.kill("SIGTERM");
  await server.exited;
  server = null;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// --- the API, as another client ----------------------------------------------------------------

async function post(thread, user, body) {
  const response = await fetch(new URL(`threads/${thread}/messages`, BASE_URL), {
    method: "POST",
    headers: { "X-User-Id": user, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  assert.equal(response.status, 201, `seeding: ${text}`);
  return JSON.parse(text);
}

// --- the browser -------------------------------------------------------------------------------

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
  ],
});

/** A browser context whose page identifies as `user`, and its page open on `thread`. */
async function openAs(user, thread, viewport = { width: 1100, height: 760 }) {
  const context = await browser.newContext({ viewport });
  await context.addInitScript((id) => localStorage.setItem("messages.user", id), user);
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  page.errors = errors;
  await page.goto(`${BASE_URL}#${thread}`);
  await waitLive(page);
  return { context, page };
}

async function waitLive(page, timeout = 10000) {
  await page.waitForFunction(
    () => /^(Live|Reconnected)/.test(document.getElementById("status").textContent),
    null,
    { timeout },
  );
}

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The confirmed message whose text is exactly `text`. */
function message(page, text) {
  return page.locator("#messages li.message:not(.pending)", {
    has: page.locator(".content", { hasText: new RegExp(`^${escape(text)}$`) }),
  });
}

async function sendFrom(page, text) {
  await page.locator("#draft").fill(text);
  await page.locator("#draft").press("Enter");
}

const results = [];

async function check(name, body) {
  const started = Date.now();
  try {
    await body();
    results.push({ name, ok: true });
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (error) {
    results.push({ name, ok: false });
    console.log(`FAIL ${name}: ${error.stack || error}`);
  }
}

// --- the checks --------------------------------------------------------------------------------

await startServer();
mkdirSync(SHOTS_DIR, { recursive: true });

await check("two users on one thread: send, edit and delete arrive live", async () => {
  const thread = randomUUID();
  const alice = randomUUID();
  const bob = randomUUID();
  const a = await openAs(alice, thread);
  const b = await openAs(bob, thread);

  // Timed inside the browser (both pages share its clock): from Alice's Enter to the message
  // in Bob's list, without the test's own polling.
  await b.page.evaluate(() => {
    window.seen = new Map();
    new MutationObserver(() => {
      for (const p of document.querySelectorAll("#messages li.message .content")) {
        if (!window.seen.has(p.textContent)) window.seen.set(p.textContent, Date.now());
      }
    }).observe(document.getElementById("messages"), { childList: true, subtree: true });
  });
  await a.page.locator("#draft").fill("hello from alice");
  await a.page.evaluate(() => {
    document.getElementById("draft").addEventListener("keydown", () => {
      window.sentAt = Date.now();
    }, { once: true });
  });
  await a.page.locator("#draft").press("Enter");
  await message(b.page, "hello from alice").waitFor({ timeout: 3000 });
  const sentAt = await a.page.evaluate(() => window.sentAt);
  const seenAt = await b.page.evaluate(() => window.seen.get("hello from alice"));
  const arrived = seenAt - sentAt;
  assert.ok(arrived < 1000, `seen by the other user ${arrived} ms after the send`);
  console.log(`     Enter at Alice to the message at Bob: ${arrived} ms`);
  // Alice's own message is confirmed (no longer pending) and has her controls.
  const mine = message(a.page, "hello from alice");
  await mine.waitFor();
  assert.equal(await mine.locator("button[data-action=edit]").count(), 1);
  // Bob has no control over it: he can reply and react, not edit or delete.
  const theirs = message(b.page, "hello from alice");
  assert.equal(await theirs.locator("button[data-action=edit], button[data-action=delete]").count(), 0);
  assert.equal(await theirs.locator("button[data-action=reply]").count(), 1);

  await mine.locator("button[data-action=edit]").click();
  const editor = a.page.locator("#messages .edit-form textarea");
  await editor.fill("hello, edited");
  await editor.press("Enter");
  await message(b.page, "hello, edited").waitFor({ timeout: 2000 });
  assert.equal(await message(b.page, "hello, edited").locator(".edited").count(), 1);
  assert.equal(await message(b.page, "hello from alice").count(), 0);

  await message(a.page, "hello, edited").locator("button[data-action=delete]").click();
  await a.page.locator("button[data-action=confirm-delete]").click();
  await message(b.page, "hello, edited").waitFor({ state: "detached", timeout: 2000 });
  await message(a.page, "hello, edited").waitFor({ state: "detached", timeout: 2000 });

  // And the other way: Bob's message reaches Alice, without controls for her.
  await sendFrom(b.page, "hi alice, bob here");
  const fromBob = message(a.page, "hi alice, bob here");
  await fromBob.waitFor({ timeout: 1000 });
  assert.equal(await fromBob.locator("button[data-action=edit], button[data-action=delete]").count(), 0);
  assert.deepEqual([...a.page.errors, ...b.page.errors], [], "no script errors");
  await a.context.close();
  await b.context.close();
});

await check("an empty thread's notice goes with the first message and comes back after the last", async () => {
  const thread = randomUUID();
  const a = await openAs(randomUUID(), thread);
  const b = await openAs(randomUUID(), thread);
  const notice = (page) => page.locator("#history").textContent();
  for (const { page } of [a, b]) assert.equal(await notice(page), "No messages yet: write the first.");
  await sendFrom(a.page, "the first");
  await message(a.page, "the first").waitFor();
  await message(b.page, "the first").waitFor({ timeout: 2000 });
  for (const { page } of [a, b]) assert.equal(await notice(page), "The beginning of the thread.");
  await a.page.screenshot({ path: join(SHOTS_DIR, `${SHOTS_NAME}-first-message.png`) });
  await message(a.page, "the first").locator("button[data-action=delete]").click();
  await a.page.locator("button[data-action=confirm-delete]").click();
  await message(b.page, "the first").waitFor({ state: "detached", timeout: 2000 });
  for (const { page } of [a, b]) assert.equal(await notice(page), "No messages yet: write the first.");
  assert.deepEqual([...a.page.errors, ...b.page.errors], [], "no script errors");
  await a.context.close();
  await b.context.close();
});

await check("a reply quotes its target, and the quote leads to it", async () => {
  const thread = randomUUID();
  const alice = randomUUID();
  const bob = randomUUID();
  const a = await openAs(alice, thread);
  const b = await openAs(bob, thread);
  await sendFrom(a.page, "which day works for the review?");
  const question = message(b.page, "which day works for the review?");
  await question.waitFor({ timeout: 2000 });
  await question.locator("button[data-action=reply]").click();
  assert.match(await b.page.locator("#replying-text").textContent(), /^Replying to user .*: which day works/);
  await sendFrom(b.page, "thursday");
  const reply = message(a.page, "thursday");
  await reply.waitFor({ timeout: 2000 });
  assert.equal(await reply.locator(".quote").textContent(), "↪ You: which day works for the review?");
  // The reply bar goes once Bob's page has its answer (Alice's may hear of the reply first).
  await b.page.locator("#replying").waitFor({ state: "hidden", timeout: 2000 });
  await a.page.screenshot({ path: join(SHOTS_DIR, `${SHOTS_NAME}-reply.png`) });
  // A target far above the loaded page is fetched by id, and a click brings it into view.
  const far = await post(thread, alice, { content: "the agenda, long ago" });
  for (let i = 0; i < 60; i++) await post(thread, alice, { content: `filler ${i}` });
  await post(thread, bob, { content: "about the agenda", reply_to: far.id });
  const reader = await openAs(randomUUID(), thread);
  const late = message(reader.page, "about the agenda");
  await late.waitFor();
  await reader.page.waitForFunction(
    () => [...document.querySelectorAll("#messages .quote")].some((q) => q.textContent.includes("the agenda, long ago")),
  );
  assert.equal(await message(reader.page, "the agenda, long ago").count(), 0, "not loaded yet");
  await late.locator(".quote").click();
  const target = message(reader.page, "the agenda, long ago");
  await target.waitFor({ timeout: 3000 });
  await reader.page.waitForFunction(
    (id) => document.querySelector(`#messages li[data-id="${id}"]`)?.classList.contains("highlight"),
    far.id,
    { timeout: 3000 },
  );
  const box = await target.boundingBox();
  const view = await reader.page.locator("#scroller").boundingBox();
  assert.ok(box && view && box.y >= view.y - 5 && box.y < view.y + view.height, "the target is in view");
  // Its target deleted: the reply says so.
  const deleted = await fetch(new URL(`threads/${thread}/messages/${far.id}`, BASE_URL), {
    method: "DELETE",
    headers: { "X-User-Id": alice },
  });
  assert.equal(deleted.status, 204);
  await reader.page.waitForFunction(
    () => [...document.querySelectorAll("#messages .quote")].some((q) => q.textContent === "↪ deleted message"),
    null,
    { timeout: 3000 },
  );
  assert.deepEqual([...a.page.errors, ...b.page.errors, ...reader.page.errors], [], "no script errors");
  for (const who of [a, b, reader]) await who.context.close();
});

await check("a reaction toggled by one reader is seen by the other with its count", async () => {
  const thread = randomUUID();
  const alice = randomUUID();
  const bob = randomUUID();
  await post(thread, alice, { content: "shipped the release" });
  const a = await openAs(alice, thread);
  const b = await openAs(bob, thread);
  const chip = (page) => message(page, "shipped the release").locator(".chip", { hasText: "🎉" });
  await message(a.page, "shipped the release").locator("button[data-action=react]").click();
  await a.page.locator("button[data-emoji='🎉']").click();
  await chip(b.page).waitFor({ timeout: 2000 });
  assert.equal(await chip(b.page).locator(".count").textContent(), "1");
  assert.equal(await chip(b.page).getAttribute("aria-pressed"), "false", "not Bob's");
  assert.equal(await chip(a.page).getAttribute("aria-pressed"), "true", "Alice's");
  await chip(b.page).click();
  for (const page of [a.page, b.page]) {
    await page.waitForFunction(
      () => [...document.querySelectorAll(".chip")].some((c) => c.textContent === "🎉2"),
      null,
      { timeout: 2000 },
    );
  }
  assert.equal(await chip(b.page).getAttribute("aria-pressed"), "true");
  await b.page.screenshot({ path: join(SHOTS_DIR, `${SHOTS_NAME}-reactions.png`) });
  // Alice takes hers back: one left, and it is Bob's.
  // Bob's page hears it from the stream, Alice's from her own answer: either may come first.
  await chip(a.page).click();
  for (const page of [a.page, b.page]) {
    await page.waitForFunction(
      () => [...document.querySelectorAll(".chip")].some((c) => c.textContent === "🎉1"),
      null,
      { timeout: 2000 },
    );
  }
  assert.equal(await chip(a.page).getAttribute("aria-pressed"), "false");
  const stored = await (await fetch(new URL(`threads/${thread}/messages`, BASE_URL))).json();
  assert.deepEqual(stored.items[0].reactions, [{ emoji: "🎉", count: 1, users: [bob] }]);
  assert.deepEqual([...a.page.errors, ...b.page.errors], [], "no script errors");
  await a.context.close();
  await b.context.close();
});

await check("an edited message's earlier versions, seen by another reader", async () => {
  const thread = randomUUID();
  const alice = randomUUID();
  await post(thread, alice, { content: "meet at 10" });
  const a = await openAs(alice, thread);
  const b = await openAs(randomUUID(), thread);
  await message(a.page, "meet at 10").locator("button[data-action=edit]").click();
  const editor = a.page.locator("#messages .edit-form textarea");
  await editor.fill("meet at 11");
  await editor.press("Enter");
  const edited = message(b.page, "meet at 11");
  await edited.waitFor({ timeout: 2000 });
  await edited.locator("button.edited").click();
  const dialog = b.page.locator("#history-dialog");
  await dialog.waitFor();
  await b.page.waitForFunction(() => document.querySelectorAll("#history-dialog .version").length === 2);
  const versions = await dialog.locator(".version .content").allTextContents();
  assert.deepEqual(versions, ["meet at 10", "meet at 11"]);
  assert.match(await dialog.locator(".version time").last().textContent(), /current$/);
  await b.page.screenshot({ path: join(SHOTS_DIR, `${SHOTS_NAME}-edits.png`) });
  await dialog.locator("button", { hasText: "Close" }).click();
  assert.ok(!(await dialog.evaluate((d) => d.open)), "the dialog closes");
  assert.deepEqual([...a.page.errors, ...b.page.errors], [], "no script errors");
  await a.context.close();
  await b.context.close();
});

/** The reader's read state in `thread`, as the API answers it. */
async function readState(thread, user) {
  const response = await fetch(new URL(`threads/${thread}/read`, BASE_URL), {
    headers: { "X-User-Id": user },
  });
  assert.equal(response.status, 200);
  return response.json();
}

await check("5 unread: the divider is above the first, and reaching the bottom reads them", async () => {
  const thread = randomUUID();
  const [a, b] = [randomUUID(), randomUUID()];
  const seqs = [];
  for (let i = 1; i <= 30; i++) {
    const m = await post(thread, a, { content: `message ${i}\nsecond line\nthird line` });
    seqs.push(m.seq);
  }
  const marked = await fetch(new URL(`threads/${thread}/read`, BASE_URL), {
    method: "PUT",
    headers: { "X-User-Id": b, "Content-Type": "application/json" },
    body: JSON.stringify({ seq: seqs[24] }),
  });
  assert.equal(marked.status, 200);
  assert.equal((await readState(thread, b)).unread, 5);

  const { context, page } = await openAs(b, thread, { width: 1100, height: 480 });
  const divider = page.locator("#messages li.unread-divider");
  await divider.waitFor();
  assert.equal(await divider.textContent(), "New messages");
  const next = await divider.evaluate((d) => d.nextElementSibling?.dataset.seq);
  assert.equal(Number(next), seqs[25], "the divider is right above the first unread message");
  await sleep(1500);
  assert.equal((await readState(thread, b)).unread, 5, "not read before the reader gets there");
  await page.screenshot({ path: join(SHOTS_DIR, `${SHOTS_NAME}-unread.png`) });

  await page.locator("#scroller").evaluate((s) => { s.scrollTop = s.scrollHeight; });
  await page.waitForFunction(
    async ([t, user]) => {
      const r = await fetch(`threads/${t}/read`, { headers: { "X-User-Id": user } });
      return (await r.json()).unread === 0;
    },
    [thread, b],
    { timeout: 5000, polling: 250 },
  );

  // "Mark unread" on a message: the position goes back to just before it.
  const target = message(page, "message 28\nsecond line\nthird line");
  await target.locator('button[data-action="unread"]').click();
  await page.waitForFunction(() => /Marked unread/.test(document.getElementById("status").textContent));
  const after = await readState(thread, b);
  assert.equal(after.seq, seqs[27] - 1);
  assert.equal(after.unread, 3);
  assert.equal(
    Number(await divider.evaluate((d) => d.nextElementSibling?.dataset.seq)),
    seqs[27],
    "the divider moves above it",
  );
  await sleep(1500);
  assert.equal((await readState(thread, b)).unread, 3, "and it stays unread while the page is open");
  assert.deepEqual(page.errors, []);
  await context.close();
});

await check("300 messages: scrolling to the top shows each once, in order", async () => {
  const thread = randomUUID();
  const writer = randomUUID();
  for (let i = 1; i <= 300; i++) {
    await post(thread, writer, { content: `message ${String(i).padStart(3, "0")}` });
  }
  const reader = await openAs(randomUUID(), thread);
  const page = reader.page;
  assert.equal(await page.locator("#messages li.message").count(), 50, "the newest page first");
  const newest = await page.locator("#messages li.message").last().locator(".content").textContent();
  assert.equal(newest, "message 300");
  // The reader scrolls up one step: older messages load above, and the view stays put.
  const topBefore = await page.locator("#messages li.message").first().getAttribute("data-id");
  await page.locator("#scroller").evaluate((s) => {
    s.scrollTop = 0;
  });
  await page.waitForFunction(() => document.querySelectorAll("#messages li.message").length >= 100);
  const anchor = page.locator(`#messages li[data-id="${topBefore}"]`);
  const box = await anchor.boundingBox();
  const view = await page.locator("#scroller").boundingBox();
  assert.ok(
    box && view && box.y >= view.y - 5 && box.y < view.y + view.height,
    "the message that was at the top stays in view",
  );
  // Then to the very beginning.
  for (let i = 0; i < 40; i++) {
    const done = await page.locator("#history").textContent();
    if (done === "The beginning of the thread.") break;
    await page.locator("#scroller").evaluate((s) => {
      s.scrollTop = 0;
    });
    await sleep(150);
  }
  assert.equal(await page.locator("#history").textContent(), "The beginning of the thread.");
  const seqs = await page.$$eval("#messages li.message", (items) => items.map((li) => Number(li.dataset.seq)));
  assert.equal(seqs.length, 300, "every message once");
  assert.deepEqual(seqs, Array.from({ length: 300 }, (_, i) => i + 1), "in order, no holes");
  const texts = await page.$$eval("#messages li.message .content", (items) => items.map((p) => p.textContent));
  assert.equal(new Set(texts).size, 300, "no duplicates");
  assert.equal(texts[0], "message 001");
  await reader.context.close();
});

await check("the server closes the stream: the page reconnects and catches up", async () => {
  const thread = randomUUID();
  const other = randomUUID();
  await post(thread, other, { content: "before the restart" });
  const reader = await openAs(randomUUID(), thread);
  const page = reader.page;
  await message(page, "before the restart").waitFor();
  await stopServer();
  await page.waitForFunction(() => /Connection lost/.test(document.getElementById("status").textContent), null, {
    timeout: 5000,
  });
  assert.match(await page.locator("#status").textContent(), /Connection lost/);
  await startServer();
  // Written before the page is back on the stream.
  await post(thread, other, { content: "sent while the page was away" });
  await message(page, "sent while the page was away").waitFor({ timeout: 15000 });
  await waitLive(page, 15000);
  assert.match(await page.locator("#status").textContent(), /Reconnected/);
  await post(thread, other, { content: "and live again" });
  await message(page, "and live again").waitFor({ timeout: 2000 });
  for (const text of ["before the restart", "sent while the page was away", "and live again"]) {
    assert.equal(await message(page, text).count(), 1, `"${text}" once`);
  }
  await reader.context.close();
});

await check("a send whose answer was lost, sent again, is stored and shown once", async () => {
  const thread = randomUUID();
  const { context, page } = await openAs(randomUUID(), thread);
  const keys = [];
  let lost = false;
  await page.route(/\/threads\/[^/]+\/messages$/, async (route) => {
    if (route.request().method() !== "POST") return route.continue();
    keys.push(route.request().headers()["idempotency-key"]);
    if (lost) return route.continue();
    // The server stores the message; its answer never reaches the page.
    lost = true;
    await route.fetch();
    return route.abort("connectionreset");
  });
  await sendFrom(page, "only once");
  await page.waitForFunction(() => document.getElementById("send-error").textContent.startsWith("Not sent"));
  assert.equal(await page.locator("#draft").inputValue(), "only once", "the draft is kept");
  await page.locator("#draft").press("Enter");
  await message(page, "only once").waitFor();
  await page.waitForFunction(() => document.getElementById("send-error").textContent === "");
  await sleep(300);
  assert.equal(await message(page, "only once").count(), 1, "shown once");
  assert.equal(keys.length, 2);
  assert.match(keys[0], /^[0-9a-f-]{36}$/, "an Idempotency-Key on every send");
  assert.equal(keys[0], keys[1], "the retry carries the same key");
  const stored = await (await fetch(new URL(`threads/${thread}/messages`, BASE_URL))).json();
  assert.equal(stored.items.length, 1, "stored once");
  await context.close();
});

await check("a message over the limit shows the server's error and keeps the draft", async () => {
  const thread = randomUUID();
  const { context, page } = await openAs(randomUUID(), thread);
  const long = "x".repeat(4001);
  await sendFrom(page, long);
  const error = page.locator("#send-error");
  await page.waitForFunction(() => document.getElementById("send-error").textContent.length > 0);
  const text = await error.textContent();
  assert.match(text, /^Not sent: .*4000 characters/);
  assert.equal(await page.locator("#draft").inputValue(), long, "the draft is kept");
  assert.equal(await page.locator("#messages li.message").count(), 0, "nothing was added");
  await context.close();
});

await check("the API docs: an operation expanded and tried out against the server", async () => {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(String(error)));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(m.text());
  });
  // Without the trailing slash the server redirects to it, where the relative URLs resolve.
  await page.goto(`${BASE_URL}docs`);
  assert.ok(page.url().endsWith("/docs/"), `redirected to ${page.url()}`);
  // Swagger UI breaks paths with zero-width spaces; data-path holds the path as written.
  const healthz = page
    .locator(".opblock.opblock-get", { has: page.locator('.opblock-summary-path[data-path="/healthz"]') })
    .first();
  await healthz.waitFor({ timeout: 15000 });
  await healthz.locator(".opblock-summary").first().click();
  // The docs open operations ready to try; otherwise "Try it out" makes them so.
  const execute = healthz.locator("button.execute");
  if (!(await execute.isVisible())) await healthz.locator("button.try-out__btn").click();
  await execute.click();
  const status = healthz.locator(".live-responses-table tbody td.response-col_status").first();
  await status.waitFor({ timeout: 10000 });
  assert.equal((await status.textContent()).trim(), "200");
  const body = await healthz.locator(".live-responses-table tbody td.response-col_description").first().textContent();
  assert.ok(body.includes('"ok"'), `the answer: ${body}`);
  assert.deepEqual(problems, [], "no script error and nothing the page's policy refused");
  await context.close();
});

await check("a reply in another's conversation: the count moves, the Threads badge shows it, reading clears it", async () => {
  const thread = randomUUID();
  const alice = randomUUID();
  const bob = randomUUID();
  const question = "Who can review the release notes?";
  await post(thread, bob, { content: question });
  const b = await openAs(bob, thread);
  const a = await openAs(alice, thread);
  const reply = (page, text) =>
    page.locator("#conversation-replies li.message", {
      has: page.locator(".content", { hasText: new RegExp(`^${escape(text)}$`) }),
    });
  // Alice opens the conversation of Bob's message and replies in it.
  await message(a.page, question).locator("button[data-action=thread]").click();
  await a.page.locator("#conversation-root .content", { hasText: question }).waitFor();
  await a.page.locator("#reply-draft").fill("I can, after lunch");
  await a.page.locator("#reply-draft").press("Enter");
  await reply(a.page, "I can, after lunch").waitFor({ timeout: 3000 });
  // Bob sees the count under his message, live, with Alice's initials, and the badge.
  const link = message(b.page, question).locator("button[data-action=replies]");
  await link.waitFor({ timeout: 3000 });
  assert.equal(await link.locator(".participants").textContent(), alice.slice(0, 2).toUpperCase());
  assert.ok((await link.textContent()).endsWith("1 reply · last just now"), await link.textContent());
  const badge = (page, text) =>
    page.waitForFunction(
      (want) => {
        const badge = document.getElementById("inbox-badge");
        return want === null ? badge.hidden : !badge.hidden && badge.textContent === want;
      },
      text,
      { timeout: 5000 },
    );
  await badge(b.page, "1");
  // A second reply: the count and the badge move again.
  await a.page.locator("#reply-draft").fill("and the changelog too");
  await a.page.locator("#reply-draft").press("Enter");
  await b.page.waitForFunction(
    () => [...document.querySelectorAll("button[data-action=replies]")].some((l) => l.textContent.endsWith("2 replies · last just now")),
    null,
    { timeout: 3000 },
  );
  await badge(b.page, "2");
  // Bob opens Threads: the conversation with 2 unread; opening it reads them, the badge clears.
  await b.page.locator("#inbox-open").click();
  const entry = b.page.locator(".inbox-entry", { hasText: question });
  await entry.waitFor({ timeout: 3000 });
  assert.equal(await entry.locator(".badge").textContent(), "2");
  await b.page.screenshot({ path: join(SHOTS_DIR, `${SHOTS_NAME}-threads.png`) });
  await entry.locator("button").click();
  await reply(b.page, "and the changelog too").waitFor({ timeout: 3000 });
  await badge(b.page, null);
  const inboxOf = async (user) => {
    const url = new URL(`replies/inbox?threads=${thread}`, BASE_URL);
    return (await fetch(url, { headers: { "X-User-Id": user } })).json();
  };
  const bobs = await inboxOf(bob);
  assert.deepEqual(bobs.items.map((i) => [i.root.content, i.unread]), [[question, 0]]);
  // Bob answers in the conversation: it arrives in Alice's open panel, which reads it.
  await b.page.locator("#reply-draft").fill("Thanks both!");
  await b.page.locator("#reply-draft").press("Enter");
  await reply(a.page, "Thanks both!").waitFor({ timeout: 3000 });
  await message(a.page, "Thanks both!").waitFor({ timeout: 3000 });
  let alices;
  for (let i = 0; i < 30; i++) {
    alices = await inboxOf(alice);
    if (alices.items[0]?.unread === 0) break;
    await sleep(100);
  }
  assert.deepEqual(alices.items.map((i) => [i.root.replies.count, i.unread]), [[3, 0]]);
  await b.page.screenshot({ path: join(SHOTS_DIR, `${SHOTS_NAME}-conversation-desktop.png`) });
  // On a phone the conversation opens over the thread, and nothing is wider than the screen.
  const phone = await openAs(bob, thread, { width: 390, height: 844 });
  await message(phone.page, question).locator("button[data-action=replies]").click();
  await reply(phone.page, "Thanks both!").waitFor({ timeout: 3000 });
  const covers = await phone.page.evaluate(() => {
    const box = document.getElementById("conversation").getBoundingClientRect();
    return [box.left, box.width, window.innerWidth];
  });
  assert.deepEqual(covers, [0, 390, 390], "over the thread");
  const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the screen`);
  await phone.page.screenshot({ path: join(SHOTS_DIR, `${SHOTS_NAME}-conversation-phone.png`) });
  assert.deepEqual([...a.page.errors, ...b.page.errors, ...phone.page.errors], [], "no script errors");
  for (const who of [a, b, phone]) await who.context.close();
});

await check("a mention: picked with @, highlighted, counted apart, listed in Mentions, cleared when read", async () => {
  const thread = randomUUID();
  const elsewhere = randomUUID();
  const alice = randomUUID();
  const bob = randomUUID();
  const carol = randomUUID();
  await post(thread, carol, { content: "The build on main is red again" });
  await post(thread, bob, { content: "Looking at the logs" });
  // Bob has read the thread, then moved to another one.
  const b = await openAs(bob, thread);
  await message(b.page, "Looking at the logs").waitFor();
  for (let i = 0; i < 50 && (await readState(thread, bob)).unread !== 0; i++) await sleep(100);
  await b.page.goto(`${BASE_URL}#${elsewhere}`);
  await waitLive(b.page);
  const a = await openAs(alice, thread);
  // Alice types "@", the picker offers the users seen in the thread (the newest first) and
  // the room; she narrows to Bob by the start of his id and picks him with the keyboard.
  const draft = a.page.locator("#draft");
  await draft.fill("");
  await draft.pressSequentially("@");
  const options = a.page.locator("#mention-options [role=option]");
  await options.first().waitFor({ timeout: 2000 });
  assert.deepEqual(
    await options.allTextContents(),
    [`@${bob.slice(0, 8)} user ${bob.slice(0, 8)}`, `@${carol.slice(0, 8)} user ${carol.slice(0, 8)}`, "@room everyone in this thread"],
  );
  await draft.pressSequentially(bob.slice(0, 3));
  assert.equal(await options.count(), bob.slice(0, 3) === carol.slice(0, 3) ? 2 : 1);
  await a.page.screenshot({ path: join(SHOTS_DIR, `${SHOTS_NAME}-mention-picker.png`) });
  await draft.press("Enter");
  assert.equal(await draft.inputValue(), `@${bob.slice(0, 8)} `);
  assert.ok(await a.page.locator("#mention-options").isHidden());
  await draft.pressSequentially("can you check the deploy job?");
  await draft.press("Enter");
  const text = `@${bob.slice(0, 8)} can you check the deploy job?`;
  const sent = message(a.page, text);
  await sent.waitFor({ timeout: 3000 });
  // Sent naming Bob's id; in Alice's view his name is marked, not as hers.
  const stored = await (await fetch(new URL(`threads/${thread}/messages?limit=1`, BASE_URL))).json();
  assert.deepEqual(stored.items[0].mentions, { users: [bob], room: false });
  assert.equal(await sent.locator(".mention").getAttribute("title"), `user ${bob}`);
  assert.equal(await sent.locator(".mention.me").count(), 0);
  // A "@name" typed without the picker names no one.
  await draft.fill(`@${carol.slice(0, 8)} typed by hand`);
  await draft.press("Enter");
  await message(a.page, `@${carol.slice(0, 8)} typed by hand`).waitFor({ timeout: 3000 });
  const plain = await (await fetch(new URL(`threads/${thread}/messages?limit=1`, BASE_URL))).json();
  assert.equal(plain.items[0].mentions, undefined, "no mentions field");

  // Bob comes back to the page: the Mentions badge says 1, and the thread list counts the
  // mention apart from the two unread messages.
  await b.page.reload();
  await waitLive(b.page);
  const mentionBadge = (want) =>
    b.page.waitForFunction(
      (want) => {
        const badge = document.getElementById("mentions-badge");
        return want === null ? badge.hidden : !badge.hidden && badge.textContent === want;
      },
      want,
      { timeout: 5000 },
    );
  await mentionBadge("@1");
  await b.page.locator("#inbox-open").click();
  const row = b.page.locator(`.thread-entry[data-thread="${thread}"]`);
  await row.waitFor({ timeout: 3000 });
  assert.equal(await row.locator(".mention-badge").textContent(), "@1");
  assert.equal(await row.locator(".unread-badge").textContent(), "2");
  await b.page.screenshot({ path: join(SHOTS_DIR, `${SHOTS_NAME}-thread-list.png`) });
  // "Mentions" lists Alice's message as new; choosing it opens the thread at it.
  await b.page.locator("#mentions-open").click();
  assert.ok(await b.page.locator("#inbox").isHidden(), "one view beside the thread at a time");
  const entry = b.page.locator(".mention-entry", { hasText: "can you check the deploy job?" });
  await entry.waitFor({ timeout: 3000 });
  assert.equal(await b.page.locator(".mention-entry").count(), 1);
  assert.equal(await entry.locator(".badge").textContent(), "new");
  assert.ok((await entry.locator(".meta").textContent()).startsWith(`user ${alice.slice(0, 8)}`));
  await b.page.screenshot({ path: join(SHOTS_DIR, `${SHOTS_NAME}-mentions.png`) });
  await entry.locator("button").click();
  const mentioned = message(b.page, text);
  await mentioned.waitFor({ timeout: 5000 });
  assert.equal(new URL(b.page.url()).hash, `#${thread}`);
  await b.page.waitForFunction(
    () => document.querySelector("#messages li.highlight .content")?.textContent.includes("deploy job"),
    null,
    { timeout: 3000 },
  );
  // Marked as his: the message and his name in it.
  assert.ok((await mentioned.getAttribute("class")).includes("mentions-me"));
  assert.equal(await mentioned.locator(".addressed").textContent(), "mentions you");
  assert.equal(await mentioned.locator(".mention.me").textContent(), `@${bob.slice(0, 8)}`);
  await b.page.screenshot({ path: join(SHOTS_DIR, `${SHOTS_NAME}-mentioned.png`) });
  // At the bottom of the thread he has read it: the badge clears, the server agrees.
  await mentionBadge(null);
  const read = await readState(thread, bob);
  assert.deepEqual([read.unread, read.mentions], [0, 0]);
  await b.page.locator("#inbox-open").click();
  await b.page.waitForFunction(
    (thread) => !document.querySelector(`.thread-entry[data-thread="${thread}"] .badge`),
    thread,
    { timeout: 3000 },
  );
  assert.deepEqual([...a.page.errors, ...b.page.errors], [], "no script errors");
  for (const who of [a, b]) await who.context.close();
});

await check("search: one finds another's message by a word, and no longer after it is edited away", async () => {
  const thread = randomUUID();
  const alice = randomUUID();
  const bob = randomUUID();
  await post(thread, alice, { content: "Morning all" });
  const b = await openAs(bob, thread);
  const a = await openAs(alice, thread);
  await sendFrom(a.page, "the deploy checklist is ready");
  const sent = message(a.page, "the deploy checklist is ready");
  await sent.waitFor({ timeout: 3000 });
  // Bob searches the threads he opened, in capitals: found, the word marked.
  await b.page.locator("#search-open").click();
  await b.page.locator("#search-q").fill("CHECKLIST");
  await b.page.locator("#search-q").press("Enter");
  const result = b.page.locator(".search-entry", { hasText: "the deploy checklist is ready" });
  await result.waitFor({ timeout: 3000 });
  assert.equal(await b.page.locator(".search-entry").count(), 1);
  assert.equal(await result.locator("mark").textContent(), "checklist");
  assert.ok((await result.locator(".meta").textContent()).startsWith(`user ${alice.slice(0, 8)}`));
  await b.page.screenshot({ path: join(SHOTS_DIR, `${SHOTS_NAME}-search.png`) });
  // A click opens the thread at the message, marked.
  await result.locator("button").click();
  await b.page.waitForFunction(
    () => document.querySelector("#messages li.highlight .content")?.textContent.includes("checklist"),
    null,
    { timeout: 3000 },
  );
  // Alice edits the word away: Bob's same search finds nothing; her new words find it.
  await sent.locator("button[data-action=edit]").click();
  const editor = a.page.locator("#messages .edit-form textarea");
  await editor.fill("the deploy runbook is ready");
  await editor.press("Enter");
  await message(a.page, "the deploy runbook is ready").waitFor({ timeout: 3000 });
  await b.page.locator("#search-open").click();
  await b.page.locator("#search-q").press("Enter");
  await b.page.waitForFunction(
    () => document.getElementById("search-status").textContent === "No messages found.",
    null,
    { timeout: 3000 },
  );
  assert.equal(await b.page.locator(".search-entry").count(), 0);
  await b.page.locator("#search-q").fill("runbook");
  await b.page.locator("#search-q").press("Enter");
  await b.page.locator(".search-entry", { hasText: "runbook" }).waitFor({ timeout: 3000 });
  assert.deepEqual([...a.page.errors, ...b.page.errors], [], "no script errors");
  for (const who of [a, b]) await who.context.close();
});

await check("screenshots at desktop and phone width", async () => {
  const thread = randomUUID();
  const me = randomUUID();
  const other = randomUUID();
  const asked = await post(thread, other, { content: "Morning! Are the release notes ready?" });
  const answer = await post(thread, me, {
    content: "Nearly: adding the figures from the last bench run.",
    reply_to: asked.id,
  });
  for (const [who, emoji] of [[other, "👍"], [randomUUID(), "👍"], [other, "🎉"]]) {
    const url = new URL(`threads/${thread}/messages/${answer.id}/reactions/${encodeURIComponent(emoji)}`, BASE_URL);
    const reacted = await fetch(url, { method: "PUT", headers: { "X-User-Id": who } });
    assert.equal(reacted.status, 201);
  }
  await post(thread, other, {
    content: "Here is the deployment checklist",
    type: "file",
    paths: ["docs/deploy/checklist.pdf"],
  });
  await post(thread, me, { content: "Thanks, reading it now.\nWill report back before lunch." });
  const shots = [
    ["desktop", { width: 1280, height: 800 }],
    ["phone", { width: 390, height: 844 }],
  ];
  for (const [name, viewport] of shots) {
    const { context, page } = await openAs(me, thread, viewport);
    await message(page, "Thanks, reading it now.\nWill report back before lunch.").waitFor();
    await page.locator("#draft").fill("Looks good to me");
    const path = join(SHOTS_DIR, `${SHOTS_NAME}-${name}.png`);
    await page.screenshot({ path, fullPage: false });
    // Readable at phone width: nothing wider than the screen.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${name}: the page is ${overflow}px wider than the screen`);
    console.log(`     wrote ${path}`);
    await context.close();
  }
});

await browser.close();
await stopServer();
const failed = results.filter((r) => !r.ok).length;
console.log(`browser: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
