"""Visualisation helpers and the contact sheet of docs/synth_contact_sheet.png.

    python -m celgraph.synth.viz docs/synth_contact_sheet.png
"""
from __future__ import annotations

import sys

import cv2
import numpy as np

from ..models.flow_viz import flow_to_color  # one flow colour wheel for the whole project


def label_colors(labels, seed=0, zero=(0.0, 0.0, 0.0)):
    """Random colour per integer label (label 0 -> ``zero``), RGB 0..1."""
    lab = np.asarray(labels)
    n = int(lab.max()) + 1 if lab.size else 1
    lut = np.random.default_rng(seed).uniform(0.15, 1.0, (max(n, 1), 3)).astype(np.float32)
    lut[0] = zero
    return lut[np.clip(lab, 0, None)]


def alpha_colors(alpha, seed=1):
    """Per-sprite alphas (S x H x W) as a colour image: sum of alpha_k * colour_k."""
    S = alpha.shape[0]
    cols = np.random.default_rng(seed).uniform(0.2, 1.0, (max(S, 1), 3)).astype(np.float32)
    return np.clip(np.tensordot(alpha.transpose(1, 2, 0), cols[:S], axes=1), 0, 1)


def gray3(x):
    return np.repeat(np.asarray(x, np.float32)[..., None], 3, axis=2)


def _label(img, text):
    out = (np.clip(img, 0, 1) * 255.0 + 0.5).astype(np.uint8)
    cv2.rectangle(out, (0, 0), (8 + 7 * len(text), 16), (0, 0, 0), -1)
    cv2.putText(out, text, (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1, cv2.LINE_AA)
    return out.astype(np.float32) / 255.0


def contact_sheet(path=None, seeds=(27, 21), frames=(0, 8), width=456, height=256):
    """Rows: frames of two clips (colour, lines, fill, regions, alpha, flow fw, occlusion fw),
    then a line-art sample with its GapFill degradation and a degraded photo."""
    from .clip import make_clip
    from .degrade import degrade_photo
    from .lineart import degrade_lines, make_lineart

    rows = []
    for seed in seeds:
        clip = make_clip(seed, width=width, height=height, n_frames=max(frames) + 2, deform=True)
        for t in frames:
            f = clip.frames[t]
            occ = gray3(1.0 - f["occ_fw"].astype(np.float32) * 0.8)
            tiles = [_label(f["color"], f"clip {seed} t={t} color"),
                     _label(gray3(1.0 - f["lines"]), "lines"),
                     _label(f["fill"], "fill"),
                     _label(label_colors(f["regions"], seed), "regions"),
                     _label(alpha_colors(f["alpha"]), "alpha (visible)"),
                     _label(flow_to_color(f["flow_fw"]), "flow fw"),
                     _label(occ, "occ fw (dark)")]
            rows.append(np.concatenate(tiles, 1))
    # line art + degradations
    s = make_lineart(3, width, height)
    d = degrade_lines(s, 4, max_gap=12)
    deg = gray3(1.0 - d["lines"])
    deg[d["gap_mask"]] = (1.0, 0.1, 0.1)
    deg[d["open_mask"] & (d["gt"] < 0.5)] *= np.array([0.75, 0.85, 1.0], np.float32)
    zoom = _zoom_on_gap(deg, d)
    photo = degrade_photo(clip.frames[0]["color"], 7, jpeg=35, blur=0.8, noise=0.02, lighting=0.35)
    tone = degrade_photo(clip.frames[0]["color"], 8, jpeg=80, screentone=0.8, lighting=None)
    tiles = [_label(s["color"], "lineart color"), _label(gray3(1.0 - s["lines"]), "lineart lines"),
             _label(label_colors(s["regions"], 3), "fill regions"),
             _label(deg, "degraded: red=gap, blue=open end"), _label(zoom, "gap zoom x4"),
             _label(photo, "degrade_photo"), _label(tone, "screentone")]
    rows.append(np.concatenate(tiles, 1))
    sheet = np.concatenate(rows, 0)
    if path is not None:
        cv2.imwrite(str(path), (np.clip(sheet, 0, 1)[..., ::-1] * 255.0 + 0.5).astype(np.uint8))
    return sheet


def _zoom_on_gap(img, d, z=4):
    H, W = img.shape[:2]
    h, w = H // z, W // z
    if d["gaps"]:
        cx, cy = d["gaps"][0]["center"]
    else:
        cx, cy = W / 2, H / 2
    x0 = int(np.clip(cx - w / 2, 0, W - w))
    y0 = int(np.clip(cy - h / 2, 0, H - h))
    crop = img[y0:y0 + h, x0:x0 + w]
    return cv2.resize(crop, (W, H), interpolation=cv2.INTER_NEAREST)


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "docs/synth_contact_sheet.png"
    contact_sheet(out)
    print("wrote", out)
