// The public JSON API, called with the signed-in key (kept in sessionStorage only).

const STORAGE_KEY = "storehooks.apiKey";

export const session = {
  me: null,
  get key() {
    return sessionStorage.getItem(STORAGE_KEY);
  },
  signIn(key, me) {
    sessionStorage.setItem(STORAGE_KEY, key);
    session.me = me;
  },
  signOut() {
    sessionStorage.removeItem(STORAGE_KEY);
    session.me = null;
  },
};

// May the signed-in key use `scope`? Buttons it may not use are not shown.
export function can(scope) {
  return session.me?.scopes.includes(scope) ?? false;
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
