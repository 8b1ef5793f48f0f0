"""Frame ranges as artists and farm managers write them: "1-24", "1-24x2", "1,5,10-12", 7."""
from __future__ import annotations

import re

_PART = re.compile(r"^\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*(?:[x:]\s*(\d+)\s*)?)?$")


MAX_FRAMES = 100_000        # frames in one range: over an hour at 24 fps (a shot is a few hundred)
MAX_SPEC_CHARS = 10_000     # characters in a range's text (it is stored with every job record)


class FrameRangeError(ValueError):
    pass


def _too_many(n: int, spec) -> FrameRangeError:
    return FrameRangeError(f"{spec!r} holds {n:,} frames; a range may hold at most {MAX_FRAMES:,} "
                           "(split the work into several runs)")


def parse_frames(spec) -> list[int]:
    """Sorted, de-duplicated frame numbers of a spec. Raises FrameRangeError when malformed, empty
    or larger than MAX_FRAMES — counted before any list is built, so a huge range costs nothing."""
    if isinstance(spec, bool):
        raise FrameRangeError(f"frames must be a range like '1-24', got {spec!r}")
    if isinstance(spec, int):
        return [spec]
    if isinstance(spec, (list, tuple)) and all(isinstance(f, int) and not isinstance(f, bool) for f in spec):
        if not spec:
            raise FrameRangeError("frame list is empty")
        if len(spec) > MAX_FRAMES:
            raise _too_many(len(spec), f"a list of {len(spec):,} frames")
        return sorted(set(spec))
    if not isinstance(spec, str) or not spec.strip():
        raise FrameRangeError(f"frames must be a range like '1-24', got {spec!r}")
    if len(spec) > MAX_SPEC_CHARS:
        raise FrameRangeError(f"the frame range text is {len(spec):,} characters long; at most "
                              f"{MAX_SPEC_CHARS:,} are accepted")
    parts: list[tuple[int, int, int]] = []
    count = 0
    for part in spec.split(","):
        m = _PART.match(part)
        if not m:
            raise FrameRangeError(f"cannot read frame range part {part.strip()!r} in {spec!r} "
                                  "(write e.g. '1-24', '1-24x2' or '1,5,9')")
        a, b, step = int(m[1]), m[2], m[3]
        b, step = (a, 1) if b is None else (int(b), int(step or 1))
        if b < a:
            raise FrameRangeError(f"frame range {part.strip()!r} ends before it starts")
        if step < 1:
            raise FrameRangeError(f"frame step in {part.strip()!r} must be at least 1")
        count += (b - a) // step + 1
        if count > MAX_FRAMES:
            raise _too_many(count, spec)
        parts.append((a, b, step))
    frames: set[int] = set()
    for a, b, step in parts:
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
