"""Reading the real material (bench/real.py suites)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from celgraph.nodes.io import read_image


def load(path: Path) -> np.ndarray:
    """float32 H×W×C image (0..1) of a file in the real-material folder."""
    return np.asarray(read_image(str(path)), np.float32)


def table(header: list[str], rows: list[list]) -> str:
    """A Markdown table; numbers are printed as given (format them before)."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)
