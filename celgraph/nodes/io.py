"""Read and Write image sequences through OpenImageIO (EXR, PNG, TIFF, DPX, JPEG, ...).

Frame patterns: `####` (one # per digit), `%04d` / `%d`, and Houdini's `$F4` / `$F`. A path with
no pattern is one file used for every frame. Relative paths are resolved against the scene file's
folder. Images are float32 with premultiplied alpha (OpenImageIO associates PNG alpha on read and
dissociates it on write).
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np
import OpenImageIO as oiio

from .. import colorspace as cs
from ..core import (Choice, CheckContext, Context, FileRef, Image, In, Int, Issue, NodeType, Out, String,
                      PathParam)
from ..core.atomic import WRITER, atomic_path
from ..core.hashing import file_digest
from ..core.types import PortType, as_image
from ..graph.frames import format_frames

_PATTERN = re.compile(r"(#+)|%(0?\d*)d|\$F(\d*)")


def is_sequence(pattern: str) -> bool:
    return _PATTERN.search(pattern) is not None


def frame_path(pattern: str, frame: int) -> str:
    """The file name of `frame` in a sequence pattern ('plate.####.exr', 'a.%04d.png', 'b.$F4.tif')."""
    def sub(m: re.Match) -> str:
        if m.group(1):
            width = len(m.group(1))
        else:
            digits = m.group(2) if m.group(2) is not None else m.group(3)
            width = int(digits) if digits else 0
        return f"{frame:0{width}d}"
    return _PATTERN.sub(sub, pattern)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read the first subimage as float32 H×W×C (premultiplied). Raises OSError naming the file."""
    inp = oiio.ImageInput.open(os.fspath(path))
    if inp is None:
        raise OSError(f"cannot open image {os.fspath(path)!r}: {oiio.geterror()}")
    try:
        spec = inp.spec()
        pixels = inp.read_image(0, 0, 0, spec.nchannels, "float")
        if pixels is None:
            raise OSError(f"cannot read image {os.fspath(path)!r}: {inp.geterror()}")
    finally:
        inp.close()
    pixels = np.asarray(pixels, dtype=np.float32)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    names = list(spec.channelnames)
    if pixels.shape[2] > 4:                  # keep the colour channels of a multi-channel EXR
        wanted = [names.index(c) for c in ("R", "G", "B", "A") if c in names] or list(range(4))
        pixels = pixels[:, :, wanted]
    return np.ascontiguousarray(pixels)


BIT_DEPTHS = {"8": "uint8", "10": "uint16", "16": "uint16", "half": "half", "float": "float"}
AUTO_DEPTH = {".exr": "half", ".png": "8", ".jpg": "8", ".jpeg": "8", ".tif": "16", ".tiff": "16",
              ".dpx": "10"}


def write_image(path: str | os.PathLike, pixels: np.ndarray, bit_depth: str = "auto") -> None:
    """Write atomically: to a hidden temp name in the same folder, then rename over the target.
    Creates missing folders. The format follows the extension."""
    path = Path(path)
    ext = path.suffix.lower()
    if bit_depth == "auto":
        bit_depth = AUTO_DEPTH.get(ext, "half" if ext == ".exr" else "8")
    pixels = np.ascontiguousarray(as_image(pixels))
    if BIT_DEPTHS[bit_depth].startswith("uint"):
        pixels = np.clip(pixels, 0.0, 1.0)
    buf = oiio.ImageBuf(pixels)
    # OpenImageIO stamps the time of writing into EXR, TIFF and DPX headers unless DateTime is set;
    # empty leaves it out, so equal pixels give equal bytes and Write's recorded digest settles.
    buf.specmod().attribute("DateTime", "")
    if pixels.shape[2] == 2:
        buf.specmod().channelnames = ("R", "G")
    if bit_depth == "10":
        buf.specmod().attribute("oiio:BitsPerSample", 10)
    with atomic_path(path) as tmp:          # the temp name keeps the extension: it picks the format
        if not buf.write(os.fspath(tmp), BIT_DEPTHS[bit_depth]):
            raise OSError(f"cannot write {os.fspath(path)!r}: {buf.geterror() or oiio.geterror()}")
        if ext == ".dpx":       # the header's ImageFileName (offset 36, 100 bytes) holds the temp path
            with open(tmp, "r+b") as f:
                f.seek(36)
                f.write(path.name.encode()[:99].ljust(100, b"\0"))


_TEMP = re.compile(r"^\.(?P<stem>.+)\.(?:(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-)?[0-9a-f]{8}\.tmp(?P<ext>\.\w+)$")
STALE_TEMP_S = 600      # a temp of another machine (or of a dead writer's pid reused) untouched this long is stale
_swept: dict[tuple[str, str], float] = {}


