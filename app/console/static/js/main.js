// The console's shell: sign-in, the account bar, and the routes (in the URL's #fragment,
// so the API key never is).

import { api, ApiError, displayName, session } from "./api.js";
import { alertBox, fill, h, showAlert } from "./dom.js";
import { detailView } from "./detail.js";
import { formView } from "./form.js";
import { listView } from "./list.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
let running = null; // the AbortController of the view on screen

function signInView(message) {
  fill(nav);
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

function accountBar() {
  fill(nav,
    h("span", { class: "crumbs" }, "Accounts › ", h("a", { href: "#/webhooks" }, "Web Hooks")),
    h("span", { class: "account", title: `account ${session.me.account_id}` },
      h("span", { class: "who" }, displayName(session.me)), " · ", session.me.account_id),
    h("button", { type: "button", class: "link", onclick: signOut }, "Sign out"));
}

function signOut(message) {
  running?.abort();
  session.signOut();
  history.replaceState(null, "", location.pathname);
  signInView(typeof message === "string" ? message : undefined);
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
  if (!session.me) {
    try {
      session.me = await api("GET", "/me");
    } catch {
      return signOut("Sign in again: the saved key is no longer valid.");
    }
  }
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

window.addEventListener("hashchange", route);
window.addEventListener("storehooks:unauthorized", () => signOut("Your API key stopped working: sign in again."));
route();
