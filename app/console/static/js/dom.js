// Building the page: elements from plain values, text always as text (never HTML).

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  return fill(element, ...children);
}

// Replaces the children of `element`; false, null and undefined (a `may(...) && ...`
// that did not hold) are left out.
export function fill(element, ...children) {
  element.replaceChildren(...children.flat(Infinity).filter((child) => child !== null && child !== undefined && child !== false));
  return element;
}

export function formatTime(value) {
  return value ? new Date(value).toLocaleString() : "—";
}

export function sleep(milliseconds, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, milliseconds);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}

// A modal question with a safe default: Cancel has the focus, Escape cancels.
export function confirmDialog({ title, body, confirm }) {
  return new Promise((resolve) => {
    const close = (answer) => () => dialog.close(answer);
    const cancel = h("button", { type: "button", onclick: close("cancel") }, "Cancel");
    const dialog = h("dialog", { "aria-labelledby": "dialog-title", "aria-describedby": "dialog-body" },
      h("h2", { id: "dialog-title" }, title),
      h("p", { id: "dialog-body" }, body),
      h("div", { class: "buttons" },
        cancel,
        h("button", { type: "button", class: "danger", onclick: close("confirm") }, confirm)));
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "confirm");
      dialog.remove();
    }, { once: true });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

// A line under a section that screen readers announce when it changes.
export function statusLine() {
  return h("p", { class: "status", role: "status", "aria-live": "polite" });
}

export function alertBox() {
  return h("p", { class: "alert", role: "alert", hidden: true });
}

export function showAlert(box, message) {
  box.textContent = message ?? "";
  box.hidden = !message;
}

export const PAYLOAD_LABELS = { json: "JSON", xml: "XML", form: "Form data" };

export const EVENT_LABELS = { purchase: "Purchase", subscription_cancelled: "Subscription cancelled" };

const REASON_LABELS = { test_failed: "test failed", manual: "turned off", gone: "gone (410)", failing: "failing" };

export function activeBadge(webhook) {
  if (webhook.active) return h("span", { class: "badge ok" }, "Active");
  const reason = webhook.disabled_reason;
  return h("span", { class: "badge off", title: reason ?? "" },
    "Inactive", reason ? ` · ${REASON_LABELS[reason] ?? reason}` : "");
}

export function deliveryBadge(status) {
  return h("span", { class: `badge ${status}` }, status);
}
