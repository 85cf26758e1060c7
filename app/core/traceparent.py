"""W3C Trace Context's `traceparent` header: read one, make one, write one.

Pure and free of OpenTelemetry, because the header travels whether tracing is on or off:
`POST /events` stores the caller's (or a new one) with the event, and every notification
of that event carries it on, so a receiver can join its own trace to the store's request
even when storehooks exports nothing (docs/decisions.md#tracing).
"""

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

# version-trace_id-parent_id-flags, lowercase hex. A later version may append fields
# after a dash; its first four are read as version 00's (the specification's rule).
_HEADER = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_INVALID_TRACE_ID = "0" * 32
_INVALID_PARENT_ID = "0" * 16
SAMPLED = "01"


@dataclass(frozen=True)
class TraceParent:
    trace_id: str  # 32 lowercase hex digits, not all zero
    parent_id: str  # 16 lowercase hex digits, not all zero: the caller's span
    flags: str  # 2 lowercase hex digits; 01 is "sampled"

    @property
    def header(self) -> str:
        """Always written as version 00, the version this code speaks."""
        return f"00-{self.trace_id}-{self.parent_id}-{self.flags}"


def parse(value: str) -> TraceParent | None:
    """The header's value, or None when it is not a valid one (the specification's
    answer to that is to start a new trace, not to refuse the request)."""
    found = _HEADER.fullmatch(value.strip())
    if found is None:
        return None
    version, trace_id, parent_id, flags, rest = found.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == _INVALID_TRACE_ID or parent_id == _INVALID_PARENT_ID:
        return None
    return TraceParent(trace_id, parent_id, flags)


def from_headers(values: Sequence[str]) -> TraceParent | None:
    """The request's one `traceparent`; two or more of them are invalid together."""
    return parse(values[0]) if len(values) == 1 else None


def new() -> TraceParent:
    """A new trace whose first hop is ours. Flagged sampled: a receiver whose sampler
    follows its parent (OpenTelemetry's default) then records its side."""
    return TraceParent(secrets.token_hex(16), secrets.token_hex(8), SAMPLED)
