// A web hook's detail page: its settings, Test, the signing secret (or an Ed25519 hook's
// public key), its actions, its recent changes and its deliveries with their attempts.

import { api, may, query } from "./api.js";
import { changesSection } from "./changes.js";
import {
  activeBadge, alertBox, confirmDialog, deliveryBadge, EVENT_LABELS, fill, formatTime, h,
  PAYLOAD_LABELS, showAlert, sleep, statusLine,
} from "./dom.js";
import { showErrors } from "./form.js";

const REFRESH_MS = 2000;
const SCHEME_LABELS = {
  "hmac-sha256": "HMAC-SHA256 (v1), verified with the secret",
  ed25519: "Ed25519 (v1a), verified with the public key",
};
const TEST_POLL_MS = 500;
const TEST_WAIT_MS = 120_000;

export async function detailView(main, signal, webhookId) {
  const path = `/webhooks/${encodeURIComponent(webhookId)}`;
  let webhook = await api("GET", path, { signal });
  if (signal.aborted) return;

  const summary = h("section", { "aria-labelledby": "webhook-name" });
  const testStatus = statusLine();
  const deliveries = may("listDeliveries") ? deliveriesSection(webhookId, signal) : null;

  async function reload() {
    webhook = await api("GET", path, { signal });
    renderSummary();
  }

  function renderSummary() {
    const test = may("testWebhook") && h("button", {
      type: "button", class: "primary", disabled: !webhook.active,
      "aria-describedby": webhook.active ? null : "test-help",
      onclick: () => runTest(webhook, testStatus, signal, async () => {
        await reload();
        await deliveries?.refresh();
      }),
    }, "Test");
    fill(summary,
      h("p", { class: "back" }, h("a", { href: "#/webhooks" }, "‹ Web Hooks")),
      h("div", { class: "page-head" },
        h("h1", { id: "webhook-name", tabindex: -1 }, webhook.name),
        activeBadge(webhook),
        h("span", { class: "spacer" }),
        may("updateWebhook") && h("a", { class: "button", href: `#${path}/edit` }, "Edit"),
        test),
      !webhook.active && may("testWebhook") &&
        h("p", { id: "test-help", class: "help" }, "Turn the web hook on (Edit, Active) to test it."),
      testStatus,
      h("dl", { class: "facts" },
        fact("URI End Point", h("span", { class: "url" }, webhook.url)),
        fact("HTTP Method to use", webhook.http_method),
        fact("Content Payload Type", PAYLOAD_LABELS[webhook.payload_type] ?? webhook.payload_type),
        fact("Success", webhook.success_statuses === "2xx" ? "any 2xx answer" : "an answer of 200"),
        fact("Order", webhook.ordered ? "in event order per ordering key" : "as soon as possible"),
        fact("At most in flight", String(webhook.max_in_flight)),
        fact("Signatures", SCHEME_LABELS[webhook.signature_scheme] ?? webhook.signature_scheme),
        fact("Created", formatTime(webhook.created_at)),
        fact("Updated", formatTime(webhook.updated_at)),
        fact("Id", h("code", {}, webhook.id))));
  }

  renderSummary();
  fill(main,
    summary,
    webhook.signature_scheme === "ed25519"
      ? publicKeySection(path, webhook.public_key)
      : may("getWebhookSecret") && secretSection(path),
    may("listWebhookActions") && await actionsSection(path, signal),
    may("listAuditEvents") && await changesSection(webhookId, signal),
    deliveries?.section);
  await deliveries?.refresh();
  deliveries?.keepFresh();
}

function fact(term, value) {
  return [h("dt", {}, term), h("dd", {}, value)];
}

async function runTest(webhook, line, signal, done) {
  line.textContent = "Test: sending…";
  try {
    const { delivery_id: id } = await api("POST", `/webhooks/${encodeURIComponent(webhook.id)}/test`, { signal });
    if (!may("getDelivery")) {
      line.textContent = "Test sent. This key may not read deliveries, so its outcome is not shown here.";
      return;
    }
    line.textContent = "Test: pending…";
    const deadline = Date.now() + TEST_WAIT_MS;
    let delivery;
    do {
      await sleep(TEST_POLL_MS, signal);
      delivery = await api("GET", `/deliveries/${encodeURIComponent(id)}`, { signal });
    } while (delivery.status === "pending" && Date.now() < deadline);
    line.textContent = delivery.status === "succeeded"
      ? "Test succeeded: the receiver answered 200."
      : delivery.status === "pending"
        ? "Test: still pending. Its outcome will show under Deliveries."
        : `Test failed: ${outcome(delivery)}. The web hook is now inactive.`;
    await done();
  } catch (error) {
    if (!signal.aborted) line.textContent = `Test: ${error.message}`;
  }
}

