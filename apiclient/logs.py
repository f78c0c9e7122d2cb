"""Structured JSON logs for every component that talks to the API (scheduler, controllers, kubelet, proxy).

One JSON object a line on stderr: ``ts``, ``level``, ``logger``, ``msg`` and any ``extra={...}``
fields the call passed, so a test or an operator can grep a log for ``"event": "bound"`` instead
of parsing prose. Kept here (not imported from the store) because components must not import
server packages.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged as a field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class JsonLogFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def setup_logging(level: str = "INFO", *, stream: Any = None) -> None:
    """Route the root logger to one JSON line per record on ``stream`` (stderr by default)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def dump_tasks_on_signal(loop: Any, signum: int | None = None) -> None:
    """On SIGUSR1 (by default) log every asyncio task with its stack: a stuck coroutine shows where it waits.

    The operator's answer to "the component is alive but does nothing" (Go programs print goroutines on
    SIGQUIT); tests use it to explain a hang before they tear the process down.
    """
    import asyncio
    import io
    import signal as signals

    def dump() -> None:
        for task in asyncio.all_tasks(loop):
            out = io.StringIO()
            task.print_stack(limit=30, file=out)
            logging.getLogger("tasks").warning("task %s", task.get_name(),
                                               extra={"event": "task_dump", "stack": out.getvalue()})

    loop.add_signal_handler(signum or signals.SIGUSR1, dump)
