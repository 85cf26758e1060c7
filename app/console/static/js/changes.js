// A web hook's recent changes, from the audit log (GET /audit-events): "URL changed by
// Dana, 5 minutes ago", newest first.

import { api, query } from "./api.js";
import { alertBox, EVENT_LABELS, formatTime, h, showAlert } from "./dom.js";

const FIELD_LABELS = {
  name: "Name",
  url: "URL",
  http_method: "HTTP method",
  payload_type: "Payload type",
  active: "Active",
  disabled_reason: "Reason it is off",
  signature_scheme: "Signature scheme",
  success_statuses: "Answers that count as delivered",
  ordered: "Ordered",
  max_in_flight: "At most in flight",
};
const ACTION_LABELS = {
  "webhook.created": "Created",
  "webhook.secret_rotated": "Secret rotated",
  "webhook.recovered": "Failed deliveries recovered",
  "webhook.tested": "Tested",
  "webhook.action_added": "Action added",
  "webhook.action_removed": "Action removed",
};
const SHOWN = 10;
const UNITS = [["day", 86_400], ["hour", 3_600], ["minute", 60], ["second", 1]];
const relative = new Intl.RelativeTimeFormat("en", { numeric: "always" });

export async function changesSection(webhookId, signal) {
  const list = h("ul", { class: "changes" });
  const problem = alertBox();
  try {
    const page = await api("GET", query("/audit-events", { target_id: webhookId, limit: SHOWN }), { signal });
    list.append(...page.data.map(changeLine));
    if (!page.data.length) list.append(h("li", { class: "empty" }, "No changes recorded."));
  } catch (error) {
    if (signal.aborted) throw error;
    showAlert(problem, `The changes could not be read: ${error.message}`);
  }
  return h("section", { "aria-labelledby": "changes-heading" },
    h("h2", { id: "changes-heading" }, "Recent changes"),
    problem,
    list);
}

function changeLine(entry) {
  return h("li", {},
    `${what(entry)} by ${entry.actor_name || entry.actor_id}, `,
    h("time", { datetime: entry.occurred_at, title: formatTime(entry.occurred_at) }, ago(entry.occurred_at)));
}

// "URL changed", "Name and URL changed", "Action added (Purchase)"; else the action's words.
function what(entry) {
  const changes = entry.changes ?? {};
  const fields = Object.keys(changes).map((field) => FIELD_LABELS[field] ?? field);
  if (entry.action === "webhook.updated" && fields.length) return `${listed(fields)} changed`;
  const label = ACTION_LABELS[entry.action] ?? entry.action;
  const action = changes.action?.after ?? changes.action?.before;
  return action ? `${label} (${EVENT_LABELS[action.event_type] ?? action.event_type})` : label;
}

function listed(words) {
  return words.length < 2 ? words.join("") : `${words.slice(0, -1).join(", ")} and ${words.at(-1)}`;
}

function ago(value) {
  const seconds = Math.round((Date.parse(value) - Date.now()) / 1000);
  if (Math.abs(seconds) < 45) return "just now";
  const [unit, size] = UNITS.find(([, length]) => Math.abs(seconds) >= length);
  return relative.format(Math.round(seconds / size), unit);
}
