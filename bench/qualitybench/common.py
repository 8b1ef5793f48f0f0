"""What every suite of bench/quality.py shares: result rows, the run configuration, sequences on
disk, timed engine runs, and the results table."""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

import celgraph as cg


@dataclass
class Row:
    task: str
    method: str
    metric: str
    value: str
    note: str = ""


def fmt(x: float, digits: int = 3) -> str:
    return "inf" if x == float("inf") else f"{x:.{digits}f}"


def has(type_name: str) -> bool:
    return cg.registry.get(type_name) is not None


def missing(task: str, method: str, metrics_: list[str], why: str = "node type not implemented yet") -> list[Row]:
    return [Row(task, method, ", ".join(metrics_), "missing", why)]


@dataclass
class Config:
    flow_seeds: list[int]
    frames: int
    w: int
    h: int
    gap_seeds: list[int]
    gap_w: int
    gap_h: int
    clip: str = ""              # decomposition: run only the clips whose name contains this ("" = all)
    plate_fill: str = "shiftmap"  # decomposition: SpriteLearn's plate_fill (another value labels its rows)


FULL = Config(flow_seeds=[100, 101, 102, 103], frames=8, w=456, h=256, gap_seeds=list(range(200, 212)),
              gap_w=1920, gap_h=1080)
QUICK = Config(flow_seeds=[100], frames=3, w=256, h=144, gap_seeds=[200], gap_w=456, gap_h=256)



def is_quick(cfg) -> bool:
    return replace(cfg, clip="", plate_fill="shiftmap") == QUICK


def shown(image: np.ndarray) -> np.ndarray:
    """An Image value (scene-linear) as displayed (sRGB): the space the ground truth and the
    metrics (PSNR, CIEDE2000) are in."""
    from celgraph.colorspace import from_working
    return from_working(np.asarray(image, np.float32), "sRGB")


def write_sequence(folder: Path, name: str, arrays: list[np.ndarray], ext: str = "png") -> str:
    """Frames 1..N of a sequence on disk (what a user's Read node would see); returns the pattern.
    The arrays are display-referred (sRGB, as drawn): an EXR gets them scene-linear, as a
    compositor would write it."""
    from celgraph.colorspace import to_working
    from celgraph.nodes.io import frame_path, write_image
    pattern = str(folder / f"{name}.####.{ext}")
    for i, a in enumerate(arrays, start=1):
        if ext == "exr":                                # colour and grey drawings alike
            a = to_working(np.asarray(a, np.float32), "sRGB")
        write_image(frame_path(pattern, i), a, "float" if ext == "exr" else "auto")
    return pattern


def timed_run(engine, g, targets, frames) -> tuple[object, float]:
    t0 = time.perf_counter()
    r = engine.run(g, targets=targets, frames=frames)
    return r, time.perf_counter() - t0




def table(rows: list[Row]) -> str:
    lines = ["| task | method | metric | value | note |", "|---|---|---|---:|---|"]
    lines += [f"| {r.task} | {r.method} | {r.metric} | {r.value} | {r.note} |" for r in rows]
    return "\n".join(lines)


def read_rows(path: Path) -> list[Row]:
    """The rows of a results file written by :func:`table`."""
    rows = []
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and line.startswith("| ") and cells[0] not in ("task", "---"):
            rows.append(Row(*cells))
    return rows


def merge_rows(old: list[Row], new: list[Row], whole_task: bool = False) -> list[Row]:
    """``old`` with the rows of every task family in ``new`` (the task name before " (") replaced
    in place by ``new``'s rows; with ``whole_task``, only the rows of the same tasks (a run of some
    clips replaces those clips' rows and keeps the others')."""
    def family(r):
        return r.task if whole_task else r.task.split(" (")[0]
    fams = {family(r) for r in new}
    out, placed = [], set()
    for r in old:
        f = family(r)
        if f in fams:
            if f not in placed:
                out += [n for n in new if family(n) == f]
                placed.add(f)
        else:
            out.append(r)
    return out + [n for n in new if family(n) not in placed]


