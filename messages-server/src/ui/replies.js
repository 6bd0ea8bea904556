// Replies on the chat page: the one-line quote a reply shows of the message it answers
// (fetched by id when that message is not loaded; "deleted message" when it is gone), and
// what the composer says while the reader is replying.

import { ApiError, request } from "./api.js";
import { shortUser } from "./render.js";

/** The first line of a message's text, shortened; its paths when it has no text. */
export function gist(message, max = 80) {
  const text = (message.content || "").split("\n")[0] || (message.paths || []).join(", ");
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * The targets of replies: messages by id, as the page knows them. `lookup(id)` gives a shown
 * message; others are fetched once by id. A target that is gone is remembered as gone.
 */
export class Quotes {
  constructor(thread, lookup) {
    this.thread = thread;
    this.lookup = lookup;
    this.known = new Map(); // id → message, or null when deleted
    this.loading = new Map();
  }

  /** The target now: a message, null when deleted, undefined while unknown. */
  peek(id) {
    return this.lookup(id) ?? this.known.get(id);
  }

  gone(id) {
    this.known.set(id, null);
  }

  /** Fetches a target the page does not have; resolves to the message or null. */
  fetch(id) {
    if (this.known.has(id)) return Promise.resolve(this.known.get(id));
    if (!this.loading.has(id)) {
      const loaded = request("GET", `threads/${this.thread}/messages/${id}`)
        .then((message) => message)
        .catch((error) => {
          if (error instanceof ApiError && error.status === 404) return null;
          throw error;
        })
        .then((message) => {
          this.known.set(id, message);
          this.loading.delete(id);
          return message;
        });
      this.loading.set(id, loaded);
    }
    return this.loading.get(id);
  }
}

/** What a quote says of its target. */
export function quoteText(target, me) {
  if (target === null) return "deleted message";
  if (target === undefined) return "…";
  const who = target.user_id === me ? "You" : shortUser(target.user_id);
  return `${who}: ${gist(target)}`;
}

/** The quote a reply shows; `jump()` is called when the reader clicks it. */
export function quoteNode(target, me, jump) {
  const quote = document.createElement("button");
  quote.type = "button";
  quote.className = `quote${target === null ? " gone" : ""}`;
  quote.dataset.action = "jump";
  quote.textContent = `↪ ${quoteText(target, me)}`;
  quote.setAttribute("aria-label", `In reply to ${quoteText(target, me)}: show it`);
  quote.disabled = target === null;
  quote.addEventListener("click", jump);
  return quote;
}
