"""End to end: POST /events → arq worker → a real receiver, and what the database records."""

import hashlib
import json

from arq.worker import Worker

from tests.conftest import Tenant
from tests.support.receivers import Receiver
from tests.workers.conftest import post_purchase, wait_for_delivery


async def test_purchase_arrives_as_json_and_the_delivery_succeeds(
    tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    await tenant.subscribed_webhook(url=receiver.url)
    delivery_id = await post_purchase(
        tenant, sku_id="gems_100", data={"order_id": "o-1", "amount": "4.99"}
    )
    delivery = await wait_for_delivery(tenant, delivery_id)
    assert delivery["status"] == "succeeded"
    assert delivery["attempt_count"] == 1
    assert delivery["last_status_code"] == 200
    [received] = receiver.requests
    assert received.method == "POST"
    assert received.headers["content-type"] == "application/json"
    assert received.headers["webhook-id"] == delivery_id
    body = json.loads(received.body)
    payload = body["payload"]
    assert payload["type"] == "purchase"
    assert payload["sku_id"] == "gems_100"
    assert payload["data"] == {"order_id": "o-1", "amount": "4.99"}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert body["md5"] == hashlib.md5(canonical.encode()).hexdigest()
    [attempt] = delivery["attempts"]
    assert attempt["status_code"] == 200
    assert attempt["response_body"] == "ok"
