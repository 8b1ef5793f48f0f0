"""Anime-frame styling of a synthetic clip frame: what real TV frames look like, for Sketch training.

Real frames (e.g. *Violet Evergarden*) differ from :func:`celgraph.synth.make_clip`'s cels in ways
that broke the Sketch model there: their outlines are thin (1-2 px at 720p) and of varying weight,
**colour-traced** (a dark, saturated version of the colour they bound: brown on blond hair,
red-brown on skin, so a face profile against a pale sky is a low-contrast line), fills carry soft
gradients as well as hard cel shadows, some parts are near-black (a ribbon, gloves) so that their
outline merges with their fill and only its outer edge shows, and the painted background is often
blurred (depth of field) and never has drawn lines.

:func:`anime_style` restyles a frame from its layers, using ``color = lines·ink + (1 − lines)·fill``
(docs/synth.md): it recolours ``fill`` and re-inks it with a new ``lines`` layer, so the returned
``lines`` is exactly the ink in the returned ``color``:

* **line weight** — the strokes are eroded by 1 px a side where a smooth field says so (frames
  above 256 rows: their strokes are 2-4 px wide, real 720p lines 1-2 px), then
  ``lines' = clip((lines − a)/(1 − a))`` with ``a`` a smooth random field (0 … ``thin``): the
  soft stroke profile is cut lower, so strokes get thinner and taper where ``a`` is high;
  strokes too faint vanish from both image and truth;
* **ink colour** — black-ish (``p_black``) or colour-traced: the hue of the fill beside the line
  (sprite colours only, blurred) with a saturation boost, and a value 0.2-0.75 × the darkest
  sprite fill within reach (so next to a near-black part the line is darker still);
* **dark parts** — 0-2 regions darkened to 0.04-0.2 value (shading kept);
* **soft gradients** — sprite fills times 1 ± a smooth field (amplitude 0-0.18);
* **background** — the plate (outside the sprites) blurred with σ 0.8-4 px (``p_blur``).

Pure numpy + OpenCV; deterministic for a given generator state.
"""
from __future__ import annotations

import cv2
import numpy as np

from .plate import value_noise

__all__ = ["anime_style", "make_anime_frame"]


def _field(rng: np.random.Generator, h: int, w: int, lo: float, hi: float, cell: float) -> np.ndarray:
    return (lo + (hi - lo) * value_noise(rng, w, h, cell)).astype(np.float32)


def anime_style(frame: dict, rng: np.random.Generator, thin: float | None = None, p_black: float = 0.25,
                p_blur: float = 0.6) -> dict:
    """{"color", "fill", "lines", "ink"} of ``frame`` (a make_clip frame dict: color, fill, lines, regions,
    alpha) restyled as a TV anime frame (see the module doc); ``ink`` is the ink colour (H×W×3) and
    ``color = lines·ink + (1 − lines)·fill`` holds exactly. ``thin``: the top of the line-weight
    cut (None: drawn from 0.2-0.6)."""
    fill = np.array(frame["fill"], np.float32)
    lines = np.asarray(frame["lines"], np.float32)
    H, W = lines.shape
    unit = H / 256.0
    sprite = np.clip(np.asarray(frame["alpha"], np.float32).sum(0), 0, 1) if np.ndim(frame["alpha"]) == 3 \
        else np.clip(np.asarray(frame["alpha"], np.float32), 0, 1)
    regions = np.asarray(frame["regions"])
    # dark parts (a ribbon, gloves): shading kept, value brought down to 0.04-0.2
    ids = np.unique(regions[regions > 0])
    for rid in rng.choice(ids, size=min(len(ids), int(rng.integers(0, 3))), replace=False) if len(ids) else []:
        m = regions == rid
        mean = fill[m].mean(0) + 1e-3
        target = rng.uniform(0.04, 0.2) * (0.6 + 0.4 * rng.random(3)).astype(np.float32)
        fill[m] *= (target / mean).astype(np.float32)
    # soft gradients on the sprites
    amp = rng.uniform(0.0, 0.18)
    grad = 1.0 + amp * (2.0 * value_noise(rng, W, H, 60 * unit) - 1.0)
    fill = fill * (1.0 + (grad - 1.0) * sprite)[..., None]
    # background out of focus
    if rng.random() < p_blur:
        blurred = cv2.GaussianBlur(fill, (0, 0), rng.uniform(0.8, 4.0) * max(unit / 2.8, 0.5))
        fill = sprite[..., None] * fill + (1.0 - sprite[..., None]) * blurred
    fill = np.clip(fill, 0.0, 1.0)
    # line weight: erode the strokes (1 px a side) where a smooth field says so, then cut the soft
    # stroke profile at a smooth random level: 1-2 px lines at 720p, tapering
    top = rng.uniform(0.2, 0.6) if thin is None else float(thin)
    if top > 0:
        ero = cv2.erode(lines, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
        f = _field(rng, H, W, 0.0, 1.0, 40 * unit) * min(1.0, max(0.0, (unit - 1.0) / 1.5))
        lines = (1.0 - f) * lines + f * ero
        a = _field(rng, H, W, 0.0, top, 40 * unit)
    else:
        a = np.zeros((H, W), np.float32)
    new_lines = np.clip((lines - a) / (1.0 - a), 0.0, 1.0)
    new_lines[new_lines < 1e-3] = 0.0
    # ink colour
    if rng.random() < p_black:
        ink = np.broadcast_to((rng.uniform(0.0, 0.15) * (0.8 + 0.2 * rng.random(3))).astype(np.float32), fill.shape)
    else:
        # the sprite colour beside the line (normalised blur of the fill over the sprites)
        s = max(1.5, unit)
        wsum = cv2.GaussianBlur(sprite, (0, 0), s)[..., None] + 1e-4
        local = cv2.GaussianBlur(fill * sprite[..., None], (0, 0), s) / wsum
        local = np.where(wsum > 0.05, local, fill)
        hsv = cv2.cvtColor(np.clip(local, 0, 1).astype(np.float32), cv2.COLOR_RGB2HSV)
        hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(1.1, 1.6) + 0.1, 0, 1)
        # the value: a share of the darkest sprite fill within reach, so the outline of a near-black
        # part is darker still and merges with it, as traced ink does
        r = int(round(s))
        vmin = cv2.erode(np.where(sprite > 0.05, fill.max(2), 1.0).astype(np.float32),
                         cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
        hsv[..., 2] = np.minimum(hsv[..., 2], vmin) * rng.uniform(0.2, 0.75)
        ink = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    color = new_lines[..., None] * ink + (1.0 - new_lines[..., None]) * fill
    return {"color": np.clip(color, 0, 1).astype(np.float32), "fill": fill.astype(np.float32),
            "lines": new_lines.astype(np.float32), "ink": np.ascontiguousarray(ink, np.float32)}


def make_anime_frame(seed: int, width: int = 456, height: int = 256) -> dict:
    """A seeded TV-anime-looking frame: one make_clip frame (no flow) restyled by :func:`anime_style`."""
    from .clip import make_clip
    clip = make_clip(seed, width=width, height=height, n_frames=1, flow=False)
    return anime_style(clip.frames[0], np.random.default_rng([seed, 0xA17E]))
