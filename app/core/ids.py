"""Opaque, time-ordered ids: `<prefix>_<ms timestamp><sequence><random>`.

Ids sort by creation time (monotonic within one process), so "newest first"
is `ORDER BY id DESC` and a cursor is simply the last id seen.
"""

import re
import secrets
import threading
import time

ID_PATTERN = re.compile(r"[a-z]+_[0-9a-f]{32}")

_lock = threading.Lock()
_last_ms = 0
_sequence = 0


def new_id(prefix: str) -> str:
    global _last_ms, _sequence
    with _lock:
        now_ms = max(int(time.time() * 1000), _last_ms)
        _sequence = _sequence + 1 if now_ms == _last_ms else 0
        if _sequence > 0xFFFF:  # more than 65,536 ids in one millisecond: borrow the next one
            now_ms, _sequence = now_ms + 1, 0
        _last_ms = now_ms
        sequence = _sequence
    return f"{prefix}_{now_ms:012x}{sequence:04x}{secrets.token_hex(8)}"
