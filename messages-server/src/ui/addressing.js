// Whom a message addresses, on the chat page. A message carries `mentions: {users, room}`, the
// ids its author picked; the text only shows them. A mention of a user leaves "@" and the first
// eight characters of the id in the draft (the name the page knows the user by, as "user
// 0193a1a0"), a mention of everyone "@room" (or "@here"). The page never takes a mention from
// the text alone: a token counts only when the message names that user.

export const ROOM_TOKENS = ["@room", "@here"];

/** The token a mention of `user` leaves in the text. */
export function tokenOf(user) {
  return `@${String(user).slice(0, 8).toLowerCase()}`;
}

/** Whether `message`, by someone other than `user`, names `user` or addresses the room. */
export function addresses(message, user) {
  const mentions = message.mentions;
  if (!mentions || message.user_id === user) return false;
  return mentions.room || mentions.users.includes(user);
}

/**
 * The text of `message` as nodes, each token of a mention the message carries marked (the
 * reader's, `me`, marked as theirs); a token the message does not carry stays plain text.
 */
export function contentNodes(message, me) {
  const text = message.content;
  const fragment = document.createDocumentFragment();
  const mentions = message.mentions;
  if (!mentions) {
    fragment.append(text);
    return fragment;
  }
  const known = new Map();
  for (const user of mentions.users) {
    known.set(tokenOf(user), { title: user === me ? "You" : `user ${user}`, mine: user === me });
  }
  if (mentions.room) {
    for (const token of ROOM_TOKENS) known.set(token, { title: "Everyone in this thread", mine: true });
  }
  let at = 0;
  for (const match of text.matchAll(/@[0-9a-z]+/gi)) {
    const mention = known.get(match[0].toLowerCase());
    if (!mention) continue;
    fragment.append(text.slice(at, match.index));
    const token = document.createElement("span");
    token.className = mention.mine ? "mention me" : "mention";
    token.textContent = match[0];
    token.title = mention.title;
    fragment.append(token);
    at = match.index + match[0].length;
  }
  fragment.append(text.slice(at));
  return fragment;
}

/** "mentions you" or "to everyone", for a message that addresses the reader; else "". */
export function addressLabel(message, me) {
  if (!addresses(message, me)) return "";
  return message.mentions.users.includes(me) ? "mentions you" : "to everyone";
}
