// The panels beside the thread, wired to the page: a root's conversation (`conversation.js`),
// the Threads view (`inbox.js`, `threads.js`), the Mentions view (`mentions.js`) and the
// Search view (`search.js`), one of the last three open at a time.

import * as conversation from "./conversation.js";
import * as inbox from "./inbox.js";
import * as mentions from "./mentions.js";
import * as search from "./search.js";
import * as threads from "./threads.js";

/**
 * `parts` how the thread draws a message, `state` the page's state, `upsert(message)` shows
 * a message in the thread, `jumpTo(id)` scrolls the open thread to a message.
 */
export function panelsOn({ parts, state, upsert, jumpTo }) {
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

  /** Runs `then` in `thread`: now if it is open, else once it is (see `openThread`). */
  function inThread(thread, then) {
    if (thread === state.thread) return then();
    state.afterOpen = { thread, run: then };
    location.hash = thread;
  }

  const views = [inbox.closeInbox, mentions.closeMentions, search.closeSearch];
  /** Closes the views beside the thread but `keep`. */
  const others = (keep) => () => views.filter((close) => close !== keep).forEach((close) => close());
  const jump = (thread, id) => inThread(thread, () => jumpTo(id));
  inbox.inboxOn({
    open: (thread, root) => inThread(thread, () => conversation.openConversation(root)),
    opened: others(inbox.closeInbox),
  });
  mentions.mentionsOn({ jump, opened: others(mentions.closeMentions) });
  search.searchOn({ jump, opened: others(search.closeSearch) });
  threads.threadsOn(() => state.thread);
}
