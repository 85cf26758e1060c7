"""docs/receiving.md's own receivers, taken from the page (the blocks after its
``<!-- file: NAME -->`` markers), run against real storehooks deliveries: the Python one
with this interpreter, the JavaScript one with node and the npm packages locked in
tests/receivers/js, the PHP one with PHP's built-in server. Each verifies, parses and
md5-checks a ping and a purchase of every payload type and answers 200, and answers 400
to a real delivery with one byte of its body changed; the same with an ed25519 webhook's
public key (v1a), and with the key each holds through a rotation and a change of scheme.
The md5 recipes of the three languages are also checked over generated payloads, JSON,
XML and form."""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from arq.worker import Worker
from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.core.enums import PayloadType
from tests.conftest import ROOT, Tenant, free_port
from tests.support.line_servers import LineServer, line_server
from tests.support.receivers import Received, Receiver
from tests.workers.conftest import post_purchase, wait_for_delivery
from tests.workers.test_lifecycle import ping
from tests.workers.test_payload_properties import (
    event,
    is_xml_char,
    is_xml_name,
    keys,
    payloads,
    texts,
)
from workers.payloads import canonical_json, payload_md5, render_body

GUIDE = ROOT / "docs" / "receiving.md"
JS_PACKAGES = ROOT / "tests" / "receivers" / "js"
SNIPPET = re.compile(r"^<!-- file: (\S+) -->\n```\w+\n(.*?)^```$", re.DOTALL | re.MULTILINE)
SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
# Element names fast-xml-parser throws on (prototype pollution): docs/receiving.md says so.
FAST_XML_PARSER_REFUSES = ("__proto__", "constructor", "prototype")


def server_command(language: str, port: int) -> list[str]:
    return {
        "python": [sys.executable, "server.py"],
        "javascript": ["node", "server.mjs"],
        "php": ["php", "-S", f"127.0.0.1:{port}", "server.php"],
    }[language]


# Text alone: what every format carries exactly, so the md5 matches in all three.
TEXT_DATA = {
    "order_id": "o-1",
    "amount": "4.99",
    "buyer": "Zoë <&> \"'",
    "note": {"gift_for": "Ünal"},
}
# What the JavaScript recipe of the old guide got wrong: 5.0, an integer beyond
# 2^53, 1e-07, and "😀" sorted before U+FFEE; then JSON types that XML and form lose.
TYPED_DATA = {
    "price": 5.0,
    "big": 2**64 + 1,
    "tiny": 1e-07,
    "\U0001f600": "grin",
    "\uffee": "halfwidth",
    "items": [1, True, None, {"z": "", "a": -2.5}],  # not -0.0: jsonb stores it as 0.0
    "text": "line\nbreak\ttab\x01",
}


def guide_files() -> dict[str, str]:
    files = dict(SNIPPET.findall(GUIDE.read_text(encoding="utf-8")))
    expected = {f"{name}.{ext}" for name in ("receive", "server") for ext in ("py", "mjs", "php")}
    # catch_up.py, the guide's client of the reconciliation feed, is run by
    # tests/test_reconciliation_feed.py.
    assert set(files) == expected | {"catch_up.py"}, set(files)
    return {name: text for name, text in files.items() if name in expected}


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """tests/receivers/js/node_modules, installed by `npm ci` from the committed lock."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed: apt-get install nodejs npm (.ci/run does)")
    lock = JS_PACKAGES / "package-lock.json"
    installed = JS_PACKAGES / "node_modules" / ".package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=JS_PACKAGES,
            check=True,
        )
    return JS_PACKAGES / "node_modules"


@pytest.fixture(scope="session")
def guide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the guide's receivers, as a reader would save them."""
    directory = tmp_path_factory.mktemp("guide")
    for name, text in guide_files().items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


@pytest.fixture(scope="session")
def js_guide(guide: Path, node_modules: Path) -> Path:
    (guide / "node_modules").symlink_to(node_modules, target_is_directory=True)
    return guide


@pytest.fixture(scope="session")
def php_guide(guide: Path) -> Path:
    php = shutil.which("php")
    extensions = subprocess.run([php, "-m"], capture_output=True, text=True).stdout if php else ""
    if "SimpleXML" not in extensions.split():
        pytest.fail("PHP with SimpleXML is needed: apt-get install php-cli php-xml (.ci/run does)")
    return guide


