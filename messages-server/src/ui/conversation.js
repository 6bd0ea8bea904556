// A root's conversation on the chat page: the "3 replies · last 2 min ago" link under a root
// (with its participants' initials), and the panel it opens beside the thread (over it on a
// phone) with the root, its replies oldest first, and a composer of its own. Replies arrive
// live through the thread's stream; what the reader sees of them is marked read.

import { authHeaders, me, randomUuid, request } from "./api.js";
import { button, renderMessage, shortUser } from "./render.js";

const PAGE = 50;

let page = null;

const conv = {
  root: null,
  // id → { message, node }
  shown: new Map(),
  cursor: null,
  hasMore: false,
  draftKey: null,
  generation: 0,
  // the highest reply seq the server was told is read
  readSeq: 0,
};

const $ = (id) => document.getElementById(id);

/** "just now", "4 min ago", "3 h ago", else the date. */
export function ago(iso, now = Date.now()) {
  const seconds = Math.max(0, (now - new Date(iso).getTime()) / 1000);
  if (!Number.isFinite(seconds)) return iso;
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}

/** Two letters that stand for a user, and a hue of their own. */
function initials(user) {
  const badge = document.createElement("span");
  badge.className = "initials";
  badge.textContent = user === me() ? "You" : String(user).slice(0, 2).toUpperCase();
  badge.title = user === me() ? "You" : shortUser(user);
  const hue = Number.parseInt(String(user).slice(0, 6), 16) % 360;
  badge.style.setProperty("--hue", String(Number.isFinite(hue) ? hue : 210));
  return badge;
}

/** The link under a root with replies: its count, its last reply's time, who took part. */
export function repliesLink(message) {
  const summary = message.replies;
  const link = button("", "replies", "");
  link.classList.add("replies-link");
  const who = document.createElement("span");
  who.className = "participants";
  for (const user of summary.participants) who.append(initials(user));
  const count = summary.count === 1 ? "1 reply" : `${summary.count} replies`;
  const text = document.createElement("span");
  text.textContent = `${count} · last ${ago(summary.last_reply_at)}`;
  link.append(who, text);
  link.setAttribute("aria-label", `${count}, the last ${ago(summary.last_reply_at)}: open the conversation`);
  link.addEventListener("click", () => openConversation(message));
  return link;
}

/**
 * Wires the panel to the page: `thread()` the open thread, `lookup(id)` a message the thread
 * shows, `upsert(message)` shows a message in the thread, `parts(mine)` the message parts the
 * panel draws with, `changed()` after the reader read replies (the inbox counts again).
 */
export function conversationOn(pageParts) {
  page = pageParts;
  $("conversation-close").addEventListener("click", () => closeConversation());
  $("reply-composer").addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  $("reply-draft").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  $("reply-draft").addEventListener("input", () => {
    conv.draftKey = null;
  });
  $("conversation-more").addEventListener("click", () => loadMore());
  document.addEventListener("visibilitychange", () => markRead());
}

/** The root whose conversation is open, or null. */
export function openRoot() {
  return conv.root?.id ?? null;
}

/** Opens the conversation of `root` (a message of the open thread). */
export async function openConversation(root) {
  const generation = ++conv.generation;
  conv.root = root;
  conv.shown.clear();
  conv.cursor = null;
  conv.hasMore = false;
  conv.draftKey = null;
  conv.readSeq = 0;
  $("conversation-replies").replaceChildren();
  $("reply-error").textContent = "";
  $("conversation-status").textContent = "Loading the replies…";
  $("conversation").hidden = false;
  document.body.classList.add("with-conversation");
  drawRoot();
  $("reply-draft").focus();
  await loadMore(generation);
}

export function closeConversation() {
  conv.generation++;
  conv.root = null;
  conv.shown.clear();
  $("conversation").hidden = true;
  document.body.classList.remove("with-conversation");
}

