// The mention picker of the composer: typing "@" offers the users seen in the thread and the
// room; picking one puts its token in the draft (see `addressing.js`) and remembers whom it
// names, so the message is sent naming ids, never names read back from the text. A token the
// writer deletes from the draft names no one.

import { ROOM_TOKENS, tokenOf } from "./addressing.js";
import { shortUser } from "./render.js";

const MOST_OFFERED = 8;
const ROOM = "room";

export class MentionPicker {
  /**
   * `draft` the textarea, `list` the listbox under it, `seen()` the ids of the users seen in
   * the thread, the most recent first, the reader left out.
   */
  constructor(draft, list, seen) {
    this.draft = draft;
    this.list = list;
    this.seen = seen;
    // token → the user's id, or ROOM
    this.picked = new Map();
    this.options = [];
    this.active = 0;
    // Where the "@" being typed starts in the draft, while the picker is open.
    this.from = -1;
    draft.setAttribute("aria-autocomplete", "list");
    draft.setAttribute("aria-controls", list.id);
    draft.setAttribute("aria-expanded", "false");
    draft.addEventListener("input", () => this.offer());
    draft.addEventListener("blur", () => this.close());
    // A pick by pointer keeps the focus in the draft.
    list.addEventListener("mousedown", (event) => event.preventDefault());
  }

  /** Opens the picker on the "@word" before the caret, or closes it. */
  offer() {
    const before = this.draft.value.slice(0, this.draft.selectionStart);
    const typed = /(^|\s)@([0-9a-z]*)$/i.exec(before);
    if (!typed) return this.close();
    const query = typed[2].toLowerCase();
    const users = this.seen()
      .filter((user) => tokenOf(user).startsWith(`@${query}`))
      .map((user) => ({ id: user, token: tokenOf(user), label: shortUser(user) }));
    const room = ["room", "here"].some((word) => word.startsWith(query))
      ? [{ id: ROOM, token: ROOM_TOKENS[0], label: "everyone in this thread" }]
      : [];
    this.options = [...users.slice(0, MOST_OFFERED), ...room];
    if (!this.options.length) return this.close();
    this.from = before.length - typed[2].length - 1;
    this.active = 0;
    this.draw();
  }

  draw() {
    this.list.replaceChildren();
    this.options.forEach((option, index) => {
      const item = document.createElement("li");
      item.id = `${this.list.id}-${index}`;
      item.setAttribute("role", "option");
      item.setAttribute("aria-selected", String(index === this.active));
      const token = document.createElement("strong");
      token.textContent = option.token;
      item.append(token, ` ${option.label}`);
      item.addEventListener("click", () => this.pick(index));
      this.list.append(item);
    });
    this.list.hidden = false;
    this.draft.setAttribute("aria-expanded", "true");
    this.draft.setAttribute("aria-activedescendant", `${this.list.id}-${this.active}`);
  }

  close() {
    this.options = [];
    this.from = -1;
    this.list.hidden = true;
    this.draft.setAttribute("aria-expanded", "false");
    this.draft.removeAttribute("aria-activedescendant");
  }

  /** Arrows choose, Enter or Tab picks, Escape closes; true when the key was the picker's. */
  handleKey(event) {
    if (!this.options.length) return false;
    const count = this.options.length;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      this.active = (this.active + (event.key === "ArrowDown" ? 1 : count - 1)) % count;
      this.draw();
    } else if ((event.key === "Enter" || event.key === "Tab") && !event.isComposing) {
      this.pick(this.active);
    } else if (event.key === "Escape") {
      this.close();
    } else {
      return false;
    }
    event.preventDefault();
    return true;
  }

  /** Puts the option's token in place of the "@word" typed, and remembers whom it names. */
  pick(index) {
    const option = this.options[index];
    if (!option || this.from < 0) return;
    const value = this.draft.value;
    const caret = this.draft.selectionStart;
    const token = `${option.token} `;
    this.draft.value = value.slice(0, this.from) + token + value.slice(caret);
    const at = this.from + token.length;
    this.draft.setSelectionRange(at, at);
    this.picked.set(option.token, option.id);
    this.close();
    // The text changed: the composer's idempotency key goes with the old text.
    this.draft.dispatchEvent(new Event("input"));
  }

  /** The `mentions` of a message with `text`: the picks whose token it still holds. */
  mentionsIn(text) {
    const present = new Set((text.match(/@[0-9a-z]+/gi) || []).map((t) => t.toLowerCase()));
    const users = [];
    let room = false;
    for (const [token, id] of this.picked) {
      if (!present.has(token)) continue;
      if (id === ROOM) room = true;
      else users.push(id);
    }
    return users.length || room ? { users, room } : undefined;
  }

  /** The draft was sent: its picks go with it. */
  clear() {
    this.picked.clear();
    this.close();
  }
}
