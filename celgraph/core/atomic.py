"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Every writer in celgraph (disk store entries, scene files, output frames, weights, job records,
benchmark tables) goes through here. The temporary file has a unique name in the target's folder
(same file system, so the final rename is atomic), so two writers of one path never share a
temporary file; the last rename wins. On any error the temporary file is removed and the target is
left as it was. The temporary name says who writes it — ``.STEM.HOST-PID-RANDOM.tmp.EXT``, HOST a
CRC of the host name — so what a killed writer left can be recognised and swept later
(celgraph.nodes.io.sweep_stale_temps).
"""
from __future__ import annotations

import contextlib
import os
import socket
import uuid
import zlib
from pathlib import Path
from typing import IO, Iterator

WRITER = f"{zlib.crc32(socket.gethostname().encode()):08x}-{os.getpid()}"    # host, process


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path``; on a clean exit it replaces ``path``.

    For libraries that write by file name (safetensors, OpenImageIO, numpy). ``suffix`` defaults
    to the target's own suffix, so a writer that picks its format from the name still sees it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = path.suffix if suffix is None else suffix
    while True:
        tmp = path.with_name(f".{path.stem}.{WRITER}-{uuid.uuid4().hex[:8]}.tmp{ext}")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            break
        except FileExistsError:
            continue
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; on a clean exit it replaces ``path``."""
    binary = "b" in mode
    with atomic_path(path, suffix=".tmp") as tmp:
        with open(tmp, mode, encoding=None if binary else encoding) as f:
            yield f


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_write(path) as f:
        f.write(text)
    return Path(path)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, "wb") as f:
        f.write(data)
    return Path(path)
