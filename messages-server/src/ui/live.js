// The thread's event stream on the chat page: it resumes from the last event the page has,
// applies each change as the message's new state, and reconnects when the server goes away.

import { identity } from "./api.js";

/**
 * What the stream needs of the page: `state` (the thread, the last event id, the stream and
 * its retry), `upsert(message)`, `remove(id)`, `setStatus(text, tone)`, `oldestShownSeq()`,
 * `nearBottom()`, `scrollToBottom()`.
 */
let page = null;

export function liveOn(pageParts) {
  page = pageParts;
}

export function closeStream() {
  clearTimeout(page.state.retryTimer);
  page.state.retryTimer = null;
  if (page.state.source) {
    page.state.source.close();
    page.state.source = null;
  }
}

function streamUrl() {
  let url = `threads/${page.state.thread}/events?since=${page.state.lastEventId}`;
  // EventSource cannot send headers; the gateway accepts the token as ?jwt=.
  if (identity.token) url += `&jwt=${encodeURIComponent(identity.token)}`;
  return url;
}

function onChange(event) {
  const id = Number(event.lastEventId);
  if (Number.isFinite(id) && id > page.state.lastEventId) page.state.lastEventId = id;
  let data;
  try {
    data = JSON.parse(event.data);
  } catch {
    return;
  }
  if (event.type === "message.deleted") {
    page.remove(data.id);
    return;
  }
  // A change of a message older than the shown ones arrives with its page when the reader
  // scrolls up; only messages within what is shown are placed now.
  if (!page.state.shown.has(data.id) && page.state.hasOlder && data.seq < page.oldestShownSeq()) return;
  const follow = page.nearBottom();
  page.upsert(data);
  if (follow) page.scrollToBottom();
}

export function connect() {
  closeStream();
  const generation = page.state.generation;
  const source = new EventSource(streamUrl());
  page.state.source = source;
  let wasDown = false;
  source.addEventListener("open", () => {
    page.state.retryDelay = 1000;
    page.setStatus(wasDown ? "Reconnected: live again." : "Live: new messages appear as they are sent.", "good");
    wasDown = false;
  });
  for (const type of ["message.created", "message.updated", "message.deleted"]) {
    source.addEventListener(type, onChange);
  }
  source.addEventListener("error", () => {
    if (generation !== page.state.generation || page.state.source !== source) return;
    wasDown = true;
    if (source.readyState === EventSource.CLOSED) {
      // The browser gave up (the server refused the stream): try again ourselves, from the
      // last event this page has.
      const delay = page.state.retryDelay;
      page.state.retryDelay = Math.min(page.state.retryDelay * 2, 30000);
      page.setStatus(`Connection lost. Reconnecting in ${Math.round(delay / 1000)} s…`, "bad");
      page.state.retryTimer = setTimeout(() => {
        if (generation === page.state.generation) connect();
      }, delay);
    } else {
      // The browser reconnects by itself and sends the last event id it had.
      page.setStatus("Connection lost. Reconnecting…", "bad");
    }
  });
}
