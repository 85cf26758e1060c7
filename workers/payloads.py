"""What a webhook receives (docs/api.md#payloads): the payloads (test pings, events,
operational events), their md5, and the json / xml / form bodies.

Pure functions, no I/O. Every body is rendered from a JSON round trip of the payload, so
the three formats carry exactly the values that the md5 covers, as plain JSON types and in
the payload's own key order (``type`` first, as docs/api.md shows it). The md5 alone uses
the canonical, key-sorted form.

XML is produced by ``dicttoxml`` (1.7.16, ``attr_type=False``). What it does, checked against
its source and pinned by the tests:

- ``None`` becomes an empty element, ``<sku_id></sku_id>``; so do an empty object and an
  empty list, which the receiver cannot tell apart from null.
- Lists become one ``<item>`` child per element, ``<tags><item>a</item><item>b</item></tags>``;
  a list inside a list nests ``<item>`` in ``<item>``.
- Booleans become ``true`` / ``false`` inside objects but ``True`` / ``False`` inside lists, so
  we turn every boolean into the strings ``"true"`` / ``"false"`` before calling it.
- A ``str`` subclass such as a ``StrEnum`` member is treated as an iterable of characters;
  the JSON round trip turns it into a plain ``str`` first.
- Keys that are not valid XML names: all-digit keys get an ``n`` prefix (``"123"`` →
  ``<n123>``, and float-like keys such as ``"1e5"`` → ``<n100000.0>``; where that is still
  no name, ``"1e16"`` or ``"²"``, ``<key name="n1e+16">``, ``<key name="n²">``); spaces become
  underscores if that is enough (``"a b"`` → ``<a_b>``, which can collide with a real
  ``a_b``); anything else becomes ``<key name="...">`` (``"2bad"``, ``"ns:x"``, ``""``).
- Text and attribute values are escaped (``& < > " '``). Characters that XML 1.0 forbids
  (U+0000-U+0008, U+000B, U+000C, U+000E-U+001F, U+FFFE, U+FFFF), which no XML document
  may hold even as character references, become U+FFFD in keys and values before dicttoxml
  sees them: the document stays well-formed, and the md5 is still that of the payload as
  sent in JSON, so such an event's md5 cannot be recomputed from its XML.
- A carriage return in a value is written ``&#13;`` (parsers read a raw one as a line
  feed); tab, line feed and carriage return in a key become spaces, before the renaming
  above (a parser would make them spaces in ``name="..."``, or drop them after a tag name).
- It logs every value at INFO on the ``dicttoxml`` logger, so keep that logger at WARNING.

Form bodies (``application/x-www-form-urlencoded``) put nested keys in brackets,
``payload[data][order_id]=o-1``, and list elements by index, ``payload[data][tags][0]=a``.
Null is the empty string, booleans are ``true`` / ``false``, numbers are their JSON text.
An empty object or list adds no pair at all, as PHP's ``http_build_query`` does. Keys and
values are percent-encoded by ``urllib.parse.urlencode``, brackets included (``%5B``/``%5D``);
``parse_qsl`` gives back ``payload[type]`` and the rest. A key holding ``]`` would be
ambiguous here; the API refuses such keys in ``data`` (app/events/schemas.py).
"""

import calendar
import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, assert_never
from urllib.parse import urlencode

from dicttoxml import dicttoxml, key_is_valid_xml

from app.core.enums import PayloadType


