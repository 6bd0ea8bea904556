// The "Threads" view of the chat page: the threads this browser has opened with their counts
// (`threads.js`), and the reader's followed conversations in them, the most recent reply
// first, each with its unread replies and, apart, those that mention the reader; a badge on
// the button with the unread replies in all of them.

import { authHeaders, request } from "./api.js";
import { gist } from "./replies.js";
import { ago } from "./conversation.js";
import * as threads from "./threads.js";

const LIMIT = 50;
const POLL_MS = 20000;
const SOON_MS = 300;

let page = null;
let timer = null;
let asked = 0;
let entries = [];

const $ = (id) => document.getElementById(id);

/**
 * Wires the view to the page: `open(thread, root)` opens a conversation of a thread,
 * `opened()` runs when the view opens (another view beside the thread closes).
 */
export function inboxOn(pageParts) {
  page = pageParts;
  const toggle = $("inbox-open");
  toggle.addEventListener("click", () => (isOpen() ? closeInbox() : openInbox()));
  $("inbox-close").addEventListener("click", () => closeInbox());
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refreshSoon();
  });
  setInterval(() => {
    if (!document.hidden) refresh();
  }, POLL_MS);
}

function isOpen() {
  return !$("inbox").hidden;
}

export function openInbox() {
  page.opened();
  $("inbox").hidden = false;
  $("inbox-open").setAttribute("aria-expanded", "true");
  document.body.classList.add("with-inbox");
  draw();
  refresh();
  threads.refresh();
}

export function closeInbox() {
  $("inbox").hidden = true;
  $("inbox-open").setAttribute("aria-expanded", "false");
  document.body.classList.remove("with-inbox");
}

/** Asks again shortly: replies came or were read (several changes, one request). */
export function refreshSoon() {
  clearTimeout(timer);
  timer = setTimeout(() => refresh(), SOON_MS);
}

/** Asks for the inbox and redraws the badge (and the list when it is open). */
export async function refresh() {
  clearTimeout(timer);
  const known = threads.knownThreads();
  if (!known.length) return;
  const ask = ++asked;
  try {
    const inbox = await request(
      "GET",
      `replies/inbox?threads=${known.join(",")}&limit=${LIMIT}`,
      undefined,
      authHeaders(true),
    );
    if (ask !== asked) return;
    entries = inbox.items;
    $("inbox-status").textContent = "";
  } catch (error) {
    if (ask !== asked) return;
    $("inbox-status").textContent = `Could not load your threads: ${error.message}`;
  }
  drawBadge();
  if (isOpen()) draw();
}

function drawBadge() {
  const unread = entries.reduce((sum, entry) => sum + entry.unread, 0);
  const capped = entries.some((entry) => entry.capped);
  const badge = $("inbox-badge");
  badge.hidden = unread === 0;
  badge.textContent = unread > 99 ? "99+" : `${unread}${capped ? "+" : ""}`;
  $("inbox-open").setAttribute(
    "aria-label",
    unread ? `Threads: ${unread} unread ${unread === 1 ? "reply" : "replies"}` : "Threads",
  );
}

function draw() {
  const list = $("inbox-list");
  list.replaceChildren();
  $("inbox-empty").hidden = entries.length > 0;
  for (const entry of entries) {
    const item = document.createElement("li");
    item.className = `inbox-entry${entry.unread ? " unread" : ""}`;
    item.dataset.root = entry.root_id;
    const open = document.createElement("button");
    open.type = "button";
    open.className = "quiet";
    const text = document.createElement("span");
    text.className = "gist";
    text.textContent = gist(entry.root) || "(no text)";
    const meta = document.createElement("span");
    meta.className = "meta";
    const summary = entry.root.replies;
    const count = summary ? (summary.count === 1 ? "1 reply" : `${summary.count} replies`) : "";
    meta.textContent = `${count} · last ${summary ? ago(summary.last_reply_at) : ""} · thread ${entry.thread_id.slice(0, 8)}`;
    open.append(text, meta);
    open.append(threads.counters(entry));
    open.addEventListener("click", () => {
      closeInbox();
      page.open(entry.thread_id, entry.root);
    });
    item.append(open);
    list.append(item);
  }
}
