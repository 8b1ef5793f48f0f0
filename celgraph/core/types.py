"""Port types: what flows along a link, and how a value of each is checked.

Every value is a numpy array (or, for structured types, a dict of arrays and JSON-able scalars),
addressed by (output, frame). Conventions, fixed for the whole project:

* Image     float32 H×W×C (C = 1, 3 or 4), top-left origin; RGBA is premultiplied (as OpenImageIO
            hands EXR/PNG data to us by default).
* Mask      float32 H×W, 0..1.
* LineArt   float32 H×W ink coverage, 0 = paper, 1 = full ink.
* Flow      float32 H×W×2 displacement in pixels, +x right, +y down, from this frame to the target.
* Labels    int32 H×W object / region ids.
* Transforms float64 N×3×3 per-object frame→canvas matrices for one frame.
* Sprites   dict of arrays: per-object RGBA layers and the background plate.
* FileRef   dict describing a file a node wrote (path, digest); the value of side-effect nodes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np


class PortTypeError(TypeError):
    """A value does not fit the port type it is declared as."""


@dataclass(frozen=True)
class PortType:
    name: str
    doc: str
    check: Callable[[Any], Any] = field(repr=False, compare=False, default=lambda v: v)
    # types whose values may be linked into an input of this type (e.g. a Mask into an Image input)
    accepts: tuple[str, ...] = ()

    def coerce(self, value: Any) -> Any:
        """Check a computed value and return it in canonical form (dtype, shape), read-only."""
        return self.check(value)

    def can_take(self, other: "PortType") -> bool:
        return other.name == self.name or other.name in self.accepts or self.name == "Any"

    def __str__(self) -> str:
        return self.name


def _array(value: Any, dtype, ndim: tuple[int, ...], what: str) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise PortTypeError(f"{what} must be a numpy array, got {type(value).__name__}")
    if value.ndim not in ndim:
        raise PortTypeError(f"{what} must have {' or '.join(map(str, ndim))} dimensions, got shape {value.shape}")
    if value.dtype != dtype:
        value = value.astype(dtype)
    return value


def _image(v):
    v = _array(v, np.float32, (2, 3), "Image")
    if v.ndim == 2:
        v = v[:, :, None]
    if v.shape[2] not in (1, 2, 3, 4):
        raise PortTypeError(f"Image must have 1-4 channels, got {v.shape[2]}")
    return v


def _plane(name):
    def check(v):
        v = _array(v, np.float32, (2, 3), name)
        if v.ndim == 3:
            if v.shape[2] != 1:
                raise PortTypeError(f"{name} must be H×W (or H×W×1), got shape {v.shape}")
            v = v[:, :, 0]
        return v
    return check


def _flow(v):
    v = _array(v, np.float32, (3,), "Flow")
    if v.shape[2] != 2:
        raise PortTypeError(f"Flow must be H×W×2, got shape {v.shape}")
    return v


def _labels(v):
    return _array(v, np.int32, (2,), "Labels")


def _transforms(v):
    v = _array(v, np.float64, (3,), "Transforms")
    if v.shape[1:] != (3, 3):
        raise PortTypeError(f"Transforms must be N×3×3, got shape {v.shape}")
    return v


def _dict(name):
    def check(v):
        if not isinstance(v, dict):
            raise PortTypeError(f"{name} must be a dict, got {type(v).__name__}")
        return v
    return check


Any_ = PortType("Any", "any value")
Image = PortType("Image", "float32 H×W×C image, premultiplied alpha", _image,
                 accepts=("Mask", "LineArt"))
Mask = PortType("Mask", "float32 H×W matte, 0..1", _plane("Mask"), accepts=("LineArt",))
LineArt = PortType("LineArt", "float32 H×W ink coverage, 0 paper .. 1 ink", _plane("LineArt"),
                   accepts=("Mask",))
Flow = PortType("Flow", "float32 H×W×2 displacement in pixels (+x right, +y down)", _flow)
Labels = PortType("Labels", "int32 H×W object or region ids", _labels)
Transforms = PortType("Transforms", "float64 N×3×3 frame→canvas matrices, one per object", _transforms)
Sprites = PortType("Sprites", "per-object RGBA layers and background plate (dict of arrays)",
                   _dict("Sprites"))
FileRef = PortType("FileRef", "a file written by a node: {path, sha256, bytes}", _dict("FileRef"))

PORT_TYPES: dict[str, PortType] = {t.name: t for t in
                                   (Any_, Image, Mask, LineArt, Flow, Labels, Transforms, Sprites, FileRef)}


def as_image(value: np.ndarray) -> np.ndarray:
    """View any image-like port value (Image, Mask, LineArt, Flow) as H×W×C float32."""
    value = np.asarray(value, dtype=np.float32)
    return value[:, :, None] if value.ndim == 2 else value


def as_rgb(value: np.ndarray) -> np.ndarray:
    """An image-like value as H×W×3 float32: grey repeated, alpha and extra channels dropped."""
    img = as_image(value)
    return np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img[:, :, :3]
