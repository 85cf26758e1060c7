"""End to end: POST /events → arq worker → a real receiver, and what the database records."""

import hashlib
import json

from arq.worker import Worker

from app.core.delivery_states import Claim
from app.core.enums import DeliveryKind, HttpMethod, PayloadType
from app.core.settings import Settings
from tests.conftest import Tenant
from tests.support.receivers import Answer, Receiver
from tests.workers.conftest import post_purchase, wait_for_delivery
from workers.deliver import send
from workers.transport import make_transport


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


async def test_a_payload_that_cannot_be_rendered_is_a_failed_attempt_not_a_crash(
    receiver: Receiver,
) -> None:
    # The API refuses such data now (a lone surrogate: UTF-8 cannot carry it); rows that
    # got in before must still end, attempt by attempt, instead of crashing every job.
    claim = Claim(
        delivery_id="dlv_test",
        webhook_id="wh_test",
        number=1,
        attempt_limit=3,
        kind=DeliveryKind.EVENT,
        url=receiver.url,
        method=HttpMethod.POST,
        payload_type=PayloadType.JSON,
        payload={"type": "purchase", "data": {"note": "\ud800"}},
        secrets=["whsec_" + "A" * 43],
    )
    async with make_transport(Settings(allow_private_networks=True)) as transport:
        outcome = await send(transport, claim, timeout_seconds=2)
    assert outcome.error_class == "payload"
    assert not outcome.succeeded
    assert outcome.status_code is None
    assert outcome.error is not None
    assert outcome.error.startswith("The payload could not be rendered: UnicodeEncodeError")
    assert receiver.requests == []


async def test_an_answer_holding_nul_bytes_is_stored_with_u_fffd_in_their_place(
    tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    # PostgreSQL's text cannot hold a NUL: storing it would fail the whole batch of outcomes.
    receiver.default = Answer(body=b"ok\x00done\x00")
    await tenant.subscribed_webhook(url=receiver.url)
    delivery = await wait_for_delivery(tenant, await post_purchase(tenant))
    assert delivery["status"] == "succeeded"
    [attempt] = delivery["attempts"]
    assert attempt["response_body"] == "ok\ufffddone\ufffd"
