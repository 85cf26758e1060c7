import hashlib
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qsl

import pytest

from app.core.enums import EventType, PayloadType
from workers.payloads import (
    canonical_json,
    event_payload,
    payload_md5,
    ping_payload,
    render_body,
)

OCCURRED_AT = datetime(2016, 6, 21, 16, 26, 50, tzinfo=UTC)
EPOCH = 1466526410

# Written out by hand, so a change in key order, separators or escaping shows up.
CANONICAL = (
    '{"app_id":"app-1","data":{"amount":{"currency":"EUR","value":199},"gift":false,'
    '"note":"café","order_id":"o-1","tags":["a",true,null]},"epoch_timestamp":1466526410,'
    '"event_id":"evt-1","sku_id":null,"type":"purchase"}'
)
MD5 = hashlib.md5(CANONICAL.encode("utf-8")).hexdigest()
PING_MD5 = hashlib.md5(b'{"epoch_timestamp":1466526410,"type":"ping"}').hexdigest()


def make_event() -> dict[str, object]:
    return event_payload(
        event_id="evt-1",
        # A StrEnum member, as callers pass it: dicttoxml would spell it out letter by letter.
        event_type=EventType.PURCHASE,
        occurred_at=OCCURRED_AT,
        app_id="app-1",
        sku_id=None,
        data={
            "order_id": "o-1",
            "note": "café",
            "amount": {"value": 199, "currency": "EUR"},
            "gift": False,
            "tags": ["a", True, None],
        },
    )


def test_ping_payload() -> None:
    assert ping_payload(EPOCH) == {"type": "ping", "epoch_timestamp": EPOCH}


def test_event_payload_fields() -> None:
    assert make_event() == {
        "type": "purchase",
        "epoch_timestamp": EPOCH,
        "event_id": "evt-1",
        "app_id": "app-1",
        "sku_id": None,
        "data": {
            "order_id": "o-1",
            "note": "café",
            "amount": {"value": 199, "currency": "EUR"},
            "gift": False,
            "tags": ["a", True, None],
        },
    }


@pytest.mark.parametrize(
    "occurred_at",
    [
        OCCURRED_AT.replace(microsecond=999_999),
        OCCURRED_AT.replace(tzinfo=None),
        OCCURRED_AT.astimezone(timezone(timedelta(hours=-7))),
    ],
    ids=["microseconds-dropped", "naive-is-utc", "other-zone"],
)
def test_event_epoch_timestamp(occurred_at: datetime) -> None:
    payload = event_payload(
        event_id="e",
        event_type="purchase",
        occurred_at=occurred_at,
        app_id="a",
        sku_id="s",
        data={},
    )
    assert payload["epoch_timestamp"] == EPOCH
    assert type(payload["epoch_timestamp"]) is int


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json(make_event()) == CANONICAL.encode("utf-8")


def test_payload_md5_matches_hashlib_on_canonical_text() -> None:
    assert payload_md5(make_event()) == MD5
    assert payload_md5(ping_payload(EPOCH)) == PING_MD5


@pytest.mark.parametrize(
    ("payload_type", "content_type"),
    [
        (PayloadType.JSON, "application/json"),
        (PayloadType.XML, "application/xml"),
        (PayloadType.FORM, "application/x-www-form-urlencoded"),
    ],
)
def test_content_types(payload_type: PayloadType, content_type: str) -> None:
    assert render_body(payload_type, ping_payload(EPOCH))[1] == content_type


def test_json_body() -> None:
    body, _ = render_body(PayloadType.JSON, make_event())
    assert list(json.loads(body)) == ["payload", "md5"]
    assert json.loads(body) == {"payload": make_event(), "md5": MD5}
    assert "café".encode() in body


def test_json_body_ping_exact() -> None:
    body, _ = render_body(PayloadType.JSON, ping_payload(EPOCH))
    assert body == (
        b'{"payload":{"type":"ping","epoch_timestamp":1466526410},'
        b'"md5":"7e7a2bfa11a0105f95f465a55d397a3c"}'
    )


def test_xml_body_ping_exact() -> None:
    body, _ = render_body(PayloadType.XML, ping_payload(EPOCH))
    assert body == (
        b'<?xml version="1.0" encoding="UTF-8" ?><notification><payload>'
        b"<type>ping</type><epoch_timestamp>1466526410</epoch_timestamp>"
        b"</payload><md5>7e7a2bfa11a0105f95f465a55d397a3c</md5></notification>"
    )
    assert PING_MD5 == "7e7a2bfa11a0105f95f465a55d397a3c"


