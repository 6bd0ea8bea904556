// The chat page: one thread at a time through the messages API. Every URL is relative to the
// page, so the page works at the server's root and under a gateway's prefix (/messages/).
// No build step and no dependencies; `api.js` holds the identity and the requests, `render.js`
// how a message looks, `identity.js` the panel that says who the reader writes as,
// `reactions.js` the chips and the picker, `replies.js` quotes, `history.js` earlier versions,
// `editing.js` the edit form and the question before a delete, `live.js` the event stream,
// `unread.js` the reader's position and the "new messages" divider, `composer.js` the draft
// and its sending (`picker.js` its mentions), `addressing.js` whom a message names,
// `navigation.js` the thread named by the page's address and jumps in it, `panels.js` the
// views beside the thread: a root's replies (`conversation.js`), Threads (`threads.js`,
// `inbox.js`) and Mentions (`mentions.js`).

import { me, request, whenUnauthorized } from "./api.js";
import { addresses } from "./addressing.js";
import { showHistory } from "./history.js";
import { composerOn } from "./composer.js";
import * as conversation from "./conversation.js";
import * as inbox from "./inbox.js";
import { panelsOn } from "./panels.js";
import { confirmDelete, editingOn, inlineError, startEdit } from "./editing.js";
import { identityPanel } from "./identity.js";
import { navigationOn } from "./navigation.js";
import { closeStream, connect, liveOn } from "./live.js";
import { reactionChips, reactionPicker } from "./reactions.js";
import { button, renderMessage } from "./render.js";
import { Quotes, quoteNode, quoteText } from "./replies.js";
import { ReadState, showDivider } from "./unread.js";
import * as threads from "./threads.js";

const PAGE = 50;
const NEAR_TOP = 150;
const NEAR_BOTTOM = 120;

const $ = (id) => document.getElementById(id);
const el = {
  openForm: $("open-thread"),
  threadInput: $("thread-id"),
  newThread: $("new-thread"),
  identityText: $("identity-text"),
  identityChange: $("identity-change"),
  identityForm: $("identity-form"),
  userInput: $("user-id"),
  tokenInput: $("token"),
  modeNote: $("mode-note"),
  main: $("thread"),
  welcome: $("welcome"),
  status: $("status"),
  scroller: $("scroller"),
  history: $("history"),
  list: $("messages"),
  composer: $("composer"),
  draft: $("draft"),
  send: $("send"),
  replying: $("replying"),
  replyingText: $("replying-text"),
  replyingCancel: $("replying-cancel"),
  sendError: $("send-error"),
  mentionOptions: $("mention-options"),
};

const state = {
  config: { auth: "trusted", max_content_chars: 4000 },
  thread: null,
  // id → { message, node }
  shown: new Map(),
  // ids deleted while shown (a deletion is final), so a page read before it cannot bring one back
  deleted: new Set(),
  cursor: null,
  hasOlder: false,
  loadingOlder: false,
  lastEventId: 0,
  source: null,
  retryTimer: null,
  retryDelay: 1000,
  draftKey: null,
  generation: 0,
  // the message the draft replies to, and what the page knows of reply targets
  replyTo: null,
  quotes: null,
  // the message a quote's click pointed at, marked for a moment
  highlighted: null,
  // the reader's position in the thread (unread.js)
  read: null,
  // what to do once a thread is open, `{thread, run}` (from the Threads or Mentions view)
  afterOpen: null,
};

editingOn({
  thread: () => state.thread,
  shown: state.shown,
  renderInto: (node, message) => renderInto(node, message),
  remove: (id) => remove(id),
});

liveOn({
  state,
  upsert: (message) => {
    const arrived = !state.shown.has(message.id) && message.user_id !== me();
    upsert(message);
    if (arrived) state.read?.arrived();
    if (arrived && message.root_id) inbox.refreshSoon();
    if (arrived && addresses(message, me())) threads.refreshSoon();
  },
  remove: (id) => remove(id),
  setStatus: (text, tone) => setStatus(text, tone),
  oldestShownSeq: () => oldestShownSeq(),
  nearBottom: () => nearBottom(),
  scrollToBottom: () => {
    scrollToBottom();
    markSeen();
  },
});

