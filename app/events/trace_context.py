"""The `traceparent` header of POST /events: the W3C trace the event's notifications
continue (docs/api.md#events).

Never a reason to refuse an event: a missing, malformed or repeated header starts a new
trace, as the W3C specification says a receiver of an invalid one should. An event is
the store's business; its trace is a convenience.
"""

from typing import Annotated

from fastapi import Depends, Header, Request

from app.core import traceparent, tracing

HEADER = "traceparent"


async def event_traceparent(
    request: Request,
    traceparent_header: Annotated[
        str | None,
        Header(
            alias=HEADER,
            description="W3C Trace Context: the trace this event's notifications continue. "
            "Malformed or absent: a new trace is started (never a 422).",
        ),
    ] = None,
) -> str:
    """What is stored with the event: the span of this request when tracing records it
    (a child of the caller's), else the caller's valid header, else a new trace."""
    recorded = tracing.current_traceparent()
    if recorded is not None:
        return recorded
    given = traceparent.from_headers(request.headers.getlist(HEADER))
    return (given or traceparent.new()).header


TraceParentDep = Annotated[str, Depends(event_traceparent)]
