// The composer: the draft, sent with an idempotency key of its own (a retry of the same draft
// is answered with the message it created), shown as pending until the server answers, kept
// when sending fails.

import { randomUuid, request } from "./api.js";

let deps = null;

/**
 * Wires the composer to the page: `el` its elements, `state` the page's state (thread, draft
 * key, the message replied to), `upsert` to show the created message, `cancelReply` and
 * `scrollToBottom`.
 */
export function composerOn(page) {
  deps = page;
  const { el, state } = page;
  el.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  el.draft.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  el.draft.addEventListener("input", () => {
    // Another text is another request: it needs a key of its own.
    state.draftKey = null;
  });
}

function pendingNode(text) {
  const { el, scrollToBottom } = deps;
  const node = document.createElement("li");
  node.className = "message mine pending";
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = "Sending…";
  const content = document.createElement("p");
  content.className = "content";
  content.textContent = text;
  node.append(meta, content);
  el.list.append(node);
  scrollToBottom();
  return node;
}

async function send() {
  const { el, state, upsert, cancelReply, scrollToBottom } = deps;
  const text = el.draft.value;
  if (!text.trim() || !state.thread) return;
  // One key per draft: a retry of the same draft is answered with the message it created.
  state.draftKey ||= randomUuid();
  const key = state.draftKey;
  const thread = state.thread;
  el.sendError.textContent = "";
  el.draft.value = "";
  const pending = pendingNode(text);
  const body = { content: text };
  if (state.replyTo) body.reply_to = state.replyTo;
  try {
    const message = await request("POST", `threads/${thread}/messages`, body, {
      "Idempotency-Key": key,
    });
    pending.remove();
    state.draftKey = null;
    if (thread === state.thread && state.replyTo === body.reply_to) cancelReply();
    if (thread === state.thread) {
      upsert(message);
      scrollToBottom();
    }
  } catch (error) {
    pending.remove();
    // The draft stays, so nothing typed is lost.
    if (!el.draft.value) el.draft.value = text;
    const gone = error.code === "invalid_reply_to";
    if (gone) cancelReply();
    el.sendError.textContent = gone
      ? "Not sent: the message you reply to was deleted. Send it again as a new message."
      : `Not sent: ${error.message}`;
    el.draft.focus();
  }
}
