// Who the reader writes as: the panel that shows it and lets the reader change it (a user id,
// or a bearer token for servers and gateways that verify one).

import { identity, store, tokenSubject, typedUuid } from "./api.js";

/**
 * Wires the identity panel's elements in `el`. `auth()` names the server's mode ("trusted" or
 * "jwt"); `changed()` runs after the reader changes who they are. Returns `show`, which draws
 * the panel, and `open(focusToken)`.
 */
export function identityPanel(el, auth, changed) {
  function showIdentity() {
    if (identity.token) {
      const sub = tokenSubject(identity.token);
      el.identityText.textContent = sub
        ? `Signed in with a token as ${sub}`
        : "A token is set, but it does not name a user (no sub claim)";
    } else {
      el.identityText.textContent = `You are user ${identity.userId}`;
    }
    el.userInput.value = identity.userId;
    el.tokenInput.value = identity.token;
    el.modeNote.textContent =
      auth() === "jwt"
        ? "This server signs writers in with bearer tokens: paste yours under Change to write."
        : identity.token
          ? "Requests carry your token, as the gateway requires."
          : "Trusted-header mode, for development or behind a gateway that sets the user from a " +
            "verified identity: the server believes the user id this page sends.";
  }

  function openIdentity(focusToken) {
    el.identityForm.hidden = false;
    el.identityChange.setAttribute("aria-expanded", "true");
    (focusToken ? el.tokenInput : el.userInput).focus();
  }

  el.identityChange.addEventListener("click", () => {
    if (el.identityForm.hidden) openIdentity(auth() === "jwt");
    else {
      el.identityForm.hidden = true;
      el.identityChange.setAttribute("aria-expanded", "false");
    }
  });

  el.identityForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const user = typedUuid(el.userInput, "user id", "0193a1a0-0000-7000-8000-0000000000aa");
    if (!user) return;
    identity.userId = user;
    identity.token = el.tokenInput.value.trim();
    store("messages.user", identity.userId);
    store("messages.token", identity.token);
    el.identityForm.hidden = true;
    el.identityChange.setAttribute("aria-expanded", "false");
    showIdentity();
    changed();
  });

  return { show: showIdentity, open: openIdentity };
}
