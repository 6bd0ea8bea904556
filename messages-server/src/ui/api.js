// The page's side of the messages API: who the writer is (a user id kept in the browser, or a
// bearer token), and requests that turn the service's errors into sentences for the reader.

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The UUID typed into `input`, lower-cased, or null after telling the reader what a valid one
 * looks like (`example`).
 */
export function typedUuid(input, what, example) {
  const value = input.value.trim();
  if (!UUID.test(value)) {
    input.setCustomValidity(`A ${what} is a UUID, like ${example}`);
    input.reportValidity();
    return null;
  }
  input.setCustomValidity("");
  return value.toLowerCase();
}

export class ApiError extends Error {
  constructor(message, status, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// --- identity -------------------------------------------------------------------------------

export function randomUuid() {
  // crypto.randomUUID needs a secure context; getRandomValues works over plain HTTP too.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function stored(key) {
  try {
    return localStorage.getItem(key) || "";
  } catch {
    return "";
  }
}

export function store(key, value) {
  try {
    if (value) localStorage.setItem(key, value);
    else localStorage.removeItem(key);
  } catch {
    // Private mode without storage: the value lasts as long as the page.
  }
}

export const identity = {
  userId: stored("messages.user"),
  token: stored("messages.token"),
};
if (!UUID.test(identity.userId)) {
  identity.userId = randomUuid();
  store("messages.user", identity.userId);
}

/** The `sub` of the token, or "" when it is not a readable JWT. */
export function tokenSubject(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return String(JSON.parse(atob(payload)).sub || "");
  } catch {
    return "";
  }
}

/** Who the server will take the writer to be. */
export function me() {
  return identity.token ? tokenSubject(identity.token) : identity.userId;
}


let onUnauthorized = () => {};

/** What the page does when the service asks for a sign-in (a 401). */
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

// --- requests -------------------------------------------------------------------------------

export function authHeaders(write) {
  if (identity.token) return { Authorization: `Bearer ${identity.token}` };
  return write ? { "X-User-Id": identity.userId } : {};
}

export function explain(status, body, fallback, retryAfter = null) {
  const message = body?.error?.message || fallback;
  if (status === 503) return `The service is unavailable right now (${message}). Try again in a moment.`;
  if (status === 401) return `Sign-in needed: ${message}. Paste a bearer token under Change.`;
  if (status === 429) {
    const seconds = Number.parseInt(retryAfter ?? "", 10);
    return Number.isFinite(seconds)
      ? `You are sending too fast: try again in ${seconds} s.`
      : "Too many requests: wait a moment and try again.";
  }
  return message;
}

export async function request(method, path, body, extraHeaders = {}) {
  const headers = { ...authHeaders(method !== "GET"), ...extraHeaders };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError("The service cannot be reached. Check the connection and try again.", 0);
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    if (response.status === 401) onUnauthorized();
    throw new ApiError(
      explain(
        response.status,
        data,
        response.statusText || `HTTP ${response.status}`,
        response.headers.get("Retry-After"),
      ),
      response.status,
      data?.error?.code,
    );
  }
  return data;
}