@pytest.fixture(params=["python", "javascript", "php"])
def language(request: pytest.FixtureRequest) -> str:
    if request.param != "python":
        request.getfixturevalue({"javascript": "js_guide", "php": "php_guide"}[request.param])
    return str(request.param)


@asynccontextmanager
async def guide_server(
    guide: Path, language: str, key: str, port: int
) -> AsyncIterator[LineServer]:
    """The guide's server in `language` on 127.0.0.1:`port`, holding `key`: a webhook's
    secret, or an ed25519 webhook's public key."""
    env = dict(os.environ, STOREHOOKS_KEY=key, PORT=str(port))
    # PHP's built-in server announces itself on stderr: wait for its port instead.
    announced = port if language == "php" else None
    async with line_server(
        *server_command(language, port), cwd=guide, env=env, port=announced
    ) as server:
        yield server


def receivers_key(webhook: dict[str, Any]) -> str:
    """What a receiver verifies with: the secret, or an ed25519 webhook's public key."""
    ed25519 = webhook["signature_scheme"] == "ed25519"
    key: str = webhook["public_key"] if ed25519 else webhook["secret"]
    return key


@asynccontextmanager
async def webhook_to_the_guide(
    tenant: Tenant, guide: Path, language: str, **fields: Any
) -> AsyncIterator[tuple[dict[str, Any], LineServer]]:
    """A webhook (`fields` over the defaults, bound to purchases of app_42) whose URL is
    the guide's server in `language`, holding the webhook's key."""
    port = free_port()
    webhook = await tenant.subscribed_webhook(url=f"http://127.0.0.1:{port}/hook", **fields)
    async with guide_server(guide, language, receivers_key(webhook), port) as server:
        yield webhook, server


@pytest.fixture(params=list(PayloadType), ids=lambda kind: kind.value)
async def receiver_of_the_guide(
    request: pytest.FixtureRequest, tenant: Tenant, guide: Path, language: str
) -> AsyncIterator[tuple[dict[str, Any], LineServer]]:
    """A webhook of each payload type whose URL is the guide's server in `language`."""
    async with webhook_to_the_guide(
        tenant, guide, language, payload_type=request.param.value
    ) as running:
        yield running


@pytest.fixture
async def ed25519_receiver_of_the_guide(
    tenant: Tenant, guide: Path, language: str
) -> AsyncIterator[tuple[dict[str, Any], LineServer]]:
    """An ed25519 webhook whose URL is the guide's server in `language`, holding its
    public key."""
    async with webhook_to_the_guide(tenant, guide, language, signature_scheme="ed25519") as running:
        yield running


async def stored(tenant: Tenant, server: LineServer, delivery_id: str) -> dict[str, Any]:
    """What the guide's server printed for a delivery that succeeded."""
    delivery = await wait_for_delivery(tenant, delivery_id)
    assert delivery["status"] == "succeeded", delivery
    printed: dict[str, Any] = await server.json_document()
    assert printed["webhook-id"] == delivery_id
    assert set(printed) == {"webhook-id", "md5_matches", "payload", "md5"}
    return printed


def as_json(value: Any) -> str:
    """Compared as JSON text, so that 5 and 5.0, 1 and True, 0.0 and -0.0 differ."""
    return json.dumps(value, sort_keys=True)


async def test_a_ping_and_a_purchase_verify_parse_and_match_their_md5(
    tenant: Tenant, worker: Worker, receiver_of_the_guide: tuple[dict[str, Any], LineServer]
) -> None:
    webhook, server = receiver_of_the_guide
    pinged = await stored(tenant, server, await ping(tenant, webhook["id"]))
    assert pinged["payload"]["type"] == "ping"
    assert type(pinged["payload"]["epoch_timestamp"]) is int
    assert pinged["md5"] == payload_md5(pinged["payload"])
    assert pinged["md5_matches"] is True

    delivery_id = await post_purchase(tenant, sku_id=None, data=TEXT_DATA)
    bought = await stored(tenant, server, delivery_id)
    event_id = (await tenant.fetch(f"/deliveries/{delivery_id}"))["event_id"]
    occurred = bought["payload"]["epoch_timestamp"]
    expected = {
        "type": "purchase",
        "epoch_timestamp": occurred,
        "event_id": event_id,
        "app_id": "app_42",
        "sku_id": None,
        "data": TEXT_DATA,
    }
    assert as_json(bought["payload"]) == as_json(expected)
    assert type(occurred) is int
    assert bought["md5"] == payload_md5(expected)
    assert bought["md5_matches"] is True