def test_xml_body_event_fields() -> None:
    body, _ = render_body(PayloadType.XML, make_event())
    root = ET.fromstring(body)
    assert root.tag == "notification"
    assert [child.tag for child in root] == ["payload", "md5"]
    assert root.findtext("md5") == MD5
    payload = root.find("payload")
    assert payload is not None
    assert [child.tag for child in payload] == [
        *("type", "epoch_timestamp", "event_id", "app_id", "sku_id", "data"),
    ]
    assert payload.findtext("type") == "purchase"
    assert payload.findtext("epoch_timestamp") == "1466526410"
    assert payload.findtext("event_id") == "evt-1"
    assert payload.findtext("app_id") == "app-1"
    sku_id = payload.find("sku_id")
    assert sku_id is not None
    assert sku_id.text is None
    assert len(sku_id) == 0
    assert payload.findtext("data/order_id") == "o-1"
    assert payload.findtext("data/note") == "café"
    assert payload.findtext("data/amount/value") == "199"
    assert payload.findtext("data/amount/currency") == "EUR"
    assert payload.findtext("data/gift") == "false"
    assert [item.text for item in payload.iterfind("data/tags/item")] == ["a", "true", None]


def test_xml_documented_quirks() -> None:
    data = {
        "123": 1,
        "a b": 2,
        "2bad": 3,
        "nested": [[1, 2], {"k": "v"}],
        "empty": {},
        "esc": "<&>",
    }
    body, _ = render_body(PayloadType.XML, {"type": "t", "data": data})
    xml_data = ET.fromstring(body).find("payload/data")
    assert xml_data is not None
    assert [child.tag for child in xml_data] == ["n123", "a_b", "key", "nested", "empty", "esc"]
    assert xml_data[2].attrib == {"name": "2bad"}
    assert xml_data[2].text == "3"
    nested = xml_data.find("nested")
    assert nested is not None
    assert [[i.text for i in item] for item in nested] == [["1", "2"], ["v"]]
    assert xml_data.findtext("nested/item/k") == "v"
    assert xml_data.findtext("empty") == ""
    assert xml_data.findtext("esc") == "<&>"


def test_form_body_ping() -> None:
    body, _ = render_body(PayloadType.FORM, ping_payload(EPOCH))
    assert parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=True) == [
        ("payload[type]", "ping"),
        ("payload[epoch_timestamp]", "1466526410"),
        ("md5", PING_MD5),
    ]


def test_form_body_event() -> None:
    body, _ = render_body(PayloadType.FORM, make_event())
    assert body.isascii()
    assert b"caf%C3%A9" in body
    assert parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=True) == [
        ("payload[type]", "purchase"),
        ("payload[epoch_timestamp]", "1466526410"),
        ("payload[event_id]", "evt-1"),
        ("payload[app_id]", "app-1"),
        ("payload[sku_id]", ""),
        ("payload[data][order_id]", "o-1"),
        ("payload[data][note]", "café"),
        ("payload[data][amount][value]", "199"),
        ("payload[data][amount][currency]", "EUR"),
        ("payload[data][gift]", "false"),
        ("payload[data][tags][0]", "a"),
        ("payload[data][tags][1]", "true"),
        ("payload[data][tags][2]", ""),
        ("md5", MD5),
    ]


def test_form_numbers_are_json_text_and_empty_containers_vanish() -> None:
    data = {"price": 1.5, "big": 10**20, "yes": True, "none": {}, "nothing": [], "sp ace": "a&b=c"}
    body, _ = render_body(PayloadType.FORM, {"type": "t", "data": data})
    assert dict(parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=True)) == {
        "payload[type]": "t",
        "payload[data][price]": "1.5",
        "payload[data][big]": "100000000000000000000",
        "payload[data][yes]": "true",
        "payload[data][sp ace]": "a&b=c",
        "md5": payload_md5({"type": "t", "data": data}),
    }


@pytest.mark.parametrize("payload_type", list(PayloadType))
def test_every_payload_type_renders(payload_type: PayloadType) -> None:
    body, content_type = render_body(payload_type, make_event())
    assert body
    assert content_type.startswith("application/")
