"""Property tests of the wire formats (docs/api.md#notifications, docs/receiving.md), with
hypothesis.

For any JSON object ``data`` put into an event payload by ``event_payload`` (unicode keys and
values including non-BMP and control characters, nested objects and lists, nulls, booleans,
big integers, finite floats, empty containers), and for ping payloads, what ``render_body``
sends is proved to carry the payload as the contract says:

- json: the body parses back to exactly ``{"payload": <payload>, "md5": <md5>}`` (types and
  key order included), and the md5 is the MD5 of the canonical JSON as docs/api.md#payloads
  writes it.
- xml: the body starts with the contract's declaration, ElementTree and xmltodict both parse
  it and see the same document, and it decodes to the payload under the mapping documented in
  ``workers/payloads.py``, which is lossy by design: every value arrives as text (null, ``""``,
  ``{}`` and ``[]`` all as an empty element, booleans ``true``/``false``, numbers as their JSON
  text), a list as one ``<item>`` per element, and a key under the name dicttoxml gives it
  (``renamed`` below: ``"123"`` → ``n123``, ``"1e5"`` → ``n100000.0``, ``"a b"`` → ``a_b``,
  ``"a "`` → ``a``, anything else invalid → ``<key name="...">``). Distinct keys that end up
  with one name become sibling elements, in the payload's order: nothing is dropped.
- form: the body parses back, with the bracket parser below, to the payload with every leaf
  as text (null ``""``, booleans ``true``/``false``, numbers as their JSON text), a list as an
  object keyed ``"0"``, ``"1"``, …, and empty objects and lists left out, as PHP does.
- signature: the ``webhook-signature`` of each of the three bodies verifies with the reference
  ``standardwebhooks`` library, and no longer does once any one byte of the body is changed.

Each defect these properties found (characters XML forbids, a numeric key holding an object,
carriage returns, a "]" in a form key, lone surrogates) is fixed or refused at the API, and
its minimal falsifying example is kept as an ``@example``.
"""

import base64
import hashlib
import json
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeAlias
from urllib.parse import parse_qsl

import pytest
import xmltodict
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.core.enums import EventType, PayloadType
from app.core.signing import notification_headers, sign
from app.events.schemas import EventCreate
from workers.payloads import canonical_json, event_payload, payload_md5, ping_payload, render_body

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8" ?>'
XML_NAMESPACE = "{http://www.w3.org/XML/1998/namespace}"  # how ElementTree spells "xml:"

XmlTree: TypeAlias = "str | list[tuple[str, XmlTree]]"
FormTree: TypeAlias = "str | dict[str, FormTree]"


# --- strategies ------------------------------------------------------------------------------

# Characters that matter to one of the formats, so that they come up often enough.
TRICKY_CHARS = (
    "<>&\"' \t\n\r\x00\x01\x0b\x1f\x7f\x85\xa0\u2028\ufeff\ufffe\uffff"
    "\U0001f600\U0010ffff[]=+%;:._-²"
)
TRICKY_KEYS = [
    *("", "123", "1e5", "1e16", "-1", " 1", "1_000", "²", "a b", "a_b", "a ", "2bad", "ns:x"),
    *("xml:lang", "xmlns", "XML", "item", "key", "n123", "type", "payload", "md5", "a][b"),
]


def is_xml_char(char: str) -> bool:
    """XML 1.0's ``Char`` production: the characters a document may contain at all."""
    code = ord(char)
    return char in "\t\n\r" or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or code >= 0x10000


def texts(allowed: Callable[[str], bool]) -> st.SearchStrategy[str]:
    # Every code point but the surrogates, which no UTF-8 text holds (the API refuses them).
    chars = st.one_of(st.characters(codec="utf-8"), st.sampled_from(TRICKY_CHARS))
    return st.text(chars.filter(allowed))


def keys(allowed: Callable[[str], bool]) -> st.SearchStrategy[str]:
    tricky = [key for key in TRICKY_KEYS if all(map(allowed, key))]
    return st.one_of(texts(allowed), st.sampled_from(tricky))


def json_values(
    text: st.SearchStrategy[str], key: st.SearchStrategy[str]
) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=-(10**60), max_value=10**60),
        st.floats(allow_nan=False, allow_infinity=False),
        text,
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(key, children, max_size=4)
        ),
        max_leaves=16,
    )


