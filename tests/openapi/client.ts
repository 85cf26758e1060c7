// The README walkthrough as a TypeScript user writes it with openapi-fetch, on the
// types openapi-typescript makes of /openapi.json (with --default-non-nullable false).
// tests/openapi/test_typescript.py generates generated/schema.d.ts and type-checks
// this file: every @ts-expect-error below must be an error, everything else must not.
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/schema.js";

type Schemas = components["schemas"];

// A request field with a default may be left out.
const minimal: Schemas["WebhookCreate"] = {
  name: "orders",
  url: "https://example.com/hooks/store",
  http_method: "POST",
  payload_type: "json",
};

// @ts-expect-error a request field without a default is required
const noUrl: Schemas["WebhookCreate"] = { name: "orders", http_method: "POST", payload_type: "json" };

// @ts-expect-error every field of an answer is always there, so required
const partial: Schemas["WebhookOut"] = { id: "wh_1" };

// @ts-expect-error a PATCH field may be left out, but never null
const nulled: Schemas["WebhookUpdate"] = { active: null };

export async function walkthrough(baseUrl: string, key: string): Promise<string[]> {
  const client = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${key}` } });
  const created = await client.POST("/webhooks", { body: minimal });
  if (created.error) return [created.error.detail];
  const webhook: Schemas["WebhookCreated"] = created.data;
  const active: boolean = webhook.active;
  const reason: Schemas["DisabledReason"] | null = webhook.disabled_reason;
  const path = { webhook_id: webhook.id };
  await client.POST("/webhooks/{webhook_id}/actions", {
    params: { path },
    body: { event_type: "purchase", app_id: "app_42" },
  });
  const event = await client.POST("/events", {
    params: { header: { "idempotency-key": "order-o-1" } },
    body: { type: "purchase", app_id: "app_42", sku_id: "gems_100", data: { order_id: "o-1" } },
  });
  if (event.error) return [event.error.detail];
  const deliveries = await client.GET("/deliveries", {
    params: { query: { event_id: event.data.id } },
  });
  const statuses: Schemas["DeliveryStatus"][] = (deliveries.data?.data ?? []).map((d) => d.status);
  const ordered = await client.PATCH("/webhooks/{webhook_id}", {
    params: { path },
    body: { ordered: true },
  });
  return [String(active), String(reason), ...statuses, String(ordered.data?.ordered)];
}

export const unused = [noUrl, partial, nulled];
