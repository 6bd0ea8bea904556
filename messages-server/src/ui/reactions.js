// Reactions on the chat page: the chips under a message (emoji and count, pressed when the
// reader is among those who reacted), a click toggles the reader's own, and a small picker of
// common emoji adds one.

export const COMMON = ["👍", "❤️", "😂", "🎉", "😮", "😢", "👀", "🙏"];

/** Whether `me` is among the users a reaction lists. */
export function holds(reaction, me) {
  return reaction.users.includes(me);
}

/**
 * The chips of `message`: one button per emoji, `toggle(emoji, on)` called with whether the
 * reader adds (true) or takes back (false) their reaction.
 */
export function reactionChips(message, me, toggle) {
  const bar = document.createElement("div");
  bar.className = "reactions";
  bar.setAttribute("role", "group");
  bar.setAttribute("aria-label", "Reactions");
  for (const reaction of message.reactions) {
    const mine = holds(reaction, me);
    const chip = document.createElement("button");
    chip.type = "button";
    chip.className = `chip${mine ? " mine" : ""}`;
    chip.dataset.emoji = reaction.emoji;
    chip.setAttribute("aria-pressed", String(mine));
    const who = reaction.count === 1 ? "1 person" : `${reaction.count} people`;
    chip.setAttribute("aria-label", `${reaction.emoji} ${who}${mine ? ", you included" : ""}`);
    chip.title = mine ? "You reacted: click to take it back" : "Click to react the same";
    const emoji = document.createElement("span");
    emoji.textContent = reaction.emoji;
    const count = document.createElement("span");
    count.className = "count";
    count.textContent = String(reaction.count);
    chip.append(emoji, count);
    chip.addEventListener("click", () => toggle(reaction.emoji, !mine));
    bar.append(chip);
  }
  return bar;
}

/** The "React" control and its picker of common emoji; `add(emoji)` reacts. */
export function reactionPicker(add) {
  const box = document.createElement("span");
  box.className = "picker-box";
  const open = document.createElement("button");
  open.type = "button";
  open.className = "quiet";
  open.textContent = "React";
  open.dataset.action = "react";
  open.setAttribute("aria-label", "Add a reaction");
  open.setAttribute("aria-expanded", "false");
  const picker = document.createElement("span");
  picker.className = "picker";
  picker.hidden = true;
  picker.setAttribute("role", "group");
  picker.setAttribute("aria-label", "Pick a reaction");
  for (const emoji of COMMON) {
    const choice = document.createElement("button");
    choice.type = "button";
    choice.className = "quiet";
    choice.textContent = emoji;
    choice.dataset.emoji = emoji;
    choice.setAttribute("aria-label", `React with ${emoji}`);
    choice.addEventListener("click", () => {
      picker.hidden = true;
      open.setAttribute("aria-expanded", "false");
      add(emoji);
    });
    picker.append(choice);
  }
  open.addEventListener("click", () => {
    picker.hidden = !picker.hidden;
    open.setAttribute("aria-expanded", String(!picker.hidden));
    if (!picker.hidden) picker.querySelector("button")?.focus();
  });
  picker.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      picker.hidden = true;
      open.setAttribute("aria-expanded", "false");
      open.focus();
    }
  });
  box.append(open, picker);
  return box;
}
