// The composer: the draft, sent with an idempotency key of its own (a retry of the same draft
// is answered with the message it created) and the users it mentions (`picker.js`), shown as
// pending until the server answers, kept when sending fails.

import { me, randomUuid, request } from "./api.js";
import { MentionPicker } from "./picker.js";

let deps = null;
let picker = null;

/** The users who wrote the shown messages, the most recent first, the reader left out. */
function seenUsers(state) {
  const messages = [...state.shown.values()].map(({ message }) => message);
  messages.sort((a, b) => b.seq - a.seq);
  const users = new Set(messages.map((message) => message.user_id));
  users.delete(me());
  return [...users];
}

/**
 * Wires the composer to the page: `el` its elements, `state` the page's state (thread, draft
 * key, the message replied to), `upsert` to show the created message, `cancelReply` and
 * `scrollToBottom`.
 */
export function composerOn(page) {
  deps = page;
  const { el, state } = page;
  picker = new MentionPicker(el.draft, el.mentionOptions, () => seenUsers(state));
  el.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  el.draft.addEventListener("keydown", (event) => {
    if (picker.handleKey(event)) return;
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
  const mentions = picker.mentionsIn(text);
  if (mentions) body.mentions = mentions;
  try {
    const message = await request("POST", `threads/${thread}/messages`, body, {
      "Idempotency-Key": key,
    });
    pending.remove();
    state.draftKey = null;
    if (el.draft.value === "") picker.clear();
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