function outcome(delivery) {
  if (delivery.last_status_code) return `the receiver answered ${delivery.last_status_code}`;
  return delivery.last_error ?? delivery.status;
}

function secretSection(path) {
  const shown = h("code", { id: "secret", class: "secret" }, "whsec_••••••••••••");
  const line = statusLine();
  let secret = null;
  const reveal = h("button", { type: "button", "aria-controls": "secret", "aria-pressed": "false" }, "Reveal");

  async function load() {
    secret ??= (await api("GET", `${path}/secret`)).secret;
    return secret;
  }
  function show(value) {
    secret = value;
    shown.textContent = value;
    reveal.textContent = "Hide";
    reveal.setAttribute("aria-pressed", "true");
  }
  reveal.addEventListener("click", async () => {
    line.textContent = "";
    try {
      if (reveal.getAttribute("aria-pressed") === "true") {
        shown.textContent = "whsec_••••••••••••";
        reveal.textContent = "Reveal";
        reveal.setAttribute("aria-pressed", "false");
      } else {
        show(await load());
      }
    } catch (error) {
      line.textContent = error.message;
    }
  });
  const copy = h("button", { type: "button" }, "Copy");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(await load());
      line.textContent = "Secret copied.";
    } catch (error) {
      line.textContent = `Could not copy (${error.message}): reveal the secret and copy it by hand.`;
    }
  });
  const rotate = may("rotateWebhookSecret") && h("button", { type: "button", class: "danger" }, "Rotate");
  if (rotate) rotate.addEventListener("click", async () => {
    const confirmed = await confirmDialog({
      title: "Rotate the signing secret?",
      body: "Notifications are signed with the new secret at once, and with the old one beside it for 24 hours, so your receiver can switch over.",
      confirm: "Rotate",
    });
    if (!confirmed) return;
    try {
      show((await api("POST", `${path}/secret/rotate`)).secret);
      line.textContent = "Secret rotated: the old one keeps signing beside it for 24 hours.";
    } catch (error) {
      line.textContent = error.message;
    }
  });
  return h("section", { "aria-labelledby": "secret-heading" },
    h("h2", { id: "secret-heading" }, "Signing secret"),
    h("p", { class: "help" }, "Receivers verify the webhook-signature header with it (Standard Webhooks)."),
    h("div", { class: "secret-row" }, shown, h("span", { class: "buttons" }, reveal, copy, rotate)),
    line);
}

// An Ed25519 hook's public key: no secret, so shown to every reader; Rotate (a new key
// pair) for keys that may update the hook. The private key is never sent to the console.
function publicKeySection(path, publicKey) {
  const shown = h("code", { id: "public-key", class: "secret" }, publicKey);
  const line = statusLine();
  const copy = h("button", { type: "button" }, "Copy");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(shown.textContent);
      line.textContent = "Public key copied.";
    } catch (error) {
      line.textContent = `Could not copy (${error.message}): select the key and copy it by hand.`;
    }
  });
  const rotate = may("rotateWebhookSecret") && h("button", { type: "button", class: "danger" }, "Rotate");
  if (rotate) rotate.addEventListener("click", async () => {
    const confirmed = await confirmDialog({
      title: "Rotate the key pair?",
      body: "Notifications are signed with a new private key at once, and with the old one beside it for 24 hours: give your receivers the new public key.",
      confirm: "Rotate",
    });
    if (!confirmed) return;
    try {
      shown.textContent = (await api("POST", `${path}/secret/rotate`)).public_key;
      line.textContent = "Key pair rotated: the old private key keeps signing beside the new one for 24 hours.";
    } catch (error) {
      line.textContent = error.message;
    }
  });
  return h("section", { "aria-labelledby": "public-key-heading" },
    h("h2", { id: "public-key-heading" }, "Public key"),
    h("p", { class: "help" }, "Receivers verify the webhook-signature header with it (Standard Webhooks v1a, Ed25519). It is no secret: the private key never leaves storehooks."),
    h("div", { class: "secret-row" }, shown, h("span", { class: "buttons" }, copy, rotate)),
    line);
}

