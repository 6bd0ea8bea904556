// Editing and deleting the reader's own messages in place: the edit form that replaces a
// message's text, and the question before a delete.

import { request } from "./api.js";
import { button } from "./render.js";

/**
 * What the editing needs of the page: `thread()`, the thread open now; `shown`, id →
 * { message, node }; `renderInto(node, message)`; `remove(id)` after a delete.
 */
let page = null;

export function editingOn(pageParts) {
  page = pageParts;
}

export function inlineError(node, text) {
  const error = node.querySelector(".inline-error");
  if (error) error.textContent = text;
}

export function startEdit(id) {
  const current = page.shown.get(id);
  if (!current || current.node.querySelector(".edit-form")) return;
  const { node, message } = current;
  const form = document.createElement("form");
  form.className = "edit-form";
  const label = document.createElement("label");
  label.className = "visually-hidden";
  label.textContent = "Edit the message";
  const area = document.createElement("textarea");
  area.value = message.content;
  area.rows = 2;
  area.id = `edit-${id}`;
  label.htmlFor = area.id;
  const save = document.createElement("button");
  save.type = "submit";
  save.textContent = "Save";
  const cancel = button("Cancel", "cancel");
  cancel.addEventListener("click", () => page.renderInto(node, page.shown.get(id)?.message || message));
  const row = document.createElement("div");
  row.className = "actions";
  row.append(save, cancel);
  form.append(label, area, row);
  node.querySelector(".content")?.remove();
  node.querySelector(".actions")?.replaceWith(form);
  area.focus();
  area.addEventListener("keydown", (event) => {
    if (event.key === "Escape") cancel.click();
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    save.disabled = true;
    try {
      const edited = await request("PUT", `threads/${page.thread()}/messages/${id}`, {
        content: area.value,
      });
      const shown = page.shown.get(id);
      if (shown) {
        shown.message = edited.rev >= shown.message.rev ? edited : shown.message;
        page.renderInto(shown.node, shown.message);
      }
    } catch (error) {
      save.disabled = false;
      inlineError(node, `Not saved: ${error.message}`);
    }
  });
}

export function confirmDelete(id, box) {
  const question = document.createElement("span");
  question.textContent = "Delete this message?";
  const yes = button("Delete", "confirm-delete", "Yes, delete this message");
  const no = button("Keep", "keep");
  box.replaceChildren(question, yes, no);
  yes.focus();
  no.addEventListener("click", () => {
    const shown = page.shown.get(id);
    if (shown) page.renderInto(shown.node, shown.message);
  });
  yes.addEventListener("click", async () => {
    yes.disabled = true;
    try {
      await request("DELETE", `threads/${page.thread()}/messages/${id}`);
      page.remove(id);
    } catch (error) {
      yes.disabled = false;
      const shown = page.shown.get(id);
      if (shown) inlineError(shown.node, `Not deleted: ${error.message}`);
    }
  });
}
