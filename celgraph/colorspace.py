"""Colour spaces, through OpenImageIO's OCIO support (`oiio.ColorConfig`).

The config is `$OCIO` when set, else OCIO 2's built-in default config (nothing to download).

The convention: **the Image port is scene-linear**, in the working space `WORKING` (Linear Rec.709,
sRGB primaries: what OIIO calls `lin_rec709`, and the linear space of Natron's and Nuke's default
configs). Read converts a file's pixels into it and Write out of it. Nodes whose maths or weights
expect display-referred values (Sketch, ToLineArt, Ink, Colorize, ColorHints, FlowRAFT, SynthClip,
the decomposition nodes, previews) declare `color_space = DISPLAY` and call `node_in` /
`node_out` at the start and end of compute. So a drawing gives the same result from an sRGB PNG
and from a linear EXR.

Only colour is converted: alpha stays as it is (premultiplied colour is unpremultiplied for the
conversion, then premultiplied again). A 1-channel value is grey, a 2-channel one grey + alpha.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import OpenImageIO as oiio

WORKING = "lin_rec709"        # the Image port's space
DISPLAY = "sRGB"              # what display-referred nodes (and their training data) use
RAW = ("raw", "data")         # no conversion
LINEAR_FORMATS = {".exr", ".hdr", ".sxr", ".mxr"}
_LOCK = threading.Lock()
_CONFIGS: dict = {}
# OIIO makes its shared default config from $OCIO once, on first use: made here, so convert knows
# which $OCIO it read (and uses it while $OCIO is unchanged)
_DEFAULT_OCIO = os.environ.get("OCIO", "")
oiio.ColorConfig.default_colorconfig()


def config() -> "oiio.ColorConfig":
    """The OCIO config ($OCIO, else the built-in one), made once per $OCIO value."""
    key = os.environ.get("OCIO", "")
    with _LOCK:
        if key not in _CONFIGS:
            _CONFIGS[key] = oiio.ColorConfig(key) if key else oiio.ColorConfig()
        return _CONFIGS[key]


def resolve(name: str) -> str:
    """The config's name for a colour space, role or alias ('sRGB', 'linear', 'scene_linear',
    'lin_rec709', 'ACEScg', ...). Raises ValueError for a name the config does not know."""
    if name.lower() in RAW:
        return "raw"
    cfg = config()
    resolved = cfg.resolve(name)
    if cfg.getColorSpaceIndex(resolved) < 0:
        raise ValueError(f"unknown colour space {name!r} (OCIO config {cfg.configname()}); "
                         f"known: {', '.join(cfg.getColorSpaceNames())}")
    return resolved


def working() -> str:
    """The Image port's space in this config (its scene_linear role where it lacks lin_rec709)."""
    try:
        return resolve(WORKING)
    except ValueError:
        return resolve("scene_linear")


def same(a: str, b: str) -> bool:
    a, b = resolve(a), resolve(b)
    return a == b or "raw" in (a, b) or config().equivalent(a, b)


def convert(pixels: np.ndarray, src: str, dst: str) -> np.ndarray:
    """H×W×C (or H×W) float32 pixels from space src to dst; alpha kept. Identity (a copy-free
    return) when the spaces are the same or either is raw."""
    if same(src, dst):
        return pixels
    arr = np.asarray(pixels, np.float32)
    img = arr[:, :, None] if arr.ndim == 2 else arr
    c = img.shape[2]
    if c in (1, 2):                                   # grey (+ alpha): convert it as an RGB grey
        rgb = np.repeat(img[:, :, :1], 3, axis=2)
        rgba = np.concatenate([rgb, img[:, :, 1:]], axis=2) if c == 2 else rgb
    elif c in (3, 4):
        rgba = img
    else:
        raise ValueError(f"cannot colour-convert a {c}-channel image")
    buf = oiio.ImageBuf(np.ascontiguousarray(rgba))
    if os.environ.get("OCIO", "") == _DEFAULT_OCIO:    # OIIO's shared config: its processors are kept
        out = oiio.ImageBufAlgo.colorconvert(buf, resolve(src), resolve(dst), True)
    else:                                               # naming a config loads it again: ~30 ms a call
        out = oiio.ImageBufAlgo.colorconvert(buf, resolve(src), resolve(dst), True, "", "", os.environ.get("OCIO", ""))
    if out.has_error:
        raise ValueError(f"colour conversion {src} → {dst} failed: {out.geterror()}")
    res = np.asarray(out.get_pixels(oiio.FLOAT), np.float32).reshape(rgba.shape)
    if {resolve(src), resolve(dst)} == {resolve(DISPLAY), resolve(WORKING)}:
        # the sRGB curve maps 0..1 onto 0..1, but OCIO's fast CPU path overshoots (1 → 1.000024):
        # keep in-range values in range (0..alpha, premultiplied), so white stays exactly white
        alpha = rgba[:, :, 3:4] if rgba.shape[2] == 4 else np.float32(1.0)
        rgb, src_rgb = res[:, :, :3], rgba[:, :, :3]
        inside = (src_rgb >= 0.0) & (src_rgb <= alpha)
        res[:, :, :3] = np.where(inside, np.clip(rgb, 0.0, alpha), rgb)
    if c in (1, 2):
        res = np.concatenate([res[:, :, :1], res[:, :, 3:]], axis=2)
    return res.reshape(arr.shape)


