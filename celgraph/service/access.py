"""Which files a server's jobs may touch: every file a submitted scene names (each `Path` param —
Read and Write paths, weights files; every frame of a sequence) must resolve, symlinks and `..`
followed, inside one of the server's allowed roots (`graph serve --allow DIR`, default: the host
plug-ins' shared folder and the server's base folder).

A path outside is a `path_not_allowed` issue, and that node's own checks (does the file exist?)
are not run, so a client learns nothing about files outside the roots. `graph run` and the Python
API have no such policy: they are the user's own process.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..core.errors import Issue
from ..core.node import CheckContext


def default_shared_folder() -> Path:
    """The folder the Natron/Nuke plug-ins write their runs under (docs/hosts.md)."""
    return Path(os.environ.get("CELGRAPH_SHARED") or Path(tempfile.gettempdir()) / "celgraph_shared")


class FileAccess:
    """Allowed roots, resolved once (a root that is itself a symlink counts where it leads)."""

    def __init__(self, roots):
        self.roots = sorted({os.path.realpath(os.path.expanduser(os.fspath(r))) for r in roots})
        if not self.roots:
            raise ValueError("give at least one allowed folder")

    def allows(self, path: str | os.PathLike) -> bool:
        real = os.path.realpath(path)
        return any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in self.roots)

    def refused(self, what: str, field: str | None = None, node: str | None = None) -> Issue:
        return Issue("path_not_allowed", f"{what} is outside the folders this server may read and write "
                                         f"({', '.join(self.roots)}; graph serve --allow)", node, field)

    def check_graph(self, graph, frames: list[int] | None, registry) -> tuple[list[Issue], set[str]]:
        """(issues, names of the nodes refused) for every path param of every node of `graph`."""
        from ..nodes.io import frame_path, is_sequence
        issues, refused = [], set()
        for name, spec in graph.nodes.items():
            node_type = registry.get(spec.type)
            if node_type is None:
                continue
            ctx = CheckContext(name, {}, frames or [], graph.base_dir)
            for p in node_type.params:
                value = spec.params.get(p.name, p.default)
                if p.kind != "path" or not isinstance(value, str) or not value:
                    continue
                offset = spec.params.get("offset", 0)
                offset = offset if isinstance(offset, int) and not isinstance(offset, bool) else 0
                files = ([frame_path(value, f + offset) for f in frames] if frames and is_sequence(value)
                         else [value])
                if any("\x00" in f or not self.allows(ctx.resolve(f)) for f in files):
                    issues.append(self.refused(repr(value), p.name, name))
                    refused.add(name)
        return issues, refused
