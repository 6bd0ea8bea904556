// Navigation: the thread is the page's address (`#<thread id>`); the form opens one by its id,
// the button starts a new one; a jump scrolls to a message of the open thread.

import { UUID, randomUuid, request, typedUuid } from "./api.js";

const MARKED_MS = 1600;

/**
 * Wires navigation to the page (`el` its elements, `state` its state, `openThread`,
 * `closeStream`, `upsert(message)` and `setStatus(text, tone)`); answers `route`, which shows
 * what the address names, and `jumpTo`.
 */
export function navigationOn({ el, state, openThread, closeStream, upsert, setStatus }) {
  function threadFromHash() {
    const id = decodeURIComponent(location.hash.slice(1)).trim();
    return UUID.test(id) ? id.toLowerCase() : null;
  }

  function route() {
    const id = threadFromHash();
    if (id) {
      if (id !== state.thread) openThread(id);
    } else {
      closeStream();
      state.thread = null;
      el.main.hidden = true;
      el.welcome.hidden = false;
      if (location.hash.length > 1) {
        el.threadInput.value = decodeURIComponent(location.hash.slice(1));
        el.threadInput.setCustomValidity("That is not a thread id: a thread id is a UUID.");
        el.threadInput.reportValidity();
      }
    }
  }

  el.openForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const id = typedUuid(el.threadInput, "thread id", "0193a1a0-0000-7000-8000-000000000001");
    if (id) location.hash = id;
  });
  el.threadInput.addEventListener("input", () => el.threadInput.setCustomValidity(""));
  el.newThread.addEventListener("click", () => {
    location.hash = randomUuid();
    el.draft.focus();
  });
  window.addEventListener("hashchange", route);

  /** Scrolls to a message, loading the messages around it when it is not shown, and marks it. */
  async function jumpTo(id) {
    if (!state.shown.has(id)) {
      try {
        const around = await request("GET", `threads/${state.thread}/messages?around=${id}&limit=20`);
        for (const message of around.items) upsert(message);
      } catch (error) {
        setStatus(`Could not show that message: ${error.message}`, "bad");
        return;
      }
    }
    const shown = state.shown.get(id);
    if (!shown) {
      setStatus("That message was deleted.");
      return;
    }
    shown.node.scrollIntoView({ block: "center" });
    state.highlighted = id;
    shown.node.classList.add("highlight");
    setTimeout(() => {
      if (state.highlighted !== id) return;
      state.highlighted = null;
      state.shown.get(id)?.node.classList.remove("highlight");
    }, MARKED_MS);
  }

  return { route, jumpTo };
}
