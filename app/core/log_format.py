"""Structured logs: one JSON object per line, for the API (uvicorn included) and the workers.

Fields passed with `extra=` become top-level keys. Nothing here logs request headers
or bodies, so API keys, webhook secrets and signatures never reach a log line.
"""

import logging
import logging.config
from datetime import UTC, datetime
from typing import Any

import orjson

_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """A dictConfig for the root logger and uvicorn's loggers alike."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["default"], "level": level, "propagate": False},
            # arq logs every job start and end (the 5-second sweeps included); the
            # worker's own line per attempt says what matters.
            "arq": {"level": "WARNING"},
            # dicttoxml logs every value it converts: payload data stays out of logs.
            "dicttoxml": {"level": "WARNING"},
            # httpx logs every request's full URL, query string (and any token in it)
            # included; the attempt line says what was sent where, by id.
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
            # aiosqlite logs every statement with its parameters at DEBUG: webhook
            # secrets and Ed25519 private keys among them.
            "aiosqlite": {"level": "WARNING"},
        },
    }


def configure(level: str = "INFO") -> None:
    logging.config.dictConfig(logging_config(level))
