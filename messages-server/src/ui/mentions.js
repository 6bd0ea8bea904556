// The "Mentions" view of the chat page: the messages that name the reader or address the room
// in the threads this browser has opened (`GET /mentions`), the newest first, those after the
// reader's position marked unread; choosing one opens its thread at it.

import { authHeaders, me, request } from "./api.js";
import { gist } from "./replies.js";
import { localTime, shortUser } from "./render.js";
import * as threads from "./threads.js";

const LIMIT = 30;

let page = null;
let items = [];
let cursor = null;
let asked = 0;

const $ = (id) => document.getElementById(id);

/**
 * Wires the view to the page: `jump(thread, id)` shows a message of a thread, `opened()` runs
 * when the view opens (another view beside the thread closes).
 */
export function mentionsOn(pageParts) {
  page = pageParts;
  $("mentions-open").addEventListener("click", () => (isOpen() ? closeMentions() : openMentions()));
  $("mentions-close").addEventListener("click", () => closeMentions());
  $("mentions-more").addEventListener("click", () => load(cursor));
}

function isOpen() {
  return !$("mentions").hidden;
}

export function openMentions() {
  page.opened();
  $("mentions").hidden = false;
  $("mentions-open").setAttribute("aria-expanded", "true");
  document.body.classList.add("with-inbox");
  load(null);
}

export function closeMentions() {
  if (!isOpen()) return;
  $("mentions").hidden = true;
  $("mentions-open").setAttribute("aria-expanded", "false");
  document.body.classList.remove("with-inbox");
}

/** The first page (`after` null) or the one after it; the counts are asked for again too. */
async function load(after) {
  const known = threads.knownThreads();
  if (!known.length) return draw();
  const ask = ++asked;
  $("mentions-status").textContent = "Loading…";
  const from = after ? `&cursor=${encodeURIComponent(after)}` : "";
  try {
    // The counts say which mentions the reader has not read yet.
    const [found] = await Promise.all([
      request("GET", `mentions?threads=${known.join(",")}&limit=${LIMIT}${from}`, undefined, authHeaders(true)),
      threads.refresh(),
    ]);
    if (ask !== asked) return;
    items = after ? [...items, ...found.items] : found.items;
    cursor = found.has_more ? found.next_cursor : null;
    $("mentions-status").textContent = "";
  } catch (error) {
    if (ask !== asked) return;
    $("mentions-status").textContent = `Could not load your mentions: ${error.message}`;
  }
  draw();
}

function draw() {
  const list = $("mentions-list");
  list.replaceChildren();
  $("mentions-empty").hidden = items.length > 0;
  $("mentions-more").hidden = !cursor;
  for (const message of items) {
    const unread = message.seq > threads.readSeq(message.thread_id);
    const item = document.createElement("li");
    item.className = `inbox-entry mention-entry${unread ? " unread" : ""}`;
    item.dataset.id = message.id;
    const open = document.createElement("button");
    open.type = "button";
    open.className = "quiet";
    const text = document.createElement("span");
    text.className = "gist";
    text.textContent = gist(message) || "(no text)";
    const meta = document.createElement("span");
    meta.className = "meta";
    const to = message.mentions?.users?.includes(me()) ? "" : " · to everyone";
    meta.textContent = `${shortUser(message.user_id)} · ${localTime(message.created_at)} · thread ${message.thread_id.slice(0, 8)}${to}`;
    open.append(text, meta);
    if (unread) {
      const mark = document.createElement("span");
      mark.className = "badge mention-badge";
      mark.textContent = "new";
      open.append(mark);
    }
    open.addEventListener("click", () => {
      closeMentions();
      page.jump(message.thread_id, message.id);
    });
    item.append(open);
    list.append(item);
  }
}
