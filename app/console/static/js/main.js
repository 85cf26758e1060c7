// The console's shell: sign-in (with an API key, or at the identity provider when one is
// configured), the account bar, and the routes (in the URL's #fragment, so no credential
// ever is).

import { api, ApiError, displayName, session } from "./api.js";
import { alertBox, fill, h, showAlert } from "./dom.js";
import { detailView } from "./detail.js";
import { formView } from "./form.js";
import { listView } from "./list.js";
import { leaveForProvider, leaveProviderSession, returnFromProvider } from "./oidc.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const EXPIRED = "Your sign-in has expired: sign in again.";
let running = null; // the AbortController of the view on screen
let config = { sign_in: "api_key" }; // GET config.json: how people sign in
let expiry = null; // the timer that signs a person out when their token expires

function signInView(message) {
  fill(nav);
  if (config.sign_in === "oidc") return providerSignInView(message);
  const field = h("input", {
    id: "api-key", name: "api-key", type: "password", autocomplete: "off", spellcheck: "false",
    required: true, "aria-describedby": "api-key-help",
  });
  const problem = alertBox();
  const form = h("form", { class: "card narrow", novalidate: true },
    h("h1", { tabindex: -1 }, "Sign in"),
    h("div", { class: "field" },
      h("label", { for: "api-key" }, "API key"),
      field,
      h("p", { id: "api-key-help", class: "help" },
        "A key made with “storehooks accounts create” or POST /api-keys. It stays in this tab only.")),
    problem,
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, "Sign in")));
  showAlert(problem, message);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = field.value.trim();
    if (!key) return showAlert(problem, "Enter an API key.");
    try {
      session.signIn(key, await api("GET", "/me", { key }));
      route();
    } catch (error) {
      const known = error instanceof ApiError && error.status === 401;
      showAlert(problem, known ? "That API key is not valid, or it has been revoked." : error.message);
      field.focus();
    }
  });
  fill(main, form);
  field.focus();
}

// A person signs in at the store's identity provider, and comes back with a token.
function providerSignInView(message) {
  const problem = alertBox();
  const form = h("form", { class: "card narrow", novalidate: true },
    h("h1", { tabindex: -1 }, "Sign in"),
    h("p", { class: "help" }, "With your account at the store’s identity provider. You come back here once signed in."),
    problem,
    h("div", { class: "buttons" },
      h("button", { type: "submit", class: "primary" }, `Sign in with ${new URL(config.issuer).host}`)));
  showAlert(problem, message);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    leaveForProvider(config).catch((error) => showAlert(problem, error.message));
  });
  fill(main, form);
  form.querySelector("h1").focus();
}

// Back from the provider: the token, then who it is (GET /me).
async function signInPerson() {
  const tokens = await returnFromProvider(config);
  if (!tokens) return;
  try {
    session.signInPerson(tokens, await api("GET", "/me", { key: tokens.accessToken }));
  } catch (error) {
    const known = error instanceof ApiError && error.status === 401;
    throw new Error(known ? "The identity provider signed you in, but this service does not accept its token." : error.message);
  }
}

function watchExpiry() {
  clearTimeout(expiry);
  if (session.person) expiry = setTimeout(() => signOut(EXPIRED), Math.max(0, session.expiresAt - Date.now()));
}

function accountBar() {
  fill(nav,
    h("span", { class: "crumbs" }, "Accounts › ", h("a", { href: "#/webhooks" }, "Web Hooks")),
    h("span", { class: "account", title: `account ${session.me.account_id}` },
      h("span", { class: "who" }, displayName(session.me)), " · ", session.me.account_id),
    h("button", { type: "button", class: "link", onclick: signOut }, "Sign out"));
}

function signOut(message) {
  running?.abort();
  clearTimeout(expiry);
  const { person } = session;
  session.signOut();
  history.replaceState(null, "", location.pathname);
  const chosen = typeof message === "string";
  if (person && !chosen && config.end_session_endpoint) return leaveProviderSession(config);
  signInView(chosen ? message : undefined);
}

function viewFor(hash) {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] !== "webhooks" || parts.length === 1) return listView;
  if (parts[1] === "new" && parts.length === 2) return (target, signal) => formView(target, signal, null);
  if (parts[2] === "edit") return (target, signal) => formView(target, signal, parts[1]);
  return (target, signal) => detailView(target, signal, parts[1]);
}

async function route() {
  running?.abort();
  const controller = new AbortController();
  running = controller;
  if (!session.key) return signInView();
  if (session.expiresAt <= Date.now()) return signOut(EXPIRED);
  if (!session.me) {
    const saved = session.person ? "sign-in" : "key";
    try {
      session.me = await api("GET", "/me");
    } catch {
      return signOut(`Sign in again: the saved ${saved} is no longer valid.`);
    }
  }
  watchExpiry();
  accountBar();
  fill(main, h("p", { class: "loading" }, "Loading…"));
  try {
    await viewFor(location.hash)(main, controller.signal);
    if (!controller.signal.aborted) (main.querySelector("h1") ?? main).focus();
  } catch (error) {
    if (controller.signal.aborted) return;
    const box = alertBox();
    showAlert(box, error.status === 404 ? "This web hook does not exist (or no longer does)." : error.message);
    fill(main, h("h1", { tabindex: -1 }, "Web Hooks"), box, h("p", {}, h("a", { href: "#/webhooks" }, "Back to the list")));
  }
}

async function start() {
  try {
    const answer = await fetch("config.json", { cache: "no-store" });
    if (!answer.ok) throw new Error(`The console's settings could not be read (${answer.status}).`);
    config = await answer.json();
    if (config.sign_in === "oidc") await signInPerson();
  } catch (error) {
    return signInView(error.message);
  }
  route();
}

window.addEventListener("hashchange", route);
window.addEventListener("storehooks:unauthorized", () => signOut(session.person ? EXPIRED : "Your API key stopped working: sign in again."));
start();