async function actionsSection(path, signal) {
  const rows = h("tbody");
  const problem = alertBox();
  const removable = may("deleteAction");

  async function refresh() {
    const page = await api("GET", query(`${path}/actions`, { limit: 200 }), { signal });
    fill(rows, ...page.data.map((action) => h("tr", {},
      h("td", { "data-label": "Event" }, EVENT_LABELS[action.event_type] ?? action.event_type),
      h("td", { "data-label": "App" }, action.app_id ?? "any app"),
      h("td", { "data-label": "SKU" }, action.sku_id ?? "any SKU"),
      h("td", { class: "tools" }, removable && h("button", {
        type: "button", class: "icon danger", "aria-label": "Remove action", title: "Remove action",
        onclick: async () => {
          try {
            await api("DELETE", `${path}/actions/${encodeURIComponent(action.id)}`);
            await refresh();
          } catch (error) {
            showAlert(problem, error.message);
          }
        },
      }, "✕")))));
    if (!page.data.length) rows.append(h("tr", {}, h("td", { colspan: 4, class: "empty" }, "No actions: this web hook receives no events yet.")));
  }
  await refresh();
  return h("section", { "aria-labelledby": "actions-heading" },
    h("h2", { id: "actions-heading" }, "Actions"),
    h("p", { class: "help" }, "Which events are sent to this web hook: by app, by SKU, or both."),
    h("table", {},
      h("thead", {}, h("tr", {}, ["Event", "App", "SKU"].map((label) => h("th", { scope: "col" }, label)),
        h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Remove")))),
      rows),
    problem,
    may("createAction") && actionForm(path, refresh));
}

function actionForm(path, refresh) {
  const inputs = {
    event_type: h("select", { id: "action-event_type" },
      Object.entries(EVENT_LABELS).map(([value, label]) => h("option", { value }, label))),
    app_id: h("input", { id: "action-app_id", type: "text", autocomplete: "off" }),
    sku_id: h("input", { id: "action-sku_id", type: "text", autocomplete: "off" }),
  };
  const errors = {};
  const field = (name, label) => {
    errors[name] = h("p", { id: `action-error-${name}`, class: "field-error", hidden: true });
    inputs[name].setAttribute("aria-describedby", `action-error-${name}`);
    return h("div", { class: "field" }, h("label", { for: inputs[name].id }, label), inputs[name], errors[name]);
  };
  const problem = alertBox();
  const form = h("form", { class: "inline", novalidate: true, "aria-labelledby": "add-action-heading" },
    h("h3", { id: "add-action-heading" }, "Add an action"),
    h("div", { class: "row" }, field("event_type", "Event"), field("app_id", "App ID"), field("sku_id", "SKU ID")),
    problem,
    h("div", { class: "buttons" }, h("button", { type: "submit" }, "Add action")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const [name, input] of Object.entries(inputs)) {
      input.removeAttribute("aria-invalid");
      errors[name].hidden = true;
    }
    showAlert(problem, "");
    const body = {
      event_type: inputs.event_type.value,
      app_id: inputs.app_id.value.trim() || null,
      sku_id: inputs.sku_id.value.trim() || null,
    };
    try {
      await api("POST", `${path}/actions`, { body });
      inputs.app_id.value = "";
      inputs.sku_id.value = "";
      await refresh();
    } catch (error) {
      showErrors(error, inputs, errors, problem);
    }
  });
  return form;
}

function deliveriesSection(webhookId, signal) {
  const rows = h("tbody");
  const problem = alertBox();
  const expanded = new Set();
  const attemptsCache = new Map(); // delivery id -> {version, element}

  let drawn = null; // what the table shows, so an unchanged refresh leaves it (and the focus) alone

  async function refresh() {
    const page = await api("GET", query("/deliveries", { webhook_id: webhookId, limit: 50 }), { signal });
    const drawing = JSON.stringify([page.data, [...expanded]]);
    if (drawing === drawn) return;
    drawn = drawing;
    const shown = page.data;
    const rendered = [];
    for (const delivery of shown) {
      rendered.push(deliveryRow(delivery));
      if (expanded.has(delivery.id)) rendered.push(await attemptsRow(delivery));
    }
    if (!shown.length) rendered.push(h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No deliveries yet.")));
    if (signal.aborted) return;
    const focused = rows.contains(document.activeElement) ? document.activeElement.dataset.focusKey : null;
    fill(rows, ...rendered);
    if (focused) rows.querySelector(`[data-focus-key="${focused}"]`)?.focus();
  }

  function deliveryRow(delivery) {
    const open = expanded.has(delivery.id);
    return h("tr", { "data-delivery-id": delivery.id },
      h("td", { "data-label": "Created" }, formatTime(delivery.created_at)),
      h("td", { "data-label": "Kind" }, delivery.kind === "test" ? "test" : h("code", {}, delivery.event_id)),
      h("td", { "data-label": "Status" }, deliveryBadge(delivery.status)),
      h("td", { "data-label": "Attempts" }, String(delivery.attempt_count)),
      h("td", { "data-label": "Last answer" }, delivery.last_status_code ?? delivery.last_error ?? "—"),
      h("td", { "data-label": "Next attempt" }, delivery.status === "pending" ? formatTime(delivery.next_attempt_at) : "—"),
      h("td", { class: "tools" },
        h("button", {
          type: "button", "aria-expanded": String(open), "aria-controls": `attempts-${delivery.id}`,
          "data-focus-key": `${delivery.id}:attempts`,
          onclick: () => {
            if (open) expanded.delete(delivery.id);
            else expanded.add(delivery.id);
            refresh().catch((error) => showAlert(problem, error.message));
          },
        }, open ? "Hide attempts" : "Attempts"),
        may("retryDelivery") && ["failed", "cancelled"].includes(delivery.status) && h("button", {
          type: "button", "data-focus-key": `${delivery.id}:retry`,
          onclick: async () => {
            showAlert(problem, "");
            try {
              await api("POST", `/deliveries/${encodeURIComponent(delivery.id)}/retry`);
              await refresh();
            } catch (error) {
              showAlert(problem, error.message);
            }
          },
        }, "Retry")));
  }

  async function attemptsRow(delivery) {
    const version = `${delivery.status}:${delivery.attempt_count}:${delivery.next_attempt_at}`;
    const cached = attemptsCache.get(delivery.id);
    if (cached?.version !== version) {
      const detail = await api("GET", `/deliveries/${encodeURIComponent(delivery.id)}`, { signal });
      attemptsCache.set(delivery.id, { version, attempts: detail.attempts, waitingFor: detail.waiting_for });
    }
    const { attempts, waitingFor } = attemptsCache.get(delivery.id);
    return h("tr", { class: "attempts", id: `attempts-${delivery.id}` }, h("td", { colspan: 7 },
      waitingFor && h("p", { class: "help" }, "Held back by ordered delivery until ", h("code", {}, waitingFor), " ends."),
      attempts.length
        ? h("table", { "aria-label": `Attempts of delivery ${delivery.id}` },
          h("thead", {}, h("tr", {}, ["#", "Started", "Duration", "Status code", "Error class", "Error", "Response body"].map((label) => h("th", { scope: "col" }, label)))),
          h("tbody", {}, attempts.map((attempt) => h("tr", {},
            h("td", { "data-label": "#" }, String(attempt.number)),
            h("td", { "data-label": "Started" }, formatTime(attempt.started_at)),
            h("td", { "data-label": "Duration" }, attempt.duration_ms === null ? "—" : `${attempt.duration_ms} ms`),
            h("td", { "data-label": "Status code" }, attempt.status_code === null ? "—" : String(attempt.status_code)),
            h("td", { "data-label": "Error class" }, attempt.error_class ? h("code", {}, attempt.error_class) : "—"),
            h("td", { "data-label": "Error" }, attempt.error ?? "—"),
            h("td", { "data-label": "Response body" }, attempt.response_body ? h("pre", {}, attempt.response_body) : "—")))))
        : h("p", { class: "empty" }, "No attempt yet.")));
  }

  async function keepFresh() {
    while (!signal.aborted) {
      try {
        await sleep(REFRESH_MS, signal);
        await refresh();
      } catch (error) {
        if (signal.aborted) return;
        showAlert(problem, error.message);
      }
    }
  }

  const section = h("section", { "aria-labelledby": "deliveries-heading" },
    h("h2", { id: "deliveries-heading" }, "Deliveries"),
    h("p", { class: "help" }, "The newest 50, refreshed every 2 seconds."),
    problem,
    h("div", { class: "scroll" }, h("table", { class: "deliveries" },
      h("thead", {}, h("tr", {},
        ["Created", "Event", "Status", "Attempts", "Last answer", "Next attempt"].map((label) => h("th", { scope: "col" }, label)),
        h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))),
      rows)));
  return { section, refresh, keepFresh };
}