def to_working(pixels: np.ndarray, space: str) -> np.ndarray:
    return convert(pixels, space, working())


def from_working(pixels: np.ndarray, space: str) -> np.ndarray:
    return convert(pixels, working(), space)


def node_in(node_type, image):
    """An Image input of a node (an array, a {frame: array} clip input, or None), into the space
    the node type declares as `color_space`."""
    return _each(image, working(), getattr(node_type, "color_space", WORKING))


def node_out(node_type, image):
    """An Image output of a node, from its declared space back to the working space."""
    return _each(image, getattr(node_type, "color_space", WORKING), working())


def node_out_runs(node_type, image: np.ndarray) -> np.ndarray:
    """``node_out`` for an H×W×4 float32 image of flat fills, the same values: each run of equal pixels
    (in raster order) is converted once, so a few percent of the pixels are converted instead of all
    (a conversion maps each pixel on its own). Busy images (over a quarter of the pixels start a new
    run) and other shapes are converted whole."""
    if same(getattr(node_type, "color_space", WORKING), working()):
        return image
    if image.ndim != 3 or image.shape[2] != 4:
        return node_out(node_type, image)
    px = np.ascontiguousarray(image, np.float32).reshape(-1, 4)
    bits = px.view(np.int64)                          # a pixel's bits as two int64: equal bits, equal colour
    start = np.ones(len(px), bool)
    np.logical_or(bits[1:, 0] != bits[:-1, 0], bits[1:, 1] != bits[:-1, 1], out=start[1:])
    first = np.flatnonzero(start)
    if len(first) > len(px) // 4:
        return node_out(node_type, image)
    converted = node_out(node_type, px[first][:, None, :])[:, 0]
    return np.take(converted, np.cumsum(start) - 1, axis=0).reshape(image.shape)


def _each(value, src, dst):
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: convert(v, src, dst) for k, v in value.items()}
    return convert(value, src, dst)


def file_space(path: str | os.PathLike, name: str = "auto") -> str:
    """The space of an image file: `name` unless it is "auto"; then the file's own tag
    (oiio:ColorSpace, e.g. the sRGB chunk of a PNG) where it has one, else linear for EXR/HDR and
    float/half files, sRGB for 8/10/16-bit files (PNG, JPEG, TIFF, DPX)."""
    if name != "auto":
        return resolve(name)
    inp = oiio.ImageInput.open(os.fspath(path))
    if inp is None:
        raise OSError(f"cannot open image {os.fspath(path)!r}: {oiio.geterror()}")
    try:
        spec = inp.spec()
    finally:
        inp.close()
    tag = spec.get_string_attribute("oiio:ColorSpace")
    if tag:
        try:
            return resolve(tag)
        except ValueError:
            pass                                      # a tag this config does not know: by format
    floating = spec.format.basetype in (oiio.FLOAT, oiio.HALF, oiio.DOUBLE)
    return working() if Path(path).suffix.lower() in LINEAR_FORMATS or floating else resolve(DISPLAY)


def write_space(path: str | os.PathLike, bit_depth: str, name: str = "auto") -> str:
    """The space Write encodes a file in: `name`, or for "auto" linear for EXR and half/float
    files, sRGB for 8/10/16-bit ones."""
    if name != "auto":
        return resolve(name)
    if Path(path).suffix.lower() in LINEAR_FORMATS or bit_depth in ("half", "float"):
        return working()
    return resolve(DISPLAY)