/** A message of the thread changed or arrived: the panel shows it when it is its root or one of its replies. */
export function conversationUpsert(message) {
  if (!conv.root) return;
  if (message.id === conv.root.id) {
    if (message.rev < conv.root.rev) return;
    conv.root = message;
    drawRoot();
    return;
  }
  if (message.root_id !== conv.root.id) return;
  const current = conv.shown.get(message.id);
  if (current) {
    if (current.message.rev > message.rev) return;
    current.message = message;
    draw(current.node, message);
    return;
  }
  // Replies past what is loaded come with the next page.
  if (conv.hasMore) return;
  show(message);
  markRead();
}

/** A message of the thread was deleted. */
export function conversationRemove(id) {
  if (!conv.root) return;
  if (id === conv.root.id) {
    $("conversation-status").textContent = "The message this conversation answers was deleted.";
    $("reply-composer").hidden = true;
    return;
  }
  conv.shown.get(id)?.node.remove();
  conv.shown.delete(id);
}

function drawRoot() {
  const box = $("conversation-root");
  box.replaceChildren();
  const node = document.createElement("div");
  draw(node, conv.root);
  node.classList.add("root");
  box.append(node);
  $("reply-composer").hidden = false;
  const count = conv.root.replies?.count ?? 0;
  $("conversation-count").textContent = count === 1 ? "1 reply" : `${count} replies`;
}

function draw(node, message) {
  const mine = message.user_id === me();
  renderMessage(node, message, mine, page.parts(mine));
}

/** Puts a reply in seq order. */
function show(message) {
  const node = document.createElement("li");
  draw(node, message);
  conv.shown.set(message.id, { message, node });
  const list = $("conversation-replies");
  const after = [...list.children].find((n) => Number(n.dataset.seq) > message.seq);
  list.insertBefore(node, after || null);
  node.scrollIntoView({ block: "nearest" });
}

async function loadMore(generation = conv.generation) {
  if (!conv.root) return;
  const root = conv.root;
  const cursor = conv.cursor ? `&cursor=${encodeURIComponent(conv.cursor)}` : "";
  try {
    const replies = await request(
      "GET",
      `threads/${page.thread()}/messages/${root.id}/replies?limit=${PAGE}${cursor}`,
    );
    if (generation !== conv.generation) return;
    for (const message of replies.items) if (!conv.shown.has(message.id)) show(message);
    conv.cursor = replies.next_cursor;
    conv.hasMore = replies.has_more;
    $("conversation-more").hidden = !conv.hasMore;
    $("conversation-status").textContent = conv.shown.size ? "" : "No replies yet: write the first.";
    markRead();
  } catch (error) {
    if (generation !== conv.generation) return;
    $("conversation-status").textContent =
      error.status === 404
        ? "The message this conversation answers was deleted."
        : `Could not load the replies: ${error.message}`;
  }
}

/** The reader sees the newest reply shown: the conversation is read up to it. */
async function markRead() {
  if (!conv.root || document.hidden) return;
  const newest = Math.max(0, ...[...conv.shown.values()].map(({ message }) => message.seq));
  if (newest <= conv.readSeq) return;
  conv.readSeq = newest;
  const root = conv.root;
  try {
    await request(
      "PUT",
      `threads/${page.thread()}/messages/${root.id}/replies/read`,
      { seq: newest },
      authHeaders(true),
    );
    page.changed();
  } catch {
    // Not saved: the next reply seen asks again.
    if (root === conv.root) conv.readSeq = 0;
  }
}

async function send() {
  const draft = $("reply-draft");
  const text = draft.value;
  if (!text.trim() || !conv.root) return;
  conv.draftKey ||= randomUuid();
  const key = conv.draftKey;
  const root = conv.root;
  $("reply-error").textContent = "";
  draft.value = "";
  try {
    const message = await request(
      "POST",
      `threads/${page.thread()}/messages`,
      { content: text, reply_to: root.id },
      { "Idempotency-Key": key },
    );
    conv.draftKey = null;
    page.upsert(message);
    if (root === conv.root) conversationUpsert(message);
  } catch (error) {
    // The draft stays, so nothing typed is lost.
    if (!draft.value) draft.value = text;
    $("reply-error").textContent =
      error.code === "invalid_reply_to"
        ? "Not sent: the message this conversation answers was deleted."
        : `Not sent: ${error.message}`;
    draft.focus();
  }
}