const identityUi = identityPanel(el, () => state.config.auth, () => {
  for (const { message, node } of state.shown.values()) renderInto(node, message);
  if (state.thread) openThread(state.thread);
});

// --- status ---------------------------------------------------------------------------------

function setStatus(text, tone = "") {
  el.status.textContent = text;
  el.status.className = `status ${tone}`;
}

// --- rendering ------------------------------------------------------------------------------

function renderInto(node, message) {
  renderMessage(node, message, message.user_id === me(), parts);
  // A message being pointed at keeps its mark through a redraw.
  if (state.highlighted === message.id) node.classList.add("highlight");
}

const parts = {
  controls(message, mine) {
    const box = document.createElement("div");
    box.className = "actions";
    const reply = button("Reply", "reply", "Reply to this message");
    reply.addEventListener("click", () => startReply(message));
    box.append(reply);
    if (!message.reply_to) {
      const inThread = button("Reply in thread", "thread", "Reply in this message's conversation");
      inThread.addEventListener("click", () => conversation.openConversation(message));
      box.append(inThread);
    }
    box.append(reactionPicker((emoji) => react(message.id, emoji, true)));
    if (mine) {
      const edit = button("Edit", "edit", "Edit this message");
      const del = button("Delete", "delete", "Delete this message");
      edit.addEventListener("click", () => startEdit(message.id));
      del.addEventListener("click", () => confirmDelete(message.id, box));
      box.append(edit, del);
    }
    const unread = button("Mark unread", "unread", "Mark as unread from this message");
    unread.addEventListener("click", () => markUnread(message));
    box.append(unread);
    return box;
  },
  quote(message) {
    const target = message.reply_to;
    const known = state.quotes?.peek(target);
    if (known === undefined && state.quotes) {
      const quotes = state.quotes;
      quotes
        .fetch(target)
        .then(() => {
          if (quotes === state.quotes) refreshReplies(target);
        })
        .catch(() => {});
    }
    return quoteNode(known, me(), () => jumpTo(target));
  },
  reactions(message) {
    return reactionChips(message, me(), (emoji, on) => react(message.id, emoji, on));
  },
  history(message, opener) {
    showHistory(state.thread, message, opener);
  },
  replies: (message) => conversation.repliesLink(message),
};

panelsOn({ parts, state, upsert: (message) => upsert(message), jumpTo: (id) => jumpTo(id) });

/** Draws again the shown replies to `id`, whose quote may have changed. */
function refreshReplies(id) {
  for (const { message, node } of state.shown.values()) {
    if (message.reply_to === id && !node.querySelector(".edit-form")) renderInto(node, message);
  }
  if (state.replyTo === id) showReplying();
}

function oldestShownSeq() {
  const first = el.list.querySelector("li[data-seq]:not(.pending)");
  return first ? Number(first.dataset.seq) : Infinity;
}

/** Puts `node` in seq order among the shown messages (pending ones stay last). */
function place(node, seq) {
  const items = el.list.querySelectorAll("li[data-seq]:not(.pending)");
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (Number(items[mid].dataset.seq) < seq) lo = mid + 1;
    else hi = mid;
  }
  const before = items[lo] || el.list.querySelector("li.pending");
  el.list.insertBefore(node, before || null);
}

function nearBottom() {
  const s = el.scroller;
  return s.scrollHeight - s.scrollTop - s.clientHeight < NEAR_BOTTOM;
}

function scrollToBottom() {
  el.scroller.scrollTop = el.scroller.scrollHeight;
}

// --- read state -----------------------------------------------------------------------------

/** At the bottom of a thread in front of the reader: everything up to the head is read. */
function markSeen() {
  if (state.read && !document.hidden && nearBottom()) state.read.seen(state.lastEventId);
}

/** "Mark as unread" from `message`: the divider goes above it. */
async function markUnread(message) {
  const read = state.read;
  if (!read) return;
  try {
    const answer = await read.unreadFrom(message.seq);
    if (read !== state.read) return;
    const shown = state.shown.get(message.id);
    if (shown) showDivider(el.list, shown.node);
    setStatus(`Marked unread from there: ${answer.unread} unread.`);
  } catch (error) {
    const shown = state.shown.get(message.id);
    if (shown) inlineError(shown.node, `Not marked unread: ${error.message}`);
  }
}

