// How one message looks on the chat page, whoever's it is; the page decides what its controls do.

import { me } from "./api.js";
import { addressLabel, contentNodes } from "./addressing.js";

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function localTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : timeFormat.format(date);
}

export function shortUser(id) {
  return `user ${String(id).slice(0, 8)}`;
}

/**
 * Draws `message` into `node`: author, time, kind, "edited" (which opens the earlier
 * versions), a mark when it names the reader or addresses the room, the quote of the message it replies to, text, paths, reactions and controls.
 * `parts` makes what the page wires up: `quote(message)`, `reactions(message)`,
 * `history(message)` (on "edited"), `replies(message)` (under a root with replies) and
 * `controls(message, mine)`.
 */
export function renderMessage(node, message, mine, parts) {
  const label = addressLabel(message, me());
  node.className = `message${mine ? " mine" : ""}${label ? " mentions-me" : ""}`;
  node.dataset.id = message.id;
  node.dataset.seq = String(message.seq);
  node.dataset.user = message.user_id;
  node.replaceChildren();

  const meta = document.createElement("div");
  meta.className = "meta";
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = mine ? "You" : shortUser(message.user_id);
  author.title = message.user_id;
  const time = document.createElement("time");
  time.dateTime = message.created_at;
  time.textContent = localTime(message.created_at);
  time.title = message.created_at;
  meta.append(author, time);
  if (message.type !== "text") {
    const kind = document.createElement("span");
    kind.textContent = message.type;
    meta.append(kind);
  }
  if (message.updated_at !== message.created_at) {
    const edited = button("edited", "history", "Edited: show earlier versions");
    edited.classList.add("edited");
    edited.title = `edited ${localTime(message.updated_at)}: show earlier versions`;
    edited.addEventListener("click", () => parts.history(message, edited));
    meta.append(edited);
  }
  if (label) {
    const mark = document.createElement("span");
    mark.className = "addressed";
    mark.textContent = label;
    meta.append(mark);
  }
  node.append(meta);
  if (message.reply_to) node.append(parts.quote(message));

  if (message.content) {
    const content = document.createElement("p");
    content.className = "content";
    content.append(contentNodes(message, me()));
    node.append(content);
  }
  if (message.paths?.length) {
    const paths = document.createElement("ul");
    paths.className = "paths";
    paths.setAttribute("aria-label", message.type === "audio" ? "Audio files" : "Attached files");
    for (const path of message.paths) {
      const item = document.createElement("li");
      item.textContent = path;
      paths.append(item);
    }
    node.append(paths);
  }
  if (message.reactions?.length) node.append(parts.reactions(message));
  if (message.replies && parts.replies) node.append(parts.replies(message));
  node.append(parts.controls(message, mine));
  const error = document.createElement("p");
  error.className = "inline-error";
  error.setAttribute("role", "alert");
  node.append(error);
}

export function button(label, action, accessibleName) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "quiet";
  b.textContent = label;
  b.dataset.action = action;
  if (accessibleName) b.setAttribute("aria-label", accessibleName);
  return b;
}

