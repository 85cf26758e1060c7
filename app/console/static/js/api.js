// The public JSON API, called with the signed-in API key or person's access token (kept
// in sessionStorage only: this tab, gone when it closes).

const API_KEY = "storehooks.apiKey";
const ACCESS_TOKEN = "storehooks.accessToken";
const EXPIRES_AT = "storehooks.expiresAt"; // the access token's, in ms since the epoch

export const session = {
  me: null,
  // The bearer credential: an API key or a person's access token.
  get key() {
    return sessionStorage.getItem(API_KEY) ?? sessionStorage.getItem(ACCESS_TOKEN);
  },
  get person() {
    return sessionStorage.getItem(ACCESS_TOKEN) !== null;
  },
  get expiresAt() {
    return Number(sessionStorage.getItem(EXPIRES_AT) ?? Infinity);
  },
  signIn(key, me) {
    sessionStorage.setItem(API_KEY, key);
    session.me = me;
  },
  signInPerson({ accessToken, expiresAt }, me) {
    sessionStorage.setItem(ACCESS_TOKEN, accessToken);
    sessionStorage.setItem(EXPIRES_AT, String(expiresAt));
    session.me = me;
  },
  signOut() {
    sessionStorage.clear();
    session.me = null;
  },
};

// The scope each API operation the console calls behind a control needs, exactly as its
// route requires it (app/*/router.py); tests/test_console_files.py holds this table to the
// routes. A control whose call the principal may not make is left out of the page. This is
// convenience, not security: the API checks every call.
const NEEDS = {
  createWebhook: "webhooks:create",
  updateWebhook: "webhooks:update",
  deleteWebhook: "webhooks:delete",
  getWebhookSecret: "webhooks:update",
  rotateWebhookSecret: "webhooks:update",
  testWebhook: "webhooks:test",
  listWebhookActions: "actions:read",
  createAction: "actions:write",
  deleteAction: "actions:write",
  listDeliveries: "deliveries:read",
  getDelivery: "deliveries:read",
  retryDelivery: "deliveries:retry",
  listAuditEvents: "audit:read",
};

// May the signed-in principal call `operation` (an operationId of the API)?
export function may(operation) {
  if (!(operation in NEEDS)) throw new Error(`No scope is known for ${operation}.`);
  return session.me?.scopes.includes(NEEDS[operation]) ?? false;
}

// Who is signed in, in words: a person's or a key's name, else the key's id or subject.
export function displayName(me) {
  return me.name || me.key_id || me.subject;
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `The API answered ${status}.`);
    this.status = status;
    this.problem = problem;
  }

  // field name -> message, from the `errors` of a 422 problem.
  fieldErrors() {
    const found = new Map();
    for (const error of this.problem.errors ?? []) {
      const field = [...error.loc].reverse().find((part) => typeof part === "string" && part !== "body");
      if (field && !found.has(field)) found.set(field, error.msg);
    }
    return found;
  }
}

export async function api(method, path, { body, key = session.key, signal } = {}) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${key}` };
  const init = { method, headers, signal, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    if (response.status === 401 && key === session.key) {
      window.dispatchEvent(new CustomEvent("storehooks:unauthorized"));
    }
    throw new ApiError(response.status, data);
  }
  return data;
}

export function query(path, parameters) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(parameters)) {
    if (value !== null && value !== undefined && value !== "") search.set(name, value);
  }
  const text = search.toString();
  return text ? `${path}?${text}` : path;
}