def payloads(
    text: st.SearchStrategy[str], key: st.SearchStrategy[str]
) -> st.SearchStrategy[dict[str, Any]]:
    events = st.builds(
        event_payload,
        event_id=text,
        # StrEnum members, as callers pass them.
        event_type=st.sampled_from(list(EventType)),
        occurred_at=st.datetimes(
            min_value=datetime(1970, 1, 1),
            max_value=datetime(2200, 1, 1),
            timezones=st.none() | st.sampled_from([UTC, timezone(timedelta(hours=-7))]),
        ),
        app_id=text,
        sku_id=st.none() | text,
        data=st.dictionaries(key, json_values(text, key), max_size=6),
    )
    pings = st.builds(ping_payload, st.integers(min_value=0, max_value=2**40))
    return st.one_of(events, pings)


def xml_value_char(char: str) -> bool:
    return is_xml_char(char)


def xml_key_char(char: str) -> bool:
    return is_xml_char(char)


ANY_PAYLOADS = payloads(texts(lambda _: True), keys(lambda _: True))
XML_PAYLOADS = payloads(texts(xml_value_char), keys(xml_key_char))
# "]" ends a key in bracket notation: see test_form_key_with_a_closing_bracket.
FORM_PAYLOADS = payloads(texts(lambda _: True), keys(lambda char: char != "]"))


def event(data: dict[str, Any]) -> dict[str, Any]:
    """A fixed event around ``data``, for the explicit examples."""
    return event_payload(
        event_id="evt-1",
        event_type=EventType.PURCHASE,
        occurred_at=datetime(2016, 6, 21, 16, 26, 50, tzinfo=UTC),
        app_id="app-1",
        sku_id=None,
        data=data,
    )


def md5_of(payload: dict[str, Any]) -> str:
    """docs/api.md#payloads, written out here rather than taken from the code under test."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.md5(canonical.encode("utf-8")).hexdigest()


# --- json ------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(payload=ANY_PAYLOADS)
def test_json_body_parses_back_to_the_payload_and_its_md5(payload: dict[str, Any]) -> None:
    body, content_type = render_body(PayloadType.JSON, payload)
    assert content_type == "application/json"
    notification = json.loads(body.decode("utf-8"))
    # Compared as JSON text, so that 1, 1.0, True, -0.0 and 0.0 differ, and so does key order.
    assert json.dumps(notification) == json.dumps({"payload": payload, "md5": md5_of(payload)})
    assert canonical_json(payload) == json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    # What a receiver recomputes from what it parsed (docs/receiving.md) is the same md5.
    assert notification["md5"] == payload_md5(payload) == md5_of(notification["payload"])


# --- xml -------------------------------------------------------------------------------------


def is_xml_name(name: str) -> bool:
    """Whether ``<name>x</name>`` is a document: dicttoxml's own test of a key (minidom, which is
    expat with namespaces on, as ElementTree is; so ``xml:lang`` passes and ``ns:x`` does not).
    dicttoxml escapes the key first, and an escaped ``& < > " '`` never leaves a name."""
    if any(char in name for char in "<>&\"'"):
        return False
    try:
        ET.fromstring(f"<{name}>x</{name}>")
    except ET.ParseError:
        return False
    return True


def renamed(key: str) -> tuple[str, str | None]:
    """The documented renaming (payloads.py): the tag written for a key, and the ``name``
    attribute when it falls back to ``<key name="...">``. Tab, LF and CR in a key are
    spaces first."""
    key = key.replace("\t", " ").replace("\n", " ").replace("\r", " ")
    if is_xml_name(key):
        return key, None
    if key.isdigit():
        return f"n{key}", None
    try:
        return f"n{float(key)}", None
    except ValueError:
        pass
    if is_xml_name(key.replace(" ", "_")):
        return key.replace(" ", "_"), None
    return "key", key


def xml_element(key: str, container: bool) -> tuple[str, str | None] | None:
    """The tag and ``name`` attribute of a key holding a container (an object or list) or
    not (the same since payloads._xml_key; it was an invalid tag for a container)."""
    tag, name = renamed(key)
    if is_xml_name(tag):
        return tag, name
    # dicttoxml renames the renamed key once more, into name="n..."; for an object or a list
    # payloads._xml_key does it first, so that every value is written alike.
    return renamed(tag)


def unwritable_keys(value: Any) -> list[str]:
    if isinstance(value, list):
        return [key for item in value for key in unwritable_keys(item)]
    if not isinstance(value, dict):
        return []
    return [
        bad
        for key, item in value.items()
        for bad in ([key] if xml_element(key, isinstance(item, dict | list)) is None else [])
        + unwritable_keys(item)
    ]