/**
 * Puts the "new messages" divider above the first unread message (loading older pages until
 * it is shown, up to a few) and scrolls to it; scrolls to the bottom when nothing is unread,
 * and in a thread the reader never read, which opens at its newest messages.
 */
async function showFirstUnread(generation, read) {
  const first = read?.first_unread_seq;
  if (!first || !read.seq) return scrollToBottom();
  for (let pages = 0; pages < 8 && state.hasOlder && oldestShownSeq() > first; pages++) {
    if (!(await loadOlder()) || generation !== state.generation) break;
  }
  const nodes = el.list.querySelectorAll("li[data-seq]:not(.pending)");
  const node = [...nodes].find((n) => Number(n.dataset.seq) >= first);
  if (!node) return scrollToBottom();
  showDivider(el.list, node).scrollIntoView({ block: "start" });
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden) return;
  state.read?.visible();
  markSeen();
});

/** Shows `message` in its latest state; an older state than the one shown is ignored. */
function upsert(message) {
  if (state.deleted.has(message.id)) return;
  conversation.conversationUpsert(message);
  const current = state.shown.get(message.id);
  if (current) {
    if (current.message.rev > message.rev) return;
    const quoted = current.message.content !== message.content;
    current.message = message;
    if (!current.node.querySelector(".edit-form")) renderInto(current.node, message);
    if (quoted) refreshReplies(message.id);
    return;
  }
  const node = document.createElement("li");
  renderInto(node, message);
  state.shown.set(message.id, { message, node });
  place(node, message.seq);
}

function remove(id) {
  state.deleted.add(id);
  conversation.conversationRemove(id);
  state.quotes?.gone(id);
  const current = state.shown.get(id);
  if (current) {
    current.node.remove();
    state.shown.delete(id);
  }
  if (state.replyTo === id) cancelReply();
  refreshReplies(id);
}

// --- reactions and replies --------------------------------------------------------------------

/** Adds (`on`) or takes back the reader's reaction; the message shows its new state. */
async function react(id, emoji, on) {
  const path = `threads/${state.thread}/messages/${id}/reactions/${encodeURIComponent(emoji)}`;
  try {
    const answer = await request(on ? "PUT" : "DELETE", path);
    // A removal answers 204: the message's new state comes from the stream, or from a read.
    upsert(answer || (await request("GET", `threads/${state.thread}/messages/${id}`)));
  } catch (error) {
    const shown = state.shown.get(id);
    if (shown) inlineError(shown.node, `Reaction not saved: ${error.message}`);
  }
}

function showReplying() {
  const target = state.replyTo && state.quotes?.peek(state.replyTo);
  el.replying.hidden = !state.replyTo;
  el.replyingText.textContent = state.replyTo ? `Replying to ${quoteText(target, me())}` : "";
}

function startReply(message) {
  state.replyTo = message.id;
  state.draftKey = null;
  showReplying();
  el.draft.focus();
}

function cancelReply() {
  state.replyTo = null;
  state.draftKey = null;
  showReplying();
}

el.replyingCancel.addEventListener("click", () => {
  cancelReply();
  el.draft.focus();
});

// --- the thread -----------------------------------------------------------------------------

