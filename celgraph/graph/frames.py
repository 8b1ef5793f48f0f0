"""Frame ranges as artists and farm managers write them: "1-24", "1-24x2", "1,5,10-12", 7."""
from __future__ import annotations

import re

_PART = re.compile(r"^\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*(?:[x:]\s*(\d+)\s*)?)?$")


class FrameRangeError(ValueError):
    pass


def parse_frames(spec) -> list[int]:
    """Sorted, de-duplicated frame numbers of a spec. Raises FrameRangeError when malformed or empty."""
    if isinstance(spec, bool):
        raise FrameRangeError(f"frames must be a range like '1-24', got {spec!r}")
    if isinstance(spec, int):
        return [spec]
    if isinstance(spec, (list, tuple)) and all(isinstance(f, int) and not isinstance(f, bool) for f in spec):
        if not spec:
            raise FrameRangeError("frame list is empty")
        return sorted(set(spec))
    if not isinstance(spec, str) or not spec.strip():
        raise FrameRangeError(f"frames must be a range like '1-24', got {spec!r}")
    frames: set[int] = set()
    for part in spec.split(","):
        m = _PART.match(part)
        if not m:
            raise FrameRangeError(f"cannot read frame range part {part.strip()!r} in {spec!r} "
                                  "(write e.g. '1-24', '1-24x2' or '1,5,9')")
        a, b, step = int(m[1]), m[2], m[3]
        if b is None:
            frames.add(a)
            continue
        b, step = int(b), int(step or 1)
        if b < a:
            raise FrameRangeError(f"frame range {part.strip()!r} ends before it starts")
        if step < 1:
            raise FrameRangeError(f"frame step in {part.strip()!r} must be at least 1")
        frames.update(range(a, b + 1, step))
    return sorted(frames)


def format_frames(frames: list[int]) -> str:
    """Compact text for a frame list: [1,2,3,5] → '1-3,5'."""
    frames = sorted(set(frames))
    parts, i = [], 0
    while i < len(frames):
        j = i
        while j + 1 < len(frames) and frames[j + 1] == frames[j] + 1:
            j += 1
        parts.append(str(frames[i]) if i == j else f"{frames[i]}-{frames[j]}")
        i = j + 1
    return ",".join(parts)