def sweep_stale_temps(pattern_path: Path, now: float | None = None) -> list[Path]:
    """Remove the temp files that writes of `pattern_path` (a file or sequence pattern) killed
    mid-write left in its folder: `.STEM.HOST-PID-XXXXXXXX.tmp.EXT` of this machine whose process is
    gone, and any (older celgraph versions named them `.STEM.XXXXXXXX.tmp.EXT`) untouched for
    STALE_TEMP_S. Returns what it removed."""
    now = time.time() if now is None else now
    folder = pattern_path.parent
    names = re.compile(r"-?\d+".join(map(re.escape, _PATTERN.split(pattern_path.name)[::4])) + "$")
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        m = _TEMP.match(e.name)
        if not m:
            continue
        if not names.match(m["stem"] + m["ext"]):
            continue
        try:
            age = now - e.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        mine = m["host"] is not None and m["host"] == WRITER.split("-")[0]
        if not (age > STALE_TEMP_S or (mine and int(m["pid"]) != os.getpid() and not _alive(int(m["pid"])))):
            continue
        if e.is_file(follow_symlinks=False):
            Path(e.path).unlink(missing_ok=True)
            removed.append(Path(e.path))
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True             # exists, owned by someone else
    return True


class Read(NodeType):
    """Read an image or an image sequence (EXR, PNG, TIFF, DPX, JPEG, ... through OpenImageIO).

    The file's content digest enters the cache key, so editing a frame on disk re-runs what
    depends on it and nothing else. Pixels come out scene-linear (celgraph.colorspace): converted
    from the file's colour space (`colorspace`, auto: the file's tag, else sRGB for 8/16-bit
    PNG/JPEG/TIFF, linear for EXR and float files).
    """
    id, version, category = "celgraph.Read", 2, "IO"
    outputs = [Out("image", Image, "float32 H×W×C, premultiplied")]
    params = [
        PathParam("path", "", help="file or sequence: plate.####.exr, plate.%04d.png, plate.$F4.tif",
                  hashed=False),
        Choice("missing", "error", choices=("error", "hold", "black"),
               help="a missing frame is an error, holds the nearest earlier (else later) frame, or is black"),
        Int("offset", 0, help="file frame = scene frame + offset (e.g. 1000 for plates numbered 1001...)"),
        String("colorspace", "auto", help="the files' colour space (an OCIO name, role or alias: sRGB, linear, "
                                          "ACEScg, raw for data); auto: the file's tag, else sRGB for 8/16-bit "
                                          "files, linear for EXR/float"),
    ]

    def _file(self, ctx: CheckContext, params, frame: int) -> Path:
        return ctx.resolve(frame_path(params["path"], frame + params["offset"]))

    def _existing(self, ctx: CheckContext, params) -> dict[int, Path]:
        return {f: p for f in ctx.frames if (p := self._file(ctx, params, f)).is_file()}

    def check(self, ctx: CheckContext) -> list[Issue]:
        params = ctx.params
        if not params["path"]:
            return [Issue("file_not_found", "no path given", ctx.node, "path")]
        if (bad := colorspace_issue(params, ctx)):
            return [bad]
        existing = self._existing(ctx, params)
        missing = [f for f in ctx.frames if f not in existing]
        if not existing:
            where = frame_path(params["path"], ctx.frames[0] + params["offset"])
            return [Issue("file_not_found", f"{ctx.resolve(where)} does not exist"
                          + (" (nor any other frame of the sequence)" if is_sequence(params["path"]) else ""),
                          ctx.node, "path")]
        if missing and params["missing"] == "error":
            return [Issue("file_not_found", f"frames {format_frames(missing)} of {params['path']} are missing "
                                            "(set missing to hold or black to render anyway)", ctx.node, "path")]
        return []

    def _source(self, ctx: Context) -> tuple[Path, bool]:
        """(file to read, black?) for ctx.frame, applying the missing-frame policy."""
        path = self._file(ctx, ctx.params, ctx.frame)
        if path.is_file():
            return path, False
        if ctx.params.missing == "error":
            raise FileNotFoundError(f"frame {ctx.frame}: {path} does not exist")
        existing = self._existing(ctx, ctx.params)
        if not existing:
            raise FileNotFoundError(f"no frame of {ctx.params.path} exists")
        earlier = [f for f in existing if f < ctx.frame]
        nearest = max(earlier) if earlier else min(existing)
        return existing[nearest], ctx.params.missing == "black"

    def fingerprint(self, ctx: Context):
        path, black = self._source(ctx)
        return {"sha256": file_digest(path), "black": black}

    def compute(self, ctx: Context):
        path, black = self._source(ctx)
        if is_sequence(ctx.params.path):
            self._same_shape_as_first(ctx, path)
        if black:
            return {"image": np.zeros_like(read_image(path))}
        return {"image": read_linear(path, ctx.params.colorspace)}

    def _same_shape_as_first(self, ctx: Context, path: Path) -> None:
        """A sequence keeps one size and channel count: compare headers with its first frame on disk."""
        first = next((f for f in ctx.frames if self._file(ctx, ctx.params, f).is_file()), None)
        ref = self._file(ctx, ctx.params, first) if first is not None else path
        if ref == path:
            return
        (w, h, c), (rw, rh, rc) = _header_shape(path), _header_shape(ref)
        if (w, h, c) != (rw, rh, rc):
            raise ValueError(f"frame {ctx.frame}: {path} is {w}×{h} with {c} channels, but frame {first} ({ref}) "
                             f"is {rw}×{rh} with {rc}: a sequence must keep one size and channel count")


