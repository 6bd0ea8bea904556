// The panels beside the thread, wired to the page: a root's conversation (`conversation.js`)
// and the Threads view (`inbox.js`).

import * as conversation from "./conversation.js";
import * as inbox from "./inbox.js";

/**
 * `parts` how the thread draws a message, `state` the page's state, `upsert(message)` shows
 * a message in the thread.
 */
export function panelsOn({ parts, state, upsert }) {
  // In a conversation: its own quotes only (a reply to a reply), reactions, no thread controls.
  const conversationParts = {
    ...parts,
    quote: (message) =>
      message.reply_to === message.root_id ? document.createDocumentFragment() : parts.quote(message),
    controls: () => {
      const box = document.createElement("div");
      box.className = "actions";
      return box;
    },
    replies: () => document.createDocumentFragment(),
  };

  conversation.conversationOn({
    thread: () => state.thread,
    upsert,
    parts: () => conversationParts,
    changed: () => inbox.refreshSoon(),
  });

  inbox.inboxOn({
    open(thread, root) {
      if (thread === state.thread) return conversation.openConversation(root);
      // Opened once the thread is (see `openThread`).
      state.pendingRoot = root;
      location.hash = thread;
    },
  });
}
