// Add Web Hook / edit: the seed's five fields, the signature scheme and the delivery
// policies, the API's errors beside each of them.

import { api, ApiError } from "./api.js";
import { alertBox, fill, h, PAYLOAD_LABELS, showAlert } from "./dom.js";

const FIELDS = ["name", "url", "http_method", "payload_type", "active", "signature_scheme", "success_statuses", "ordered", "max_in_flight"];

export async function formView(main, signal, webhookId) {
  const editing = webhookId !== null;
  const path = editing ? `/webhooks/${encodeURIComponent(webhookId)}` : "/webhooks";
  const current = editing
    ? await api("GET", path, { signal })
    : {
      name: "", url: "", http_method: "POST", payload_type: "json", active: true,
      signature_scheme: "hmac-sha256", success_statuses: "200", ordered: false, max_in_flight: 10,
    };
  if (signal.aborted) return;

  const inputs = {
    name: h("input", { type: "text", maxlength: 200, autocomplete: "off" }),
    url: h("input", { type: "text", inputmode: "url", maxlength: 2048, autocomplete: "off", placeholder: "https://example.com/hooks/store" }),
    http_method: h("select", {}, ["POST", "PUT"].map((method) => h("option", { value: method }, method))),
    payload_type: h("select", {}, Object.entries(PAYLOAD_LABELS).map(([value, label]) => h("option", { value }, label))),
    active: h("input", { type: "checkbox" }),
    signature_scheme: h("select", {},
      h("option", { value: "hmac-sha256" }, "HMAC-SHA256 (v1): a shared secret"),
      h("option", { value: "ed25519" }, "Ed25519 (v1a): a public key")),
    success_statuses: h("select", {},
      h("option", { value: "200" }, "Only 200"),
      h("option", { value: "2xx" }, "Any 2xx (200–299)")),
    ordered: h("input", { type: "checkbox" }),
    max_in_flight: h("input", { type: "number", min: 1, max: 100, step: 1, inputmode: "numeric" }),
  };
  inputs.name.value = current.name;
  inputs.url.value = current.url;
  inputs.http_method.value = current.http_method;
  inputs.payload_type.value = current.payload_type;
  inputs.active.checked = current.active;
  inputs.signature_scheme.value = current.signature_scheme;
  inputs.success_statuses.value = current.success_statuses;
  inputs.ordered.checked = current.ordered;
  inputs.max_in_flight.value = String(current.max_in_flight);

  const errors = {};
  const field = (name, label, help) => {
    const input = inputs[name];
    input.id = `field-${name}`;
    input.name = name;
    errors[name] = h("p", { id: `error-${name}`, class: "field-error", hidden: true });
    const described = [help && `help-${name}`, `error-${name}`].filter(Boolean).join(" ");
    input.setAttribute("aria-describedby", described);
    const labelled = h("label", { for: input.id }, label);
    return h("div", { class: input.type === "checkbox" ? "field check" : "field" },
      input.type === "checkbox" ? [input, labelled] : [labelled, input],
      help && h("p", { id: `help-${name}`, class: "help" }, help),
      errors[name]);
  };
  const problem = alertBox();
  const cancel = editing ? `#${path}` : "#/webhooks";
  const form = h("form", { class: "card", novalidate: true },
    h("h1", { tabindex: -1 }, editing ? `Edit “${current.name}”` : "Add Web Hook"),
    field("name", "Name", "Describes the web hook when you bind actions to it."),
    field("url", "URI End Point", "http or https; with https the receiver’s certificate must be valid."),
    field("http_method", "HTTP Method to use"),
    field("payload_type", "Content Payload Type"),
    field("active", "Active", "An inactive web hook is not tested and sends nothing."),
    field("signature_scheme", "Signature scheme", editing
      ? "A change makes a new key; the old one keeps signing beside it for 24 hours, so your receivers can switch over."
      : "With Ed25519 your receivers verify with a public key, and only storehooks holds the private key."),
    h("details", { class: "policies", open: editing && (current.ordered || current.success_statuses !== "200" || current.max_in_flight !== 10) },
      h("summary", {}, "Delivery policies"),
      field("success_statuses", "Answers that count as delivered"),
      field("ordered", "Ordered", "Events that share an ordering_key are sent one after the other, in event order."),
      field("max_in_flight", "At most in flight", "Attempts sent to this web hook at the same time (1–100).")),
    problem,
    h("div", { class: "buttons" },
      h("button", { type: "submit", class: "primary" }, "Save"),
      h("a", { href: cancel, class: "button" }, "Cancel")));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(inputs, errors, problem);
    const values = {
      name: inputs.name.value,
      url: inputs.url.value.trim(),
      http_method: inputs.http_method.value,
      payload_type: inputs.payload_type.value,
      active: inputs.active.checked,
      signature_scheme: inputs.signature_scheme.value,
      success_statuses: inputs.success_statuses.value,
      ordered: inputs.ordered.checked,
      max_in_flight: inputs.max_in_flight.value === "" ? null : Number(inputs.max_in_flight.value),
    };
    // Only what changed: re-sending `active: false` would overwrite why the hook is off.
    const body = editing
      ? Object.fromEntries(FIELDS.filter((name) => values[name] !== current[name]).map((name) => [name, values[name]]))
      : values;
    try {
      const saved = editing && Object.keys(body).length === 0 ? current : await api(editing ? "PATCH" : "POST", path, { body });
      location.hash = `#/webhooks/${encodeURIComponent(saved.id)}`;
    } catch (error) {
      showErrors(error, inputs, errors, problem);
    }
  });
  fill(main, form);
}

function clearErrors(inputs, errors, problem) {
  for (const [name, input] of Object.entries(inputs)) {
    input.removeAttribute("aria-invalid");
    errors[name].hidden = true;
  }
  showAlert(problem, "");
}

// Each field error goes beside its field; anything else above the buttons.
export function showErrors(error, inputs, errors, problem) {
  const byField = error instanceof ApiError ? error.fieldErrors() : new Map();
  let first = null;
  const rest = [];
  for (const [name, message] of byField) {
    if (!(name in inputs)) {
      rest.push(message);
      continue;
    }
    inputs[name].setAttribute("aria-invalid", "true");
    errors[name].textContent = message;
    errors[name].hidden = false;
    first ??= inputs[name];
  }
  if (!first || rest.length) showAlert(problem, rest.length ? rest.join(" ") : error.message);
  (first ?? problem).focus?.();
}