def xml_name_read(key: str, container: bool) -> str:
    element = xml_element(key, container)
    assert element is not None, f"{key!r} is written as an invalid tag"
    tag, name = element
    # A key with trailing white space is a valid tag, "<a >", that parsers read as "a".
    return tag.rstrip(" \t\n\r") if name is None else name


def expected_xml(value: Any) -> XmlTree:
    """What the documented XML mapping lets a receiver read back of a JSON value."""
    if isinstance(value, dict):
        return [
            (xml_name_read(key, isinstance(item, dict | list)), expected_xml(item))
            for key, item in value.items()
        ] or ""
    if isinstance(value, list):
        return [("item", expected_xml(item)) for item in value] or ""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return str(value)
    return json.dumps(value)  # int, float: the JSON text, which is also str() of the number


def decode_xml(element: ET.Element) -> XmlTree:
    """Reverses the mapping: an element with children is its (key, value) pairs in order (a
    list's are all named "item"), a leaf is its text, "" when empty."""
    if len(element) == 0:
        return element.text or ""
    assert not element.text, "text mixed with elements"
    pairs: list[tuple[str, XmlTree]] = []
    for child in element:
        assert not child.tail, "text mixed with elements"
        pairs.append((xml_key_of(child), decode_xml(child)))
    return pairs


def xml_key_of(element: ET.Element) -> str:
    if element.attrib:
        # Only the fallback <key name="..."> carries an attribute (attr_type=False).
        assert element.tag == "key"
        assert list(element.attrib) == ["name"]
        return element.attrib["name"]
    tag = element.tag
    if tag.startswith(XML_NAMESPACE):  # the one bound prefix: a key "xml:lang"
        tag = "xml:" + tag.removeprefix(XML_NAMESPACE)
    assert is_xml_name(tag), tag
    return tag


def xmltodict_view(element: ET.Element) -> Any:
    """What xmltodict makes of an element: siblings grouped by tag, attributes as "@name"."""
    children: dict[str, list[Any]] = {}
    for child in element:
        tag = child.tag.replace(XML_NAMESPACE, "xml:")
        children.setdefault(tag, []).append(xmltodict_view(child))
    if not children and not element.attrib:
        return element.text
    view: dict[str, Any] = {f"@{name}": value for name, value in element.attrib.items()}
    view.update({tag: items[0] if len(items) == 1 else items for tag, items in children.items()})
    if element.text:
        view["#text"] = element.text
    return view


def check_xml_round_trip(payload: dict[str, Any]) -> None:
    body, content_type = render_body(PayloadType.XML, payload)
    assert content_type == "application/xml"
    assert body.startswith(XML_DECLARATION)
    root = ET.fromstring(body)
    parsed = xmltodict.parse(body, strip_whitespace=False)
    assert parsed == {"notification": xmltodict_view(root)}
    assert root.tag == "notification"
    assert decode_xml(root) == [("payload", expected_xml(payload)), ("md5", md5_of(payload))]


@settings(max_examples=200, deadline=None)
@given(payload=XML_PAYLOADS)
def test_xml_body_is_well_formed_and_decodes_to_the_payload(payload: dict[str, Any]) -> None:
    """Any text that XML 1.0 can carry, under any key: the document parses with both parsers
    and decodes to ``expected_xml(payload)``, the documented lossy mapping, not to the
    payload."""
    assume(not unwritable_keys(payload))
    check_xml_round_trip(payload)


COLLIDING_KEYS = [
    ("a b", "a_b"),
    ("123", "n123"),
    ("1e5", "n100000.0"),
    ("1.0", " 1"),
    ("a ", "a"),
    ("1e16", "n1e+16"),  # both <key name="n1e+16">
]


@settings(deadline=None)
@given(
    pair=st.sampled_from(COLLIDING_KEYS),
    first=texts(xml_value_char),
    second=texts(xml_value_char),
)
def test_xml_keys_renamed_alike_become_sibling_elements(
    pair: tuple[str, str], first: str, second: str
) -> None:
    """Two distinct keys that the renaming gives one name are both written, in the payload's
    order, as siblings under that name: ElementTree sees two children, xmltodict a list of two,
    and nothing says which key each came from (lossy by design, documented in payloads.py)."""
    name = xml_name_read(pair[0], container=False)
    assert xml_name_read(pair[1], container=False) == name
    body, _ = render_body(PayloadType.XML, event({pair[0]: first, pair[1]: second}))
    xml_data = ET.fromstring(body).find("payload/data")
    assert xml_data is not None
    assert decode_xml(xml_data) == [(name, first), (name, second)]
    [tag] = {child.tag for child in xml_data}
    by_tag = xmltodict.parse(body, strip_whitespace=False)["notification"]["payload"]["data"]
    assert list(by_tag) == [tag]
    if tag == "key":
        assert by_tag[tag] == [
            {"@name": name, "#text": text} if text else {"@name": name} for text in (first, second)
        ]
    else:
        assert by_tag[tag] == [first or None, second or None]