def canonical_json(payload: Mapping[str, Any]) -> bytes:
    """The bytes the md5 is taken over (docs/api.md#payloads)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def payload_md5(payload: Mapping[str, Any]) -> str:
    # A checksum for the receiver, not a security measure: the signature is in the headers.
    return hashlib.md5(canonical_json(payload), usedforsecurity=False).hexdigest()


def ping_payload(epoch_timestamp: int) -> dict[str, Any]:
    return {"type": "ping", "epoch_timestamp": epoch_timestamp}


def event_payload(
    *,
    event_id: str,
    event_type: str,
    occurred_at: datetime,
    app_id: str,
    sku_id: str | None,
    data: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "type": event_type,
        # timegm reads a naive datetime as UTC (how the database hands them back) instead of
        # as local time, and drops the microseconds.
        "epoch_timestamp": calendar.timegm(occurred_at.utctimetuple()),
        "event_id": event_id,
        "app_id": app_id,
        "sku_id": sku_id,
        "data": dict(data),
    }


def operational_payload(
    *,
    event_type: str,
    notice_id: str,
    webhook_id: str,
    noticed_at: datetime,
    facts: Mapping[str, Any],
) -> dict[str, Any]:
    """What an operations endpoint receives (docs/api.md#operations-webhooks): the
    envelope of an event's payload, the notice as its id, the facts of its kind in `data`."""
    return {
        "type": event_type,
        "epoch_timestamp": calendar.timegm(noticed_at.utctimetuple()),
        "notice_id": notice_id,
        "webhook_id": webhook_id,
        "data": dict(facts),
    }


def render_body(payload_type: PayloadType, payload: Mapping[str, Any]) -> tuple[bytes, str]:
    """The request body for a webhook's ``payload_type``, and its content type."""
    md5 = payload_md5(payload)
    plain = json.loads(json.dumps(payload))
    match payload_type:
        case PayloadType.JSON:
            return _json_body(plain, md5), "application/json"
        case PayloadType.XML:
            return _xml_body(plain, md5), "application/xml"
        case PayloadType.FORM:
            return _form_body(plain, md5), "application/x-www-form-urlencoded"
        case _:
            assert_never(payload_type)


def _json_body(payload: dict[str, Any], md5: str) -> bytes:
    notification = {"payload": payload, "md5": md5}
    return json.dumps(notification, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _xml_body(payload: dict[str, Any], md5: str) -> bytes:
    # Insertion order puts payload before md5; dicttoxml keeps it.
    notification = {"payload": _xml_ready(payload), "md5": md5}
    body: bytes = dicttoxml(notification, custom_root="notification", attr_type=False)
    # Parsers read a raw CR in text as LF; the reference keeps it. Keys hold no CR any
    # more (_xml_key) and dicttoxml writes none of its own, so every CR is in a value.
    return body.replace(b"\r", b"&#13;")


# Characters outside XML 1.0's Char production: no document may hold them, not even as
# character references.
_NOT_XML_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class _Siblings(dict[str, Any]):
    """An object for dicttoxml (which only iterates ``items()``) whose keys may repeat:
    keys renamed alike, ``"a\tb"`` and ``"a b"``, stay two sibling elements."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self._pairs = pairs

    def items(self) -> Any:
        return iter(self._pairs)


def _xml_key(key: str) -> str:
    """Tab, LF and CR in a key become spaces: a parser would turn them into spaces in a
    `name="..."` attribute, or drop them at the end of a tag, anyway. A numeric key whose
    n-prefixed form is still no XML name is given that form here, so that dicttoxml writes
    it as `<key name="...">` whatever its value (it would write `<n1e+16>` for an object)."""
    xml_text: str = _NOT_XML_CHARS.sub("\ufffd", key)
    xml_text = xml_text.replace("\t", " ").replace("\n", " ").replace("\r", " ")
    renamed = _numeric_name(xml_text)
    if renamed is not None and not key_is_valid_xml(xml_text) and not key_is_valid_xml(renamed):
        return renamed
    return xml_text


def _numeric_name(key: str) -> str | None:
    """dicttoxml's name for a numeric key: n + the digits, or n + str(float(key))."""
    if key.isdigit():
        return f"n{key}"
    try:
        return f"n{float(key)}"
    except ValueError:
        return None


def _xml_ready(value: Any) -> Any:
    """Booleans as true/false, and U+FFFD for every character XML cannot carry."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _NOT_XML_CHARS.sub("\ufffd", value)
    if isinstance(value, dict):
        return _Siblings([(_xml_key(key), _xml_ready(item)) for key, item in value.items()])
    if isinstance(value, list):
        return [_xml_ready(item) for item in value]
    return value


def _form_body(payload: dict[str, Any], md5: str) -> bytes:
    pairs = [*_form_pairs("payload", payload), ("md5", md5)]
    return urlencode(pairs).encode("ascii")


def _form_pairs(key: str, value: Any) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in _form_pairs(f"{key}[{k}]", v)]
    if isinstance(value, list):
        return [pair for i, v in enumerate(value) for pair in _form_pairs(f"{key}[{i}]", v)]
    return [(key, _form_text(value))]


def _form_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    # JSON text gives true/false for booleans and the same digits the md5 was taken over.
    return json.dumps(value)
