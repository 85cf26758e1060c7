from tests.conftest import Tenant


async def test_event_creates_one_delivery_per_matching_webhook(tenant: Tenant) -> None:
    webhook = await tenant.webhook()
    await tenant.action(webhook["id"], event_type="purchase", app_id="app_42")
    accepted = await tenant.event(sku_id="gems_100", data={"order_id": "o-1"})
    assert accepted["deliveries"] == 1
    listing = (await tenant.api.get("/deliveries", params={"event_id": accepted["id"]})).json()
    assert [d["webhook_id"] for d in listing["data"]] == [webhook["id"]]
    assert listing["data"][0]["status"] == "pending"