def read_linear(path: str | os.PathLike, colorspace: str = "auto") -> np.ndarray:
    """read_image, converted into the scene-linear working space as Read does (the file's space:
    `colorspace`, or for "auto" its tag, else by format)."""
    return cs.to_working(read_image(path), cs.file_space(path, colorspace))


def colorspace_issue(params, ctx: CheckContext) -> Issue | None:
    """An Issue when the colorspace param names a space the OCIO config does not know."""
    if params["colorspace"] == "auto":
        return None
    try:
        cs.resolve(params["colorspace"])
    except ValueError as e:
        return Issue("param_out_of_range", str(e), ctx.node, "colorspace")
    return None


def _header_shape(path: Path) -> tuple[int, int, int]:
    inp = oiio.ImageInput.open(os.fspath(path))
    if inp is None:
        raise OSError(f"cannot open image {os.fspath(path)!r}: {oiio.geterror()}")
    spec = inp.spec()
    inp.close()
    return spec.width, spec.height, spec.nchannels


AnyImage = PortType("AnyImage", "any image-like value (Image, Mask, LineArt, Flow, Labels)", as_image,
                    accepts=("Image", "Mask", "LineArt", "Flow", "Labels"))


class Write(NodeType):
    """Write an image sequence. Format from the extension; atomic (temp name, then rename).

    A re-run skips a frame only if the file on disk still has the content this node wrote. Colour
    (3-4 channel values) is converted from scene-linear into `colorspace` (auto: sRGB for 8/10/16-bit
    files, linear for EXR and half/float); 1-2 channel values (Mask, LineArt, Flow, Labels) are data
    and are written as they are.
    """
    id, version, category = "celgraph.Write", 3, "IO"     # 2: no DateTime stamp; 3: colour managed
    inputs = [In("image", AnyImage, help="Image, Mask, LineArt or Flow (use EXR for flow)")]
    outputs = [Out("file", FileRef, "{path, sha256, bytes} of the written file")]
    params = [
        PathParam("path", "", help="output file or sequence, e.g. out/comp.####.exr", file="out"),
        Choice("bit_depth", "auto", choices=("auto", "8", "10", "16", "half", "float"),
               help="auto: half for EXR, 8 for PNG/JPEG, 16 for TIFF, 10 for DPX"),
        String("colorspace", "auto", help="colour space of the files (OCIO name, role or alias: sRGB, linear, "
                                          "ACEScg, raw); auto: sRGB for 8/10/16-bit, linear for EXR/half/float"),
    ]
    side_effect = True

    def check(self, ctx: CheckContext) -> list[Issue]:
        params = ctx.params
        if not params["path"]:
            return [Issue("param_type", "no output path given", ctx.node, "path")]
        issues = [bad] if (bad := colorspace_issue(params, ctx)) else []
        ext = Path(params["path"]).suffix.lower()
        if ext not in AUTO_DEPTH:
            issues.append(Issue("bad_path", f"cannot tell the format of {params['path']!r}: use one of "
                                            f"{', '.join(sorted(AUTO_DEPTH))}", ctx.node, "path"))
        if len(ctx.frames) > 1 and not is_sequence(params["path"]):
            issues.append(Issue("bad_path", f"{params['path']!r} has no frame pattern but the scene has "
                                            f"{len(ctx.frames)} frames: every frame would overwrite one file "
                                            "(add #### or %04d)", ctx.node, "path"))
        return issues

    def _target(self, ctx: Context) -> Path:
        return ctx.resolve(frame_path(ctx.params.path, ctx.frame))

    def fingerprint(self, ctx: Context):
        # The value names the absolute file written, so the key must too: the same sub-graph saved
        # from two scene folders writes two different files (and must not share one cache entry).
        return {"target": str(self._target(ctx).resolve())}

    def verify(self, ctx: Context, outputs) -> bool:
        written = outputs["file"]
        path = Path(written["path"])
        return path == self._target(ctx).resolve() and path.is_file() and file_digest(path) == written["sha256"]

    def compute(self, ctx: Context, image):
        target = self._target(ctx).resolve()
        key = (str(target.parent), ctx.params.path)
        if time.time() - _swept.get(key, 0.0) > 60:      # once a minute per folder and pattern, not per frame
            _swept[key] = time.time()
            sweep_stale_temps(target.parent / Path(ctx.params.path).name)
        if image.ndim == 3 and image.shape[2] in (3, 4):
            image = cs.from_working(image, cs.write_space(target, ctx.params.bit_depth, ctx.params.colorspace))
        write_image(target, image, ctx.params.bit_depth)
        return {"file": {"path": str(target), "sha256": file_digest(target), "bytes": target.stat().st_size}}
