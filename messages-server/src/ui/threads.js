// The threads this browser has opened, and the reader's counts in each (`GET /unread`): the
// list in the Threads view, each thread with its unread messages and, apart, the messages that
// mention the reader, and the badge on the Mentions button with the mentions in all of them.
// The service knows no thread membership, so the page names the threads it asks about.

import { authHeaders, request, store, stored, UUID } from "./api.js";

const KNOWN = "messages.threads";
const MOST_THREADS = 200;
const POLL_MS = 20000;
const SOON_MS = 300;

let timer = null;
let asked = 0;
// thread id → {seq, unread, mentions, capped}
let counts = new Map();
let current = () => null;

const $ = (id) => document.getElementById(id);

/** The threads the reader opened in this browser, the latest first. */
export function knownThreads() {
  return stored(KNOWN)
    .split(",")
    .filter((id) => UUID.test(id));
}

/** Remembers that the reader opened `thread`. */
export function rememberThread(thread) {
  const threads = [thread, ...knownThreads().filter((id) => id !== thread)].slice(0, MOST_THREADS);
  store(KNOWN, threads.join(","));
}

/** The reader's position in `thread` as last counted, or 0. */
export function readSeq(thread) {
  return counts.get(thread)?.seq ?? 0;
}

/** Wires the list: `thread()` names the open thread. Counts again every 20 s while shown. */
export function threadsOn(thread) {
  current = thread;
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refreshSoon();
  });
  setInterval(() => {
    if (!document.hidden) refresh();
  }, POLL_MS);
}

/** Counts again shortly: the reader read, or a mention arrived (several changes, one request). */
export function refreshSoon() {
  clearTimeout(timer);
  timer = setTimeout(() => refresh(), SOON_MS);
}

/** Asks for the counts and redraws the list and the badge. */
export async function refresh() {
  clearTimeout(timer);
  const threads = knownThreads();
  if (!threads.length) return;
  const ask = ++asked;
  try {
    const unread = await request(
      "GET",
      `unread?threads=${threads.join(",")}`,
      undefined,
      authHeaders(true),
    );
    if (ask !== asked) return;
    counts = new Map(unread.threads.map((entry) => [entry.thread_id, entry]));
    $("threads-status").textContent = "";
  } catch (error) {
    if (ask !== asked) return;
    $("threads-status").textContent = `Could not count your threads: ${error.message}`;
  }
  draw(threads);
}

/** "3", "3+" when capped, "99+" past that. */
function figure(count, capped) {
  return count > 99 ? "99+" : `${count}${capped ? "+" : ""}`;
}

function badge(className, text, label) {
  const badge = document.createElement("span");
  badge.className = className;
  badge.textContent = text;
  badge.setAttribute("aria-label", label);
  return badge;
}

/**
 * The badges of a read state (`{unread, mentions, capped}`, a thread's or a conversation's):
 * the mentions of the reader ("@2"), apart from the unread messages ("5").
 */
export function counters(entry) {
  const counters = document.createElement("span");
  counters.className = "counters";
  if (entry?.mentions) {
    const text = `@${figure(entry.mentions, entry.capped)}`;
    counters.append(badge("badge mention-badge", text, `${entry.mentions} mentioning you`));
  }
  if (entry?.unread) {
    const text = figure(entry.unread, entry.capped);
    counters.append(badge("badge unread-badge", text, `${entry.unread} unread`));
  }
  return counters;
}

function draw(threads) {
  let mentions = 0;
  let capped = false;
  const list = $("thread-list");
  list.replaceChildren();
  for (const thread of threads) {
    const entry = counts.get(thread);
    mentions += entry?.mentions ?? 0;
    capped ||= Boolean(entry?.capped && entry.mentions);
    const item = document.createElement("li");
    item.className = `inbox-entry thread-entry${entry?.unread ? " unread" : ""}`;
    item.dataset.thread = thread;
    const open = document.createElement("a");
    open.href = `#${thread}`;
    if (thread === current()) open.setAttribute("aria-current", "page");
    const name = document.createElement("span");
    name.className = "gist";
    name.textContent = `Thread ${thread.slice(0, 8)}`;
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = thread === current() ? "open now" : entry?.unread ? "unread messages" : "read";
    open.append(name, meta);
    open.append(counters(entry));
    item.append(open);
    list.append(item);
  }
  const total = $("mentions-badge");
  total.hidden = mentions === 0;
  total.textContent = `@${figure(mentions, capped)}`;
  $("mentions-open").setAttribute(
    "aria-label",
    mentions ? `Mentions: ${mentions} unread ${mentions === 1 ? "mention" : "mentions"}` : "Mentions",
  );
}