def keys_collide_when_safe(value: Any) -> bool:
    """Two keys of one object that differ only in characters XML cannot carry: both are
    written (as two elements), but a dict of the safe payload can hold only one."""
    if isinstance(value, dict):
        if len({xml_safe(key) for key in value}) != len(value):
            return True
        return any(keys_collide_when_safe(item) for item in value.values())
    if isinstance(value, list):
        return any(keys_collide_when_safe(item) for item in value)
    return False


def xml_safe(value: Any) -> Any:
    """The payload as its XML is written: every character XML 1.0 forbids is U+FFFD."""
    if isinstance(value, str):
        return "".join(char if is_xml_char(char) else "\ufffd" for char in value)
    if isinstance(value, dict):
        return {xml_safe(key): xml_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [xml_safe(item) for item in value]
    return value


@settings(max_examples=200, deadline=None)
@example(payload=event({"k": "\x00", "\x01": "\ufffe"}))
@given(payload=ANY_PAYLOADS)
def test_xml_body_is_well_formed_for_any_text(payload: dict[str, Any]) -> None:
    """Characters XML 1.0 forbids (U+0000-U+0008, U+000B, U+000C, U+000E-U+001F, U+FFFE,
    U+FFFF) arrive as U+FFFD: the document always parses, and otherwise reads back as the
    payload does (the md5 stays that of the payload itself)."""
    assume(not unwritable_keys(xml_safe(payload)))
    body, _ = render_body(PayloadType.XML, payload)
    ET.fromstring(body)
    xmltodict.parse(body)
    safe = xml_safe(payload)
    if json.dumps(safe) == json.dumps(payload):
        return  # nothing replaced: the other XML properties cover it
    if keys_collide_when_safe(payload):
        return  # well-formed, checked above; no dict to compare it with
    root = ET.fromstring(body)
    assert decode_xml(root)[0] == ("payload", expected_xml(safe))


@settings(deadline=None)
@example(key="1e16", value={})
@example(key="²", value=[1])
@given(
    key=keys(xml_key_char),
    value=json_values(texts(xml_value_char), keys(xml_key_char)).filter(
        lambda value: isinstance(value, dict | list)
    ),
)
def test_xml_numeric_key_holding_an_object_or_list(key: str, value: Any) -> None:
    check_xml_round_trip(event({key: value}))


@settings(max_examples=200, deadline=None)
@example(payload=event({"k": "\r", "\t": "\r\n", "a\nb": None, "z\r": [], "\r\n": {}}))
@given(payload=payloads(texts(is_xml_char), keys(is_xml_char)))
def test_xml_keeps_carriage_returns_and_white_space_in_keys(payload: dict[str, Any]) -> None:
    """A CR in a value arrives as a CR (written &#13;); tab, LF and CR in a key arrive as
    the documented renaming of the key with spaces in their place."""
    assume(not unwritable_keys(payload))
    check_xml_round_trip(payload)


# --- form ------------------------------------------------------------------------------------

FORM_NAME = re.compile(r"([^\[\]]+)((?:\[[^\]]*\])*)")


def parse_form(body: bytes) -> dict[str, FormTree]:
    """A receiver's bracket parser: ``a[b][c]=v`` sets ``tree["a"]["b"]["c"] = "v"``, a key
    being whatever stands between a "[" and the next "]"; a name given twice, or given both a
    value and sub-keys, is an error."""
    assert body.isascii()
    tree: dict[str, FormTree] = {}
    for name, value in parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=True):
        match = FORM_NAME.fullmatch(name)
        assert match is not None, f"not bracket notation: {name!r}"
        *path, last = [match[1], *re.findall(r"\[([^\]]*)\]", match[2])]
        node = tree
        for part in path:
            child = node.setdefault(part, {})
            assert isinstance(child, dict), f"{name!r} goes through a value"
            node = child
        assert last not in node, f"{name!r} given twice"
        node[last] = value
    return tree


