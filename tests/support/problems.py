"""Checks for RFC 9457 problem answers, the one shape of every error (docs/api.md#errors)."""

from typing import Any

import httpx

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_FIELDS = frozenset({"type", "title", "status", "detail"})
ERROR_FIELDS = frozenset({"loc", "msg"})

Loc = list[str | int]


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Asserts that `response` is a problem of `status`, and returns its body.

    The status code; the content type, exactly `application/problem+json`; exactly the
    fields type, title, status and detail (plus `errors` on a 422, and only there); the
    body's `status` equal to the code; type, title and detail non-empty strings. On a 422,
    `errors` is a non-empty list of objects with exactly a non-empty `loc` list of
    strings and integers and a non-empty `msg` string.
    """
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE, response.headers
    body: dict[str, Any] = response.json()
    assert set(body) == (PROBLEM_FIELDS | {"errors"} if status == 422 else PROBLEM_FIELDS), body
    assert body["status"] == status, body
    for name in ("type", "title", "detail"):
        assert isinstance(body[name], str) and body[name], body
    if status == 422:
        assert isinstance(body["errors"], list) and body["errors"], body
        for error in body["errors"]:
            assert set(error) == ERROR_FIELDS, error
            loc, msg = error["loc"], error["msg"]
            assert isinstance(loc, list) and loc, error
            assert all(isinstance(part, str | int) for part in loc), error
            assert isinstance(msg, str) and msg, error
    return body


def error_locs(response: httpx.Response) -> list[Loc]:
    """The `loc` of each error of a 422 problem (checked as `assert_problem` does), in order."""
    body = assert_problem(response, 422)
    return [error["loc"] for error in body["errors"]]


def assert_invalid(response: httpx.Response, field: str) -> None:
    """Asserts a 422 problem with an error whose `loc` ends with `field`."""
    locs = error_locs(response)
    assert any(loc[-1] == field for loc in locs), locs