async def test_typed_data_matches_its_md5_in_json_and_only_there(
    tenant: Tenant, worker: Worker, receiver_of_the_guide: tuple[dict[str, Any], LineServer]
) -> None:
    """Numbers, booleans, nulls, lists and non-BMP keys: a JSON body is parsed to exactly
    these values and its md5 matches; XML and form bodies bring them as text, and the md5
    check says no, as the guide states (the notification is still taken, 200)."""
    webhook, server = receiver_of_the_guide
    printed = await stored(tenant, server, await post_purchase(tenant, data=TYPED_DATA))
    if webhook["payload_type"] == "json":
        assert as_json(printed["payload"]["data"]) == as_json(TYPED_DATA)
        assert printed["md5_matches"] is True
    else:
        assert printed["payload"]["data"]["price"] == "5.0"
        assert printed["md5_matches"] is False


async def sent_to(tenant: Tenant, receiver: Receiver, webhook: dict[str, Any]) -> Received:
    """A purchase as the worker sends it to `webhook`, recorded by `receiver` (the webhook
    points there meanwhile)."""
    path = f"/webhooks/{webhook['id']}"
    moved = await tenant.api.patch(path, json={"url": receiver.url})
    assert moved.status_code == 200, moved.text
    delivery_id = await post_purchase(tenant, data=TEXT_DATA)
    assert (await wait_for_delivery(tenant, delivery_id))["status"] == "succeeded"
    back = await tenant.api.patch(path, json={"url": webhook["url"]})
    assert back.status_code == 200, back.text
    return receiver.requests[-1]


async def replayed(url: str, sent: Received, body: bytes | None = None) -> int:
    """The status `url` answers to `sent` again, with the same headers (and `body`)."""
    headers = {name: sent.headers[name] for name in ("content-type", *SIGNATURE_HEADERS)}
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            url, content=sent.body if body is None else body, headers=headers
        )
    return answer.status_code


def one_byte_changed(body: bytes) -> bytes:
    at = body.index(b"o-1")
    return body[:at] + b"o-2" + body[at + 3 :]


async def test_a_real_delivery_with_one_byte_changed_is_answered_400(
    tenant: Tenant,
    worker: Worker,
    receiver: Receiver,
    receiver_of_the_guide: tuple[dict[str, Any], LineServer],
) -> None:
    """A purchase as the worker sent it, replayed to the guide's server: as sent it is
    taken, with one byte of its body changed (the same headers) it is refused."""
    webhook, server = receiver_of_the_guide
    sent = await sent_to(tenant, receiver, webhook)
    assert await replayed(webhook["url"], sent) == 200
    assert (await server.json_document())["webhook-id"] == sent.headers["webhook-id"]
    assert await replayed(webhook["url"], sent, one_byte_changed(sent.body)) == 400


# --- ed25519 webhooks (v1a) ----------------------------------------------------------------


async def test_an_ed25519_webhook_verifies_with_its_public_key(
    tenant: Tenant,
    worker: Worker,
    ed25519_receiver_of_the_guide: tuple[dict[str, Any], LineServer],
) -> None:
    webhook, server = ed25519_receiver_of_the_guide
    assert webhook["secret"] is None
    pinged = await stored(tenant, server, await ping(tenant, webhook["id"]))
    assert pinged["payload"]["type"] == "ping"
    bought = await stored(tenant, server, await post_purchase(tenant, data=TEXT_DATA))
    assert bought["payload"]["data"] == TEXT_DATA
    assert bought["md5_matches"] is True


async def test_an_ed25519_delivery_with_one_byte_changed_is_answered_400(
    tenant: Tenant,
    worker: Worker,
    receiver: Receiver,
    ed25519_receiver_of_the_guide: tuple[dict[str, Any], LineServer],
) -> None:
    webhook, server = ed25519_receiver_of_the_guide
    sent = await sent_to(tenant, receiver, webhook)
    assert sent.headers["webhook-signature"].startswith("v1a,")
    assert await replayed(webhook["url"], sent) == 200
    assert (await server.json_document())["webhook-id"] == sent.headers["webhook-id"]
    assert await replayed(webhook["url"], sent, one_byte_changed(sent.body)) == 400
    later = int(sent.headers["webhook-timestamp"]) + 1
    moved = Received(
        sent.method, sent.path, {**sent.headers, "webhook-timestamp": str(later)}, sent.body, 200
    )
    assert await replayed(webhook["url"], moved) == 400