def expected_form(value: Any) -> "FormTree | None":
    """The documented form mapping; None for what adds no pair (an empty object or list)."""
    if isinstance(value, dict | list):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        tree = {str(key): form for key, item in items if (form := expected_form(item)) is not None}
        return tree or None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return str(value)
    return json.dumps(value)  # int, float: the JSON text the md5 was taken over


def check_form_round_trip(payload: dict[str, Any]) -> None:
    body, content_type = render_body(PayloadType.FORM, payload)
    assert content_type == "application/x-www-form-urlencoded"
    parsed = parse_form(body)
    assert list(parsed) == ["payload", "md5"]
    assert parsed == {"payload": expected_form(payload), "md5": md5_of(payload)}


@settings(max_examples=200, deadline=None)
@given(payload=FORM_PAYLOADS)
def test_form_body_parses_back_to_the_payload_as_text(payload: dict[str, Any]) -> None:
    """Any key without "]": the pairs rebuild the payload with every leaf as text, lists as
    objects keyed by index, empty objects and lists absent (lossy by design, as documented)."""
    check_form_round_trip(payload)


@settings(deadline=None)
@example(key="a][b")
@example(key="]")
@given(key=keys(lambda char: char != "\x00").filter(lambda key: "]" in key))
def test_the_api_refuses_data_keys_holding_a_closing_bracket(key: str) -> None:
    """A "]" ends a key in bracket notation: {"a][b": "x"} would be sent as
    payload[data][a][b]=x, the form body of {"a": {"b": "x"}}. So no such key gets in."""
    for data in ({key: "x"}, {"outer": [{key: None}]}):
        with pytest.raises(ValidationError) as refused:
            EventCreate.model_validate({"type": "purchase", "app_id": "app_42", "data": data})
        [error] = refused.value.errors()
        assert error["loc"] == ("data",)
        assert "']'" in error["msg"]


# --- a JSON string UTF-8 cannot carry ---------------------------------------------------------


@settings(deadline=None)
@example(note="\ud800")
# One at a time: a high and a low surrogate side by side are a pair, which JSON reads as one
# character beyond the BMP.
@given(note=st.characters(categories=["Cs"]))
def test_the_api_refuses_data_holding_a_lone_surrogate(note: str) -> None:
    """JSON can spell a lone surrogate ("\\ud800"), UTF-8 cannot: no body could be rendered
    from it (canonical_json raises), so EventCreate refuses it, naming `data`."""
    data = json.loads(json.dumps({"note": note, note: 1}))  # as a request body spells it
    with pytest.raises(UnicodeEncodeError):
        render_body(PayloadType.JSON, event(data))
    with pytest.raises(ValidationError) as refused:
        EventCreate.model_validate({"type": "purchase", "app_id": "app_42", "data": data})
    assert [error["loc"] for error in refused.value.errors()] == [("data",)]


# --- signature -------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    payload=ANY_PAYLOADS,
    payload_type=st.sampled_from(list(PayloadType)),
    key=st.binary(min_size=1, max_size=64),
    delivery_id=st.from_regex(r"dlv_[0-9A-Za-z]{1,30}", fullmatch=True),
    data=st.data(),
)
def test_signature_verifies_with_standardwebhooks_until_one_byte_changes(
    payload: dict[str, Any],
    payload_type: PayloadType,
    key: bytes,
    delivery_id: str,
    data: st.DataObject,
) -> None:
    body, content_type = render_body(payload_type, payload)
    secret = "whsec_" + base64.b64encode(key).decode("ascii")
    timestamp = int(time.time())  # the reference verifier refuses more than five minutes off
    headers = notification_headers(
        delivery_id=delivery_id,
        timestamp=timestamp,
        body=body,
        content_type=content_type,
        secrets=[secret],
        user_agent="storehooks/test",
    )
    verifier = Webhook(secret)
    verifier.verify(body, headers, json_parse=False)

    index = data.draw(st.integers(min_value=0, max_value=len(body) - 1), label="index")
    mask = data.draw(st.integers(min_value=1, max_value=255), label="mask")
    tampered = bytearray(body)
    tampered[index] ^= mask
    changed = bytes(tampered)
    assert sign(delivery_id, timestamp, changed, [secret]) != headers["webhook-signature"]
    # standardwebhooks before 1.3 decodes the body first (UnicodeDecodeError on bytes that
    # are no longer UTF-8); 1.3 checks the raw bytes (WebhookVerificationError). Either
    # way the changed body is refused, which is what a receiver relies on.
    with pytest.raises((WebhookVerificationError, UnicodeDecodeError)):
        verifier.verify(changed, headers, json_parse=False)
