// Read state on the chat page: where the reader stopped in the thread, the "new messages"
// divider above the first unread message, the thread marked read as the reader reaches the
// bottom (at most one request a second), the unread count in the tab's title while the page is
// in the background, and "mark as unread".

import { authHeaders, request } from "./api.js";
import { refreshSoon } from "./threads.js";

const MARK_EVERY_MS = 1000;

export class ReadState {
  /**
   * `thread`: the thread's id; `title`: the tab's title when nothing is unread.
   */
  constructor(thread, title) {
    this.thread = thread;
    this.title = title;
    // The position the server holds for the reader, as last heard.
    this.seq = 0;
    // The furthest position this page has asked for and not yet sent.
    this.wanted = 0;
    this.lastSent = 0;
    this.timer = null;
    this.closed = false;
    // Messages of others that arrived while the page was in the background.
    this.unseen = 0;
    // After "mark as unread" the page stops marking the thread read until it is opened again.
    this.paused = false;
  }

  /** The reader's position and the first unread message: `{seq, unread, first_unread_seq}`. */
  async load() {
    const read = await request("GET", `threads/${this.thread}/read`, undefined, authHeaders(true));
    this.seq = read.seq;
    return read;
  }

  /** The reader has seen everything up to `seq`: tell the server, at most once a second. */
  seen(seq) {
    if (this.closed || this.paused || seq <= Math.max(this.seq, this.wanted)) return;
    this.wanted = seq;
    if (this.timer) return;
    const wait = Math.max(0, this.lastSent + MARK_EVERY_MS - Date.now());
    this.timer = setTimeout(() => this.send(), wait);
  }

  async send() {
    this.timer = null;
    if (this.closed || this.wanted <= this.seq) return;
    const seq = this.wanted;
    this.lastSent = Date.now();
    try {
      const read = await request("PUT", `threads/${this.thread}/read`, { seq });
      this.seq = Math.max(this.seq, read.seq);
      // The thread's counts (and the Mentions badge) move.
      refreshSoon();
    } catch {
      // Not saved: the next move to the bottom asks again.
      this.wanted = this.seq;
    }
  }

  /**
   * "Mark as unread" from the message numbered `seq`; answers the new state. The thread stays
   * unread from there until it is opened again, even if the reader is at the bottom.
   */
  async unreadFrom(seq) {
    clearTimeout(this.timer);
    this.timer = null;
    this.wanted = 0;
    this.paused = true;
    const read = await request("PUT", `threads/${this.thread}/read`, { unread_from: seq });
    this.seq = read.seq;
    refreshSoon();
    return read;
  }

  /** A message of someone else arrived; counted in the title while the page is hidden. */
  arrived() {
    if (!document.hidden) return;
    this.unseen += 1;
    document.title = `(${this.unseen}) ${this.title}`;
  }

  /** The page is in front again. */
  visible() {
    this.unseen = 0;
    document.title = this.title;
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
  }
}

/** The "new messages" divider, put above `node`. */
export function showDivider(list, node) {
  list.querySelector("li.unread-divider")?.remove();
  const divider = document.createElement("li");
  divider.className = "unread-divider";
  divider.setAttribute("role", "separator");
  divider.textContent = "New messages";
  list.insertBefore(divider, node);
  return divider;
}