async def test_the_public_key_a_receiver_holds_keeps_verifying_after_a_rotation(
    tenant: Tenant,
    worker: Worker,
    ed25519_receiver_of_the_guide: tuple[dict[str, Any], LineServer],
) -> None:
    webhook, server = ed25519_receiver_of_the_guide
    rotated = await tenant.api.post(f"/webhooks/{webhook['id']}/secret/rotate")
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["public_key"] != webhook["public_key"]
    printed = await stored(tenant, server, await post_purchase(tenant, data=TEXT_DATA))
    assert printed["md5_matches"] is True


async def test_the_old_secret_and_the_new_public_key_both_verify_after_a_change_of_scheme(
    tenant: Tenant, worker: Worker, receiver: Receiver, guide: Path, language: str
) -> None:
    """hmac-sha256 → ed25519: the receiver holding the secret keeps taking notifications
    (its v1 entry), and one given the new public key takes the same ones (the v1a entry)."""
    async with webhook_to_the_guide(tenant, guide, language) as (webhook, holding_secret):
        switched = await tenant.api.patch(
            f"/webhooks/{webhook['id']}", json={"signature_scheme": "ed25519"}
        )
        assert switched.status_code == 200, switched.text
        await stored(tenant, holding_secret, await post_purchase(tenant, data=TEXT_DATA))
        sent = await sent_to(tenant, receiver, webhook)
    entries = sent.headers["webhook-signature"].split(" ")
    assert [entry.split(",")[0] for entry in entries] == ["v1a", "v1"]
    port = free_port()
    public_key = switched.json()["public_key"]
    async with guide_server(guide, language, public_key, port) as holding_public_key:
        assert await replayed(f"http://127.0.0.1:{port}/hook", sent) == 200
        printed = await holding_public_key.json_document()
    assert printed["webhook-id"] == sent.headers["webhook-id"]


# --- the md5 recipes over generated payloads ---------------------------------------------

# One [content type, body] per line in, one [canonical payload, md5 matches] per line out
# (the error and null when the recipe threw).
NODE_HARNESS = """\
import { createInterface } from "node:readline";
import { canonical, md5Matches, parse } from "./receive.mjs";

for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  const [contentType, body] = JSON.parse(line);
  try {
    const notification = parse(Buffer.from(body, "utf8"), contentType);
    console.log(JSON.stringify([canonical(notification.payload), md5Matches(notification)]));
  } catch (error) {
    console.log(JSON.stringify([`${error}`, null]));
  }
}
"""
PHP_HARNESS = """\
<?php
require __DIR__ . '/receive.php';

while (($line = fgets(STDIN)) !== false) {
    [$contentType, $body] = json_decode($line, false, 512, JSON_THROW_ON_ERROR);
    try {
        $notification = parse($body, $contentType);
        $answer = [canonical($notification->payload), md5_matches($notification)];
    } catch (Throwable $error) {
        $answer = [(string) $error, null];
    }
    fwrite(STDOUT, json_encode($answer, JSON_UNESCAPED_UNICODE | JSON_THROW_ON_ERROR) . "\\n");
}
"""
HARNESSES = {
    "javascript": ("js_guide", "harness.mjs", NODE_HARNESS, ["node"]),
    "php": ("php_guide", "harness.php", PHP_HARNESS, ["php", "-d", "display_errors=stderr"]),
}


