// The "Search" view of the chat page: the messages of the threads this browser has opened whose
// text holds every word of the query (`GET /search`: anywhere in a word, case folded, "quoted
// phrases" as written), newest first, the words found marked; only the reader's own messages
// when asked; choosing one opens its thread at it. Each search asks the server again, so an
// edit or a delete shows in the next one.

import { me, request } from "./api.js";
import { localTime, shortUser } from "./render.js";
import * as threads from "./threads.js";

const LIMIT = 30;

let page = null;
let items = [];
let cursor = null;
let asked = 0;
let last = null;

const $ = (id) => document.getElementById(id);

/**
 * Wires the view to the page: `jump(thread, id)` shows a message of a thread, `opened()` runs
 * when the view opens (another view beside the thread closes).
 */
export function searchOn(pageParts) {
  page = pageParts;
  $("search-open").addEventListener("click", () => (isOpen() ? closeSearch() : openSearch()));
  $("search-close").addEventListener("click", () => closeSearch());
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    run(null);
  });
  $("search-more").addEventListener("click", () => run(cursor));
}

function isOpen() {
  return !$("search").hidden;
}

export function openSearch() {
  page.opened();
  $("search").hidden = false;
  $("search-open").setAttribute("aria-expanded", "true");
  $("search-q").focus();
}

export function closeSearch() {
  if (!isOpen()) return;
  $("search").hidden = true;
  $("search-open").setAttribute("aria-expanded", "false");
}

/** The first page of the query in the form (`after` null), or the page after `after`. */
async function run(after) {
  const known = threads.knownThreads();
  const q = $("search-q").value.trim();
  if (!q) return;
  if (!known.length) {
    $("search-status").textContent = "Open a thread first: search looks in the threads you opened here.";
    return;
  }
  const ask = ++asked;
  $("search-status").textContent = "Searching…";
  const from = $("search-mine").checked ? `&from=${me()}` : "";
  const next = after ? `&cursor=${encodeURIComponent(after)}` : "";
  try {
    const found = await request(
      "GET",
      `search?threads=${known.join(",")}&q=${encodeURIComponent(q)}&limit=${LIMIT}${from}${next}`,
    );
    if (ask !== asked) return;
    items = after ? [...items, ...found.items] : found.items;
    cursor = found.has_more ? found.next_cursor : null;
    last = q;
    $("search-status").textContent = items.length
      ? `${items.length}${cursor ? "+" : ""} found`
      : "No messages found.";
  } catch (error) {
    if (ask !== asked) return;
    $("search-status").textContent = `Could not search: ${error.message}`;
  }
  draw();
}

/** The terms of `q` as the server reads them: words, and phrases between double quotes. */
export function termsOf(q) {
  const terms = [];
  for (const match of q.matchAll(/"([^"]*)"|([^\s"]+)/g)) {
    const term = (match[1] ?? match[2]).trim();
    if (term) terms.push(term);
  }
  return terms;
}

/** `text` as nodes, each place a term is found (case folded, white space as any) marked. */
export function marked(text, terms) {
  const fragment = document.createDocumentFragment();
  const escaped = terms.map((t) =>
    t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/\s+/g, "\\s+"),
  );
  if (!escaped.length) {
    fragment.append(text);
    return fragment;
  }
  const pattern = new RegExp(escaped.join("|"), "giu");
  let at = 0;
  for (const match of text.matchAll(pattern)) {
    if (!match[0]) continue;
    fragment.append(text.slice(at, match.index));
    const mark = document.createElement("mark");
    mark.textContent = match[0];
    fragment.append(mark);
    at = match.index + match[0].length;
  }
  fragment.append(text.slice(at));
  return fragment;
}

function draw() {
  const list = $("search-list");
  list.replaceChildren();
  $("search-more").hidden = !cursor;
  const terms = termsOf(last ?? "");
  for (const message of items) {
    const item = document.createElement("li");
    item.className = "inbox-entry search-entry";
    item.dataset.id = message.id;
    const open = document.createElement("button");
    open.type = "button";
    open.className = "quiet";
    const text = document.createElement("span");
    text.className = "gist found";
    text.append(marked(message.content, terms));
    const meta = document.createElement("span");
    meta.className = "meta";
    const who = message.user_id === me() ? "You" : shortUser(message.user_id);
    meta.textContent = `${who} · ${localTime(message.created_at)} · thread ${message.thread_id.slice(0, 8)}`;
    open.append(text, meta);
    open.addEventListener("click", () => {
      closeSearch();
      page.jump(message.thread_id, message.id);
    });
    item.append(open);
    list.append(item);
  }
}
