"""The `Idempotency-Key` header of POST /events: sent once, or not at all.

FastAPI's `Header()` reads the first of repeated headers and drops the rest without a
word, while a proxy, a log or another framework may read the last, or join them with a
comma. A request naming two keys cannot be honoured under both, and replaying the
answer of the wrong one would hide an event, so any repetition is a `422` naming the
header, even of one value twice (Stripe, too, takes one key per request).
"""

from typing import Annotated

from fastapi import Depends, Header, Request
from pydantic import AfterValidator

from app.errors import Unprocessable
from app.text import storable_optional

HEADER = "idempotency-key"
REPEATED = "must be sent once; this request carries the header {count} times"


async def idempotency_key(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=255,
            description="Repeats within 24 h answer the first response and create nothing. "
            "Send it once: two on one request are refused (422).",
        ),
        AfterValidator(storable_optional),
    ] = None,
) -> str | None:
    count = len(request.headers.getlist(HEADER))
    if count > 1:
        raise Unprocessable(["header", HEADER], REPEATED.format(count=count))
    return idempotency_key


IdempotencyKeyDep = Annotated[str | None, Depends(idempotency_key)]