@dataclass
class Recipe:
    """The guide's receive.mjs or receive.php, run by a harness on one body at a time."""

    language: str
    process: subprocess.Popen[bytes]

    def run(self, content_type: str, body: bytes) -> tuple[str, bool | None]:
        """The canonical text and whether the md5 matches (the error and None on a throw)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        line = json.dumps([content_type, body.decode("utf-8")]).encode() + b"\n"
        self.process.stdin.write(line)
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        assert answer, f"the {self.language} harness exited"
        canonical, matches = json.loads(answer)
        return canonical, matches


@pytest.fixture(scope="session", params=list(HARNESSES))
def recipe(request: pytest.FixtureRequest) -> Iterator[Recipe]:
    """One long-running process per language, fed one body per line."""
    fixture, name, text, command = HARNESSES[request.param]
    directory: Path = request.getfixturevalue(fixture)
    (directory / name).write_text(text, encoding="utf-8")
    process = subprocess.Popen(
        [*command, name],
        cwd=directory,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    yield Recipe(request.param, process)
    process.kill()
    process.wait()


@pytest.fixture(scope="session")
def python_recipe(guide: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("guide_receive", guide / "receive.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def api_char(char: str) -> bool:
    """What the API lets into any text of an event: no NUL (app/text.py)."""
    return char != "\x00"


# Every payload the API can send: no NUL anywhere, no "]" in a data key (EventCreate).
API_PAYLOADS = payloads(texts(api_char), keys(lambda char: api_char(char) and char != "]"))


@settings(max_examples=300, deadline=None)
@example(payload=event(TYPED_DATA))
@example(payload=event({"\U0001f600": 1, "\uffee": 2, "\U0001f600a": [5.0, 1e-07, 2**53 + 1]}))
@given(payload=API_PAYLOADS)
def test_both_md5_recipes_give_storehooks_md5_for_any_json_body(
    payload: dict[str, Any],
    recipe: Recipe,
    python_recipe: ModuleType,
) -> None:
    body, content_type = render_body(PayloadType.JSON, payload)
    assert python_recipe.md5_matches(python_recipe.parse(body, content_type)) is True
    canonical, matches = recipe.run(content_type, body)
    assert canonical == canonical_json(payload).decode("utf-8")
    assert matches is True


def text_data(key: st.SearchStrategy[str], text: st.SearchStrategy[str]) -> Any:
    """`data` of strings and non-empty objects of them: what docs/receiving.md says an XML
    or form body carries exactly enough for the md5."""
    values = st.recursive(
        text, lambda children: st.dictionaries(key, children, min_size=1, max_size=3), max_leaves=8
    )
    return st.dictionaries(key, values, max_size=4).map(event)


XML_NAMES = st.one_of(
    st.from_regex(r"[A-Za-z_\u00c0-\u02ff][A-Za-z0-9_.\-\u00b7\u00c0-\u02ff]*", fullmatch=True),
    st.sampled_from(["__proto__", "hasOwnProperty", "toString", "item", "key", "n123", "type"]),
).filter(lambda name: is_xml_name(name) and name not in FAST_XML_PARSER_REFUSES)


@settings(max_examples=100, deadline=None)
@given(payload=text_data(XML_NAMES, texts(is_xml_char).filter(bool)))
def test_an_xml_body_of_text_data_matches_its_md5_in_both_recipes(
    payload: dict[str, Any],
    recipe: Recipe,
    python_recipe: ModuleType,
) -> None:
    check_text_body(PayloadType.XML, payload, recipe, python_recipe)


@settings(max_examples=100, deadline=None)
@given(payload=text_data(keys(lambda char: api_char(char) and char != "]"), texts(api_char)))
def test_a_form_body_of_text_data_matches_its_md5_in_both_recipes(
    payload: dict[str, Any],
    recipe: Recipe,
    python_recipe: ModuleType,
) -> None:
    check_text_body(PayloadType.FORM, payload, recipe, python_recipe)


def check_text_body(
    payload_type: PayloadType,
    payload: dict[str, Any],
    recipe: Recipe,
    python_recipe: ModuleType,
) -> None:
    body, content_type = render_body(payload_type, payload)
    assert python_recipe.md5_matches(python_recipe.parse(body, content_type)) is True
    canonical, matches = recipe.run(content_type, body)
    assert canonical == canonical_json(payload).decode("utf-8")
    assert matches is True


@pytest.mark.parametrize("name", FAST_XML_PARSER_REFUSES)
def test_an_xml_body_with_a_data_key_fast_xml_parser_refuses_throws_in_javascript(
    name: str, recipe: Recipe, python_recipe: ModuleType
) -> None:
    """The one limit of the JavaScript receiver that the guide states beyond the md5's:
    its XML parser throws on these element names (Python's and PHP's parse them)."""
    body, content_type = render_body(PayloadType.XML, event({name: "x"}))
    assert python_recipe.md5_matches(python_recipe.parse(body, content_type)) is True
    error, matches = recipe.run(content_type, body)
    if recipe.language == "javascript":
        assert matches is None
        assert "prototype pollution" in error
    else:
        assert matches is True, error
