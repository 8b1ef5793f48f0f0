"""Reading the real material (bench/real.py suites)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from celgraph.core.atomic import atomic_path
from celgraph.nodes.io import read_image


def load(path: Path) -> np.ndarray:
    """float32 H×W×C image (0..1) of a file in the real-material folder."""
    return np.asarray(read_image(str(path)), np.float32)


def table(header: list[str], rows: list[list]) -> str:
    """A Markdown table; numbers are printed as given (format them before)."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def cell(img: np.ndarray, text: str, width: int) -> np.ndarray:
    """A contact-sheet cell: RGB uint8, ``width`` px wide (area-resized), a caption bar on top."""
    img = np.clip(np.asarray(img, np.float32), 0, 1)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, 2)
    h = round(img.shape[0] * width / img.shape[1])
    img = cv2.resize(img[..., :3], (width, h), interpolation=cv2.INTER_AREA) if img.shape[1] != width else img[..., :3]
    img = (img * 255).round().astype(np.uint8)
    bar = np.full((22, width, 3), 255, np.uint8)
    cv2.putText(bar, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, img])


def write_sheet(sheet: np.ndarray, path: Path) -> Path:
    """Write an RGB uint8 contact sheet as PNG, atomically (a temporary name, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
            raise OSError(f"cannot write {path}")
    return path