async function openThread(id) {
  closeStream();
  const generation = ++state.generation;
  state.thread = id;
  state.shown.clear();
  state.deleted.clear();
  state.cursor = null;
  state.hasOlder = false;
  state.loadingOlder = false;
  state.lastEventId = 0;
  state.draftKey = null;
  state.quotes = new Quotes(id, (target) => state.shown.get(target)?.message);
  state.replyTo = null;
  showReplying();
  conversation.closeConversation();
  threads.rememberThread(id);
  el.list.replaceChildren();
  el.history.textContent = "";
  el.sendError.textContent = "";
  el.threadInput.value = id;
  el.main.hidden = false;
  el.welcome.hidden = true;
  document.title = `messages · ${id.slice(0, 8)}`;
  state.read?.close();
  state.read = new ReadState(id, document.title);
  const reading = state.read.load().catch(() => null);
  setStatus("Loading the thread…");
  let page;
  try {
    page = await request("GET", `threads/${id}/messages?limit=${PAGE}`);
  } catch (error) {
    if (generation !== state.generation) return;
    setStatus(`Could not load the thread: ${error.message}`, "bad");
    return;
  }
  if (generation !== state.generation) return;
  for (const message of [...page.items].reverse()) upsert(message);
  state.cursor = page.next_cursor;
  state.hasOlder = page.has_more;
  state.lastEventId = page.rev;
  el.history.textContent = state.hasOlder ? "" : beginning();
  await showFirstUnread(generation, await reading);
  if (generation !== state.generation) return;
  connect();
  const after = state.afterOpen;
  state.afterOpen = null;
  if (after?.thread === id) await after.run();
  inbox.refreshSoon();
  threads.refreshSoon();
  await fillScreen(generation);
  markSeen();
}

function beginning() {
  // Pending sends count: the notice goes as soon as the first message shows.
  return el.list.childElementCount
    ? "The beginning of the thread."
    : "No messages yet: write the first.";
}

// The notice at the top follows the list: it says "No messages yet" only while the list is
// empty, so it goes with the first message and comes back when the last one is deleted.
new MutationObserver(() => {
  if (!state.hasOlder) el.history.textContent = beginning();
}).observe(el.list, { childList: true });

/** Loads older pages until the list can scroll, so scrolling up can ask for more. */
async function fillScreen(generation) {
  while (
    generation === state.generation &&
    state.hasOlder &&
    el.scroller.scrollHeight <= el.scroller.clientHeight + NEAR_TOP
  ) {
    if (!(await loadOlder())) return;
  }
}

async function loadOlder() {
  if (!state.hasOlder || state.loadingOlder || !state.cursor) return false;
  state.loadingOlder = true;
  const generation = state.generation;
  el.history.textContent = "Loading older messages…";
  try {
    const cursor = encodeURIComponent(state.cursor);
    const page = await request("GET", `threads/${state.thread}/messages?limit=${PAGE}&cursor=${cursor}`);
    if (generation !== state.generation) return false;
    const height = el.scroller.scrollHeight;
    const top = el.scroller.scrollTop;
    for (const message of page.items) upsert(message);
    // Keep the reader where they were: the new rows went in above.
    el.scroller.scrollTop = top + (el.scroller.scrollHeight - height);
    state.cursor = page.next_cursor;
    state.hasOlder = page.has_more;
    el.history.textContent = state.hasOlder ? "" : beginning();
    return true;
  } catch (error) {
    if (generation === state.generation) {
      el.history.textContent = `Could not load older messages: ${error.message}`;
    }
    return false;
  } finally {
    if (generation === state.generation) state.loadingOlder = false;
  }
}

el.scroller.addEventListener("scroll", () => {
  markSeen();
  if (el.scroller.scrollTop < NEAR_TOP) {
    loadOlder().then((loaded) => {
      if (loaded && el.scroller.scrollTop < NEAR_TOP) el.scroller.dispatchEvent(new Event("scroll"));
    });
  }
});

// --- writing --------------------------------------------------------------------------------

composerOn({
  el,
  state,
  upsert: (message) => upsert(message),
  cancelReply: () => cancelReply(),
  scrollToBottom: () => scrollToBottom(),
});

// --- navigation -----------------------------------------------------------------------------

const { route, jumpTo } = navigationOn({
  el,
  state,
  openThread: (id) => openThread(id),
  closeStream,
  upsert: (message) => upsert(message),
  setStatus: (text, tone) => setStatus(text, tone),
});

whenUnauthorized(() => identityUi.open(true));

async function start() {
  try {
    const config = await fetch("ui/config.json").then((r) => (r.ok ? r.json() : null));
    if (config) state.config = { ...state.config, ...config };
  } catch {
    // The defaults: trusted-header mode.
  }
  identityUi.show();
  route();
  inbox.refresh();
  threads.refresh();
}

start();
