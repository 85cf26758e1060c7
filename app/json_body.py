"""Decodes JSON request bodies so that nothing a client sent is changed without a word.

Python's `json` reads `NaN`, `Infinity` and `-Infinity` (no JSON at all) as floats,
reads `1e309` as infinity, and every one of them would be stored as `null`; a number
with more digits than a 64-bit float keeps would be stored rounded; and an integer of
more than 4,300 digits raises a `ValueError` that FastAPI answers with a bare `400`.
An object that names a key twice (`{"active": true, "active": false}`) would keep the
last value and drop the first, though another decoder (or the client's own reading)
may keep the first. Here each becomes a `422` naming the field (docs/api.md, Errors):
the decoder marks what it cannot keep, and one walk over the decoded body finds where
the marks are.
"""

import json
import math
import sys
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

NOT_FINITE = "must be a finite number (NaN and Infinity are not JSON numbers)"
DUPLICATE = "a JSON object may name each key once"


class _Refused:
    """Stands in the decoded body for a number that cannot be kept as written."""

    __slots__ = ("msg",)

    def __init__(self, msg: str) -> None:
        self.msg = msg


def decode(body: bytes) -> Any:
    """The decoded body, or a RequestValidationError naming every number it cannot keep
    and every key named twice in one object."""
    refused: list[_Refused] = []

    def refuse(msg: str) -> _Refused:
        refused.append(_Refused(msg))
        return refused[-1]

    def parse_float(text: str) -> float | _Refused:
        value = float(text)
        if not math.isfinite(value):
            return refuse(f"{NOT_FINITE}: {text[:40]} is beyond a 64-bit float")
        if Decimal(text) != Decimal(repr(value)):
            return refuse(
                f"has more digits than a 64-bit float keeps: {text[:40]} would become {value!r}"
            )
        return value

    def parse_int(text: str) -> int | _Refused:
        try:
            return int(text)
        except ValueError:  # over sys.get_int_max_str_digits() (4,300) digits
            return refuse(f"must be an integer of at most {sys.get_int_max_str_digits():,} digits")

    def object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):  # beyond the call, all that an object pays
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    obj[key] = refuse(f"Duplicate key {key[:40]!r}: {DUPLICATE}.")
                seen.add(key)
        return obj

    decoded = json.loads(
        body,
        parse_float=parse_float,
        parse_int=parse_int,
        parse_constant=lambda _: refuse(NOT_FINITE),
        object_pairs_hook=object_pairs,
    )
    if refused:
        raise RequestValidationError(_errors(decoded))
    return decoded


def _errors(decoded: Any) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    stack: list[tuple[tuple[str | int, ...], Any]] = [(("body",), decoded)]
    while stack:  # no recursion: the body may nest as deeply as the decoder allows
        loc, node = stack.pop()
        if isinstance(node, _Refused):
            errors.append({"type": "json_invalid", "loc": loc, "msg": node.msg, "input": {}})
        elif isinstance(node, dict):
            stack.extend(((*loc, _printable(key)), child) for key, child in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend(((*loc, index), child) for index, child in reversed(list(enumerate(node))))
    return errors


def _printable(key: str) -> str:
    """`key` as the answer can carry it: JSON may spell a lone surrogate ("\\ud800"), which
    the UTF-8 of the answer cannot hold (a 500), so it is named by its escape instead."""
    return key.encode("utf-8", "backslashreplace").decode("utf-8")


class _JsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = decode(await self.body())
        return self._json


class JsonRoute(APIRoute):
    """The route class of every router whose routes take a JSON body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            return await handler(_JsonRequest(request.scope, request.receive))

        return handle
