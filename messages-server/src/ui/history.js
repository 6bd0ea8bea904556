// An edited message's earlier versions, in a dialog: every version oldest first, the current
// one last, as `GET .../edits` answers them.

import { request } from "./api.js";
import { localTime } from "./render.js";

let dialog = null;

function ensureDialog() {
  if (dialog) return dialog;
  dialog = document.createElement("dialog");
  dialog.id = "history-dialog";
  dialog.setAttribute("aria-labelledby", "history-title");
  const title = document.createElement("h2");
  title.id = "history-title";
  title.textContent = "Versions, oldest first";
  const list = document.createElement("ol");
  list.className = "versions";
  const close = document.createElement("button");
  close.type = "button";
  close.textContent = "Close";
  close.addEventListener("click", () => dialog.close());
  dialog.append(title, list, close);
  document.body.append(dialog);
  return dialog;
}

/** Opens the versions of `message` of `thread`; `opener` gets the focus back. */
export async function showHistory(thread, message, opener) {
  const box = ensureDialog();
  const list = box.querySelector(".versions");
  list.replaceChildren();
  const note = document.createElement("li");
  note.textContent = "Loading…";
  list.append(note);
  box.onclose = () => opener?.focus();
  box.showModal();
  try {
    const { versions } = await request("GET", `threads/${thread}/messages/${message.id}/edits`);
    list.replaceChildren();
    versions.forEach((version, i) => {
      const item = document.createElement("li");
      item.className = "version";
      const when = document.createElement("time");
      when.dateTime = version.edited_at;
      when.textContent = `${localTime(version.edited_at)}${i === versions.length - 1 ? " · current" : ""}`;
      const text = document.createElement("p");
      text.className = "content";
      text.textContent = version.content;
      item.append(when, text);
      if (version.paths.length) {
        const paths = document.createElement("p");
        paths.className = "paths";
        paths.textContent = version.paths.join(", ");
        item.append(paths);
      }
      list.append(item);
    });
  } catch (error) {
    note.textContent = `Could not load the versions: ${error.message}`;
  }
}
