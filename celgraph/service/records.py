"""Job records of the service, and the store that keeps them on disk so they survive restarts.

On disk (`--state-dir`, default `$CELGRAPH_STATE` or `~/.local/state/celgraph/server`):

    jobs/<id>.json           the job record, rewritten atomically (temp file + rename) at each
                             state change: queued → running → succeeded | failed | cancelled
    jobs/<id>.events.jsonl   its events, one JSON object per line, appended and flushed as they
                             happen (seq 1, 2, 3, ... with no gaps)

The job manager that runs them is `service/jobs.py`.
"""
from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..core.atomic import write_text

log = logging.getLogger(__name__)

STATES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
TERMINAL = frozenset({"succeeded", "failed", "cancelled", "interrupted"})
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_LABEL = 256         # characters of a job label (every ListJobs answer carries every label)
FINAL_EVENT = "job_finished"


def valid_job_id(text: str) -> bool:
    """Job ids are 32 lowercase hex digits (they name files: nothing else is accepted)."""
    return isinstance(text, str) and bool(_JOB_ID.match(text))


def default_state_dir() -> Path:
    env = os.environ.get("CELGRAPH_STATE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "celgraph" / "server"


@dataclass
class JobRecord:
    """What GetJob answers, and what is persisted as jobs/<id>.json."""
    id: str
    state: str = "queued"
    created: float = 0.0
    started: float = 0.0
    finished: float = 0.0
    targets: list[str] = field(default_factory=list)
    frames: str = ""
    base_dir: str = ""
    label: str = ""
    workers: int = 0
    no_cache: bool = False
    scene: str = ""                      # the submitted scene.json text (to resubmit or debug)
    error: dict | None = None            # {code, message, node, node_type, frame, exception, issues}
    outputs: list[dict] = field(default_factory=list)
    tasks_total: int = 0
    tasks_done: int = 0
    tasks_cached: int = 0
    last_seq: int = 0
    cancel_requested: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "JobRecord":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


def _atomic_write(path: Path, text: str) -> None:
    write_text(path, text)


class JobStore:
    """The records and event logs of jobs under `<state_dir>/jobs/`."""

    def __init__(self, state_dir: str | os.PathLike):
        self.root = Path(state_dir).expanduser().resolve()
        self.jobs = self.root / "jobs"
        self.jobs.mkdir(parents=True, exist_ok=True)

    def record_path(self, job_id: str) -> Path:
        assert valid_job_id(job_id)
        return self.jobs / f"{job_id}.json"

    def events_path(self, job_id: str) -> Path:
        assert valid_job_id(job_id)
        return self.jobs / f"{job_id}.events.jsonl"

    def save(self, record: JobRecord) -> None:
        _atomic_write(self.record_path(record.id), json.dumps(record.to_dict(), default=str))

    def load_all(self) -> list[JobRecord]:
        out = []
        for p in self.jobs.glob("*.json"):
            if not valid_job_id(p.stem):
                continue
            try:
                out.append(JobRecord.from_dict(json.loads(p.read_text(encoding="utf-8"))))
            except (OSError, ValueError, TypeError) as e:
                log.warning("skipping unreadable job record %s: %s", p, e)
        return sorted(out, key=lambda r: r.created)

    def read_events(self, job_id: str) -> list[dict]:
        """The job's logged events: the longest run seq 1, 2, ... of whole, valid lines."""
        events: list[dict] = []
        try:
            with open(self.events_path(job_id), encoding="utf-8") as f:
                for line in f:
                    if not line.endswith("\n"):
                        break                       # a line cut short by a crash
                    try:
                        ev = json.loads(line)
                    except ValueError:
                        break
                    if not isinstance(ev, dict) or ev.get("seq") != len(events) + 1:
                        break
                    events.append(ev)
        except FileNotFoundError:
            pass
        return events

    def last_event(self, job_id: str) -> dict | None:
        """The last whole line of the job's log (cheap: reads the file's tail), or None."""
        try:
            with open(self.events_path(job_id), "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 65536))
                tail = f.read()
        except OSError:
            return None
        if not tail.endswith(b"\n"):
            return None
        try:
            return json.loads(tail.rstrip(b"\n").rsplit(b"\n", 1)[-1])
        except ValueError:
            return None

    def rewrite_events(self, job_id: str, events: list[dict]) -> None:
        _atomic_write(self.events_path(job_id), "".join(json.dumps(e, default=str) + "\n" for e in events))

    def open_log(self, job_id: str):
        return open(self.events_path(job_id), "a", encoding="utf-8")

    def delete(self, job_id: str) -> None:
        self.record_path(job_id).unlink(missing_ok=True)
        self.events_path(job_id).unlink(missing_ok=True)
