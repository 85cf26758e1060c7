// Web Hooks: the list, with each hook's last 24 h of deliveries and the trash icon; below
// it, read-only, the account's operations web hooks and their state (docs/api.md#operations-webhooks).

import { api, may, query } from "./api.js";
import { activeBadge, alertBox, confirmDialog, fill, h, PAYLOAD_LABELS, showAlert } from "./dom.js";

const DAY_MS = 24 * 60 * 60 * 1000;
const HISTORY_PAGES = 5; // at most 1,000 deliveries counted per hook

export async function listView(main, signal) {
  const rows = h("tbody");
  const problem = alertBox();
  const more = h("button", { type: "button", hidden: true }, "Load more");
  let cursor = null;

  async function load() {
    const page = await api("GET", query("/webhooks", { limit: 50, cursor }), { signal });
    rows.append(...page.data.map((webhook) => row(webhook, problem, signal)));
    cursor = page.next_cursor;
    more.hidden = !cursor;
    return page.data.length;
  }
  more.addEventListener("click", () => load().catch((error) => showAlert(problem, error.message)));

  const count = await load();
  if (signal.aborted) return;
  const heading = h("div", { class: "page-head" },
    h("h1", { tabindex: -1 }, "Web Hooks"),
    may("createWebhook") &&
      h("button", { type: "button", class: "primary", onclick: () => { location.hash = "#/webhooks/new"; } }, "Add Web Hook"));
  const table = h("table", { class: "webhooks" },
    h("caption", { class: "visually-hidden" }, "Web hooks of this account"),
    h("thead", {}, h("tr", {},
      ["Name", "URI End Point", "Method", "Payload", "Status"].map((label) => h("th", { scope: "col" }, label)),
      may("listDeliveries") && h("th", { scope: "col" }, "Last 24 h"),
      h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))),
    rows);
  fill(main, heading, problem,
    count ? table : h("p", { class: "empty" }, "No web hooks yet."),
    more,
    await operationsSection(signal));
}

// Where the account's operational events go (a webhook failing, turned off, recovered, a
// delivery exhausted, a failed test), and whether each endpoint is still on: an
// operations web hook the service turned off shows it here, never silently.
async function operationsSection(signal) {
  const page = await api("GET", query("/operations-webhooks", { limit: 200 }), { signal });
  const section = h("section", { "aria-labelledby": "operations-heading" },
    h("h2", { id: "operations-heading" }, "Operations Web Hooks"));
  if (!page.data.length) {
    section.append(h("p", { class: "empty" }, "No operations web hooks: add one with POST /operations-webhooks."));
    return section;
  }
  section.append(h("table", { class: "webhooks" },
    h("caption", { class: "visually-hidden" }, "Operations web hooks of this account"),
    h("thead", {}, h("tr", {},
      ["Name", "URI End Point", "Method", "Payload", "Status"].map((label) => h("th", { scope: "col" }, label)))),
    h("tbody", {}, ...page.data.map((endpoint) => h("tr", { "data-operations-webhook-id": endpoint.id },
      h("td", { "data-label": "Name" }, endpoint.name),
      h("td", { "data-label": "URI End Point", class: "url" }, endpoint.url),
      h("td", { "data-label": "Method" }, endpoint.http_method),
      h("td", { "data-label": "Payload" }, PAYLOAD_LABELS[endpoint.payload_type] ?? endpoint.payload_type),
      h("td", { "data-label": "Status" }, activeBadge(endpoint)))))));
  return section;
}

function row(webhook, problem, signal) {
  const link = `#/webhooks/${encodeURIComponent(webhook.id)}`;
  const history = may("listDeliveries") && h("td", { "data-label": "Last 24 h" });
  if (history) fillHistory(history, webhook.id, signal);
  const tools = h("td", { class: "tools" },
    may("updateWebhook") && h("a", { class: "icon edit", href: `${link}/edit`, "aria-label": "Edit", title: "Edit" }),
    may("deleteWebhook") && h("button", {
      type: "button", class: "icon trash", "aria-label": "Delete", title: "Delete",
      onclick: () => remove(webhook, tr, problem),
    }));
  const tr = h("tr", { "data-webhook-id": webhook.id },
    h("td", { "data-label": "Name" }, h("a", { href: link }, webhook.name)),
    h("td", { "data-label": "URI End Point", class: "url" }, webhook.url),
    h("td", { "data-label": "Method" }, webhook.http_method),
    h("td", { "data-label": "Payload" }, PAYLOAD_LABELS[webhook.payload_type] ?? webhook.payload_type),
    h("td", { "data-label": "Status" }, activeBadge(webhook)),
    history,
    tools);
  return tr;
}

async function remove(webhook, tr, problem) {
  const confirmed = await confirmDialog({
    title: `Delete “${webhook.name}”?`,
    body: "Its actions go with it and its pending deliveries are cancelled. Its delivery history stays readable.",
    confirm: "Delete",
  });
  if (!confirmed) return;
  try {
    await api("DELETE", `/webhooks/${encodeURIComponent(webhook.id)}`);
    tr.remove();
  } catch (error) {
    showAlert(problem, error.message);
  }
}

// Counts the hook's deliveries of the last 24 h by status, newest first, page by page.
async function fillHistory(cell, webhookId, signal) {
  const since = Date.now() - DAY_MS;
  const counts = { succeeded: 0, failed: 0, pending: 0 };
  let cursor = null;
  let truncated = false;
  try {
    for (let pages = 0; ; pages += 1) {
      if (pages === HISTORY_PAGES) {
        truncated = true;
        break;
      }
      const page = await api("GET", query("/deliveries", { webhook_id: webhookId, limit: 200, cursor }), { signal });
      const recent = page.data.filter((delivery) => Date.parse(delivery.created_at) >= since);
      for (const delivery of recent) if (delivery.status in counts) counts[delivery.status] += 1;
      cursor = page.next_cursor;
      if (!cursor || recent.length < page.data.length) break;
    }
  } catch {
    if (!signal.aborted) fill(cell, "—");
    return;
  }
  fill(cell, historyBar(counts, truncated));
}

function historyBar(counts, truncated) {
  const total = counts.succeeded + counts.failed + counts.pending;
  const bar = h("span", { class: "bar", "aria-hidden": "true" });
  for (const status of ["succeeded", "failed", "pending"]) {
    if (!counts[status]) continue;
    const part = h("span", { class: status });
    part.style.flexGrow = String(counts[status]);
    bar.append(part);
  }
  return h("span", { class: "history" },
    total ? bar : h("span", { class: "bar empty", "aria-hidden": "true" }),
    h("span", { class: "counts" },
      `${truncated ? "at least " : ""}${counts.succeeded} succeeded · ${counts.failed} failed · ${counts.pending} pending`));
}
