"""Run events: what a progress bar, a log, a JSON-lines consumer or the gRPC WatchJob stream sees.

Kinds: run_started, task_cached, task_started, task_progress, task_finished, task_failed,
run_finished. Every event of a run has an increasing `seq`, so a consumer that reconnects can ask
for what it missed.
"""
from __future__ import annotations

import itertools
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable


@dataclass
class Event:
    kind: str
    seq: int = 0
    time: float = field(default_factory=time.time)
    node: str | None = None
    type: str | None = None
    frame: int | None = None
    key: str | None = None
    progress: float | None = None        # 0..1 inside a task
    message: str = ""
    seconds: float | None = None         # task_finished: compute time
    data: dict[str, Any] = field(default_factory=dict)   # run totals, error details, status

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, "", {})}


Listener = Callable[[Event], None]


class EventBus:
    """Fans events out to listeners, numbering them. Listener errors never break a run."""

    def __init__(self, listeners: list[Listener] | None = None):
        self._listeners = [l for l in (listeners or []) if l is not None]
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def emit(self, kind: str, **fields) -> Event:
        with self._lock:
            ev = Event(kind, seq=next(self._seq), **fields)
            for listener in self._listeners:
                try:
                    listener(ev)
                except Exception:  # a broken progress bar must not fail the render
                    pass
        return ev
