// Navigation: the thread is the page's address (`#<thread id>`); the form opens one by its id,
// the button starts a new one.

import { UUID, randomUuid, typedUuid } from "./api.js";

/**
 * Wires navigation to the page (`el` its elements, `state` its state, `openThread` and
 * `closeStream`); answers `route`, which shows what the address names.
 */
export function navigationOn({ el, state, openThread, closeStream }) {
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
  return route;
}
