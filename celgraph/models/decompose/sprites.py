"""Sprite learning (ToonDecompose steps 4-6): stages s1 and s2, and the export.

Samples are pixels (t, y, x) of the clip. For object k, (u_k, v_k) = H_k[t]·(x, y, 1) is where the
pixel lands on k's unit canvas (WarmupHomography's transforms).

Sprite contents:
  * object 0, the background plate: C0 = MLP(PE_L(u0, v0, t)) → colour (t = frame/T);
  * objects k ≥ 1: a non-learned canvas per frame ("CUBE"), T×C×C×3, read by nearest lookup at
    (t, v·C, u·C) and written by splats (no gradient).
Pixel MLPs ("sprite-from-sprite"): M_k(t, y, x, colour, contents of every *other* object, detached)
→ colour c_k and alpha a_k. Composite: Î = Σ_k c_k·clip(a_k, 0, 1) (additive, no depth order).

Stage s1 (reconstruction): L = Σ|Î − I| + Σ_k|label_k − a_k| + Σ|C0(u0, v0, τ) − I|·label_0 with a
random time τ (a time-invariant, inpainted plate); canvases ← ½·canvas + ½·clip(I·a_k) at a position
jittered by N(0, 0.03) canvas units.
Stage s2 (self-supervision): d_k = ‖content_k − I‖, the background's d_0 set to 65536 where above
16/256; L_occ = Σ_k|onehot(argmin d)_k − a_k|; L = L_occ + L_label, plus from 1/6 of the stage
Σ|C0(u0, v0, t) − I|·clip(a_0) (a_0 detached); canvases splat as in s1 until 1/2 of the stage, then
are overwritten without jitter. The colour heads get no loss in s2 (upstream drops L_blend there).
The plate learns from no pixel `held_out` returns (its median start and both memory losses): where the
warm-up lost (part of) a sprite — whole frames (plate_frames) and bounded carried masks (carried_sprites).
Optionally (plate_revote > 0) the texture plate is rebuilt after s2 from the learnt alphas (SpriteLearner._revote).
With plate_evidence > 0 (`cpu`, `preview`), the texels the learnt alphas show as background for too few frames, and
never clear of a sprite, are filled in the plate that is delivered (SpriteLearner._fill_unseen: shift-map completion
where no frame shows the plate, which continues the façade around it, see inpaint_texture; the texels some frame
shows are then smoothed into it);
with plate_holes > 0 (`cpu`, `preview`) the votes of the holes the alphas leave inside the sprites are taken back from
the learnt plate between s1 and s2 (SpriteLearner._take_back_holes: s2 then gives those pixels to the sprite) and from
the delivered plate after s2 (hole_correction); with plate_pockets > 0 (`cpu`, `preview`) the delivered plate's holes
also take the pockets in the sprites' colours the alphas leave where a sprite leaves the frame (pocket_pixels,
sprite_coloured), and the export gives their pixels whose plate the fill made up to the sprite (SpriteLearner._give).
The fill's pixel MLPs keep the plate they learnt with, so it changes the alphas only through _give.
Export: the rendered plate C0(u0, v0, t) (the delivered texture where there is one); per object the alpha a_k;
foreground layers are the frame times a_k (the cut-out of the original pixels, not the canvas texture); the
transforms.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from . import resumable as R
from .mlp import IMLP, positional_encoding


@dataclass(frozen=True)
class SpriteConfig:
    s1_iters: int = 40000
    s2_iters: int = 60000
    batch: int = 10000
    hidden: int = 256
    pixel_layers: int = 8
    content_layers: int = 10
    content_pe: int = 12
    canvas: int = 512
    lr: float = 1e-4
    jitter: float = 0.03
    ema: float = 0.5
    bg_gate: float = 16.0 / 256.0
    memory_switch: float = 1.0 / 6.0        # s2: the real-time memory loss from here on
    overwrite_switch: float = 0.5           # s2: canvases overwritten without jitter from here on
    seed: int = 0
    checkpoint_every: int = 0
    plate: str = "mlp"                      # mlp | texture | texture+mlp (see SpriteLearner._plate)
    plate_texels: int = 2048                # texture: largest side in texels
    plate_density: float = 2.0              # texture: texels per frame pixel (where the plate is seen closest)
    plate_lr: float = 5e-3                  # texture: SGD step of the texels (0: the median start is kept)
    plate_median: str = "labels"            # texture start: median of the background-labelled pixels, or of "all"
    plate_align: int = 0                    # texture: passes of per-frame plate alignment (see plate_offsets)
    plate_align_sigma: float = 2.0          # texture: smoothing of the alignment offsets (pixels at 256 high)
    label_band: float = 0.0                 # s2: no label loss within this many pixels (at 256 high) of a label edge
    plate_carry: float = 0.9                # carry a sprite into frames where the warm-up kept less than this share of it
    plate_align_gate: float = 0.0           # alignment: flow counts only where the plate it moves matches the frame
    plate_align_keep: float = 0.97          # alignment: a pass is kept if it brings the plate error below this share
    plate_min_votes: int = 0                # texture: texels fewer frames see as background, all of them near a
    plate_near: float = 8.0                 # sprite (within plate_near px at 256 high), are filled, not learnt
    plate_revote: float = 0.0               # texture, > 0: after s2 the plate is rebuilt from the learnt alphas' background,
                                            # this many px (at 256 high) away from the sprites (see _revote); 0 = off
    plate_evidence: float = 0.0             # texture, > 0: after s2, texels the learnt alphas show as background for fewer
    plate_clear: float = 4.0                # than this many frames' worth, and never plate_clear px (at 256 high) or more
                                            # from a sprite, are filled in the delivered plate (see _fill_unseen); 0 = off
    plate_holes: float = 0.0                # texture, > 0: before s2 the learnt plate, after s2 the delivered one, drop the
                                            # votes of the holes the alphas leave in a closing of radius plate_holes px
                                            # (at 256 high) of the sprites (_take_back_holes, _fill_unseen); 0 = off
    plate_fill: str = "shiftmap"            # the delivered plate's emptied texels: "shiftmap" continues the structure around
                                            # those no frame shows (inpaint_texture), "pushpull" averages it (fill_holes)
    plate_pockets: float = 0.0              # texture, with plate_holes > 0: for the delivered plate, the background regions of
                                            # a frame below this share of its largest count as holes too (pockets the alphas
                                            # leave in a sprite or between it and the frame's edge, see pocket_pixels); those
                                            # in the sprite's colours (POCKET_*) are taken back, and go to the sprite where the
                                            # plate is filled (_give); 0 = off


PRESETS: dict[str, SpriteConfig] = {
    "full": SpriteConfig(checkpoint_every=10000),
    "cpu": SpriteConfig(s1_iters=1500, s2_iters=2500, batch=2048, hidden=64, pixel_layers=6, content_layers=8,
                        content_pe=10, canvas=256, lr=1e-3, checkpoint_every=500, plate="texture", plate_align=1,
                        plate_align_gate=32.0 / 256.0, label_band=3.0, plate_evidence=8.0, plate_holes=3.0,
                        plate_pockets=0.1),
    "preview": SpriteConfig(s1_iters=500, s2_iters=800, batch=1024, hidden=64, pixel_layers=4, content_layers=6,
                            content_pe=8, canvas=128, lr=2e-3, checkpoint_every=0, plate="texture", plate_align=1,
                            plate_align_gate=32.0 / 256.0, label_band=3.0, plate_evidence=8.0, plate_holes=3.0,
                            plate_pockets=0.1),
}


@dataclass
class Export:
    """Per frame arrays (T first): plate T×H×W×3, alpha T×N×H×W (clipped to 0..1), labels T×H×W."""
    plate: np.ndarray
    alpha: np.ndarray
    labels: np.ndarray


class SpriteLearner:
    """Stages s1 and s2 as a resumable trainer (see resumable.run)."""

    def __init__(self, cfg: SpriteConfig, frames: np.ndarray, labels: np.ndarray, transforms: np.ndarray,
                 device: str = "cpu", progress: R.Progress | None = None):
        T, H, W = frames.shape[:3]
        N = transforms.shape[1]
        if N < 2:
            raise ValueError("SpriteLearn needs at least 2 objects (0 is the background)")
        if transforms.shape[0] != T or labels.shape != (T, H, W):
            raise ValueError(f"frames {frames.shape}, labels {labels.shape} and transforms {transforms.shape} "
                             "disagree")
        self.cfg, self.T, self.H, self.W, self.N = cfg, T, H, W, N
        self.device = dev = torch.device(device)
        self._progress = progress or (lambda p, m: None)
        self.frames = torch.from_numpy(np.ascontiguousarray(frames, np.float32)).to(dev)
        self.labels = torch.from_numpy(np.asarray(labels, np.int64)).to(dev)
        Hn = transforms / transforms[:, :, 2:3, 2:3]
        # the pixels the plate learns from (its median start, s1's and s2's memory losses): not those of
        # a sprite the warm-up lost (see held_out)
        held = held_out(frames, labels, Hn, cfg)
        self.teach = torch.from_numpy(~held).to(dev)                                              # T×H×W
        self.trust = torch.from_numpy(label_trust(labels, cfg.label_band * H / 256.0)).to(dev)      # T×H×W
        self.Hs = torch.from_numpy(np.ascontiguousarray(Hn, np.float32)).to(dev)      # T×N×3×3
        self.gen = torch.Generator(device=dev).manual_seed(cfg.seed)
        self.pixel = torch.nn.ModuleList(IMLP(3 + 3 * N, 4, cfg.pixel_layers, cfg.hidden, self.gen)
                                         for _ in range(N)).to(dev)
        if cfg.plate not in PLATES:
            raise ValueError(f"plate {cfg.plate!r}: use one of {PLATES}")
        if cfg.plate_fill not in FILLS:
            raise ValueError(f"plate_fill {cfg.plate_fill!r}: use one of {FILLS}")
        self.content0 = None
        if "mlp" in cfg.plate:
            self.content0 = IMLP(3 * 2 * cfg.content_pe, 3, cfg.content_layers, cfg.hidden, self.gen).to(dev)
            if cfg.plate == "texture+mlp":          # a residual on the texture: starts at zero
                with torch.no_grad():
                    self.content0.net[-1].weight.zero_()
                    self.content0.net[-1].bias.zero_()
        self.texture = self.offsets = self.delivered = None    # delivered: the texture the export renders (_fill_unseen)
        self.invented: np.ndarray | None = None                 # side×side bool: its texels the fill made up (_give)
        self._alphas: dict[int, np.ndarray] = {}                # per frame, from _fill_unseen's pass, for the export
        self._holes: np.ndarray | None = None                   # T×H×W, the same pass's holes (pockets in), for _give
        self._held, self._H0 = held, Hn[:, 0]
        if "texture" in cfg.plate:
            side = texture_side(Hn[:, 0], cfg.plate_texels, cfg.plate_density)
            background = (labels == 0) & ~held    # (not all labelled pixels: a sprite the warm-up lost
            votes = background if cfg.plate_median == "labels" else np.ones_like(labels, bool)   # pulls the plate)
            near = near_sprites(labels, cfg.plate_near * H / 256.0) if cfg.plate_min_votes > 0 else None
            doubt = lambda off: doubtful_texels(votes, near, Hn[:, 0], side, off, cfg.plate_min_votes)
            tex = median_texture(frames, votes, Hn[:, 0], side, drop=doubt(None))
            offsets = None
            err = plate_error(frames, background, render_texture(tex, Hn[:, 0], (H, W)))
            for _ in range(cfg.plate_align):          # a pass is kept only if the plate fits the background clearly
                                                      # better (plate_align_keep, by 3 %: on clips whose plate the
                                                      # homographies hold, the flow is noise and moves the error by
                                                      # ±1.5 %, ±2.8 % with the v11 gate on the seed 1 bench clip)
                off = plate_offsets(frames, background, render_texture(tex, Hn[:, 0], (H, W), offsets), offsets,
                                    cfg.plate_align_sigma * H / 256.0, cfg.plate_align_gate)
                tex_a = median_texture(frames, votes, Hn[:, 0], side, off, drop=doubt(off))
                err_a = plate_error(frames, background, render_texture(tex_a, Hn[:, 0], (H, W), off))
                if err_a >= cfg.plate_align_keep * err:
                    break
                tex, offsets, err = tex_a, off, err_a
            if offsets is not None:
                self.offsets = torch.from_numpy(offsets).to(dev)                           # T×H×W×2
            if cfg.plate_min_votes > 0:                 # doubtful texels: filled from their neighbours, not learnt
                d = doubt(offsets).astype(np.float32)[..., None]
                self.teach &= torch.from_numpy(render_texture(d, Hn[:, 0], (H, W), offsets, nearest=True)[..., 0] < 0.5).to(dev)
            self.texture = torch.nn.Parameter(torch.from_numpy(tex).permute(2, 0, 1)[None].contiguous().to(dev),
                                              requires_grad=cfg.plate_lr > 0)
        C = cfg.canvas
        self.cubes = torch.rand((N - 1, T, C, C, 3), generator=self.gen, device=dev)
        params = [*self.pixel.parameters()] + ([*self.content0.parameters()] if self.content0 is not None else [])
        self.opts = {k: torch.optim.Adam(params, lr=cfg.lr) for k in ("s1", "s2")}
        # the texels by plain SGD: each is touched by few samples, and Adam's normalised steps turn
        # those rare, noisy L1 gradients into grain; SGD on an L1 loss walks each texel towards the
        # median of the pixels that land on it
        self.texture_opt = None
        if self.texture is not None and cfg.plate_lr > 0:
            self.texture_opt = torch.optim.SGD([self.texture], lr=cfg.plate_lr)
        self.stage_iters = {"s1": cfg.s1_iters}
        if cfg.plate_holes > 0 and self.texture is not None:
            self.stage_iters["holes"] = 0           # no iterations: one checkpointed segment between s1 and s2
        self.stage_iters["s2"] = cfg.s2_iters
        if cfg.plate_revote > 0:
            if self.texture is None:
                raise ValueError(f"plate_revote {cfg.plate_revote}: the re-vote rebuilds a texture plate, and plate is "
                                 f"{cfg.plate!r}: use plate = texture or texture+mlp")
            self.stage_iters["revote"] = 0          # no iterations: one segment, so it is checkpointed like the others
        if (cfg.plate_evidence > 0 or cfg.plate_holes > 0) and self.texture is not None:
            self.stage_iters["fill"] = 0            # the same: one checkpointed segment after s2 (and the re-vote)
        self._done = {k: 0 for k in self.stage_iters}
        self._teach = self.teach.cpu().numpy()          # T×H×W bool, for the alpha passes

    # ---- sampling and the model -----------------------------------------------------------------
    def _uv(self, t: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """S×N×2 canvas coordinates of pixels (t, x, y); the plate's through the alignment offsets."""
        Hs = self.Hs[t]                                                   # S×N×3×3
        p = torch.stack([x, y, torch.ones_like(x)], 1).float()           # S×3
        p = p[:, None].repeat(1, self.N, 1)                               # S×N×3
        if self.offsets is not None:
            p[:, 0, :2] += self.offsets[t, y, x]
        q = (Hs @ p[..., None])[..., 0]                                   # S×N×3
        return q[..., :2] / q[..., 2:3]

    def _plate(self, uv0: torch.Tensor, tn: torch.Tensor, texture: torch.Tensor | None = None) -> torch.Tensor:
        """S×3 plate colour at canvas points uv0 (S×2) and times tn (S): the texture sampled bilinearly
        (time-invariant), the PE-MLP over (u, v, t), or the texture plus the MLP as a residual. `texture`:
        another texture of the same size in place of the learnt one (the delivered plate)."""
        out = 0.0
        if self.texture is not None:
            grid = (uv0 * 2.0 - 1.0)[None, None]                                 # 1×1×S×2, align_corners
            tex = self.texture if texture is None else texture
            out = torch.nn.functional.grid_sample(tex, grid, mode="bilinear", padding_mode="border",
                                                  align_corners=True)[0, :, 0].T
        if self.content0 is not None:
            out = out + self.content0(positional_encoding(torch.cat([uv0, tn[:, None]], 1), self.cfg.content_pe))
        return out

    def _cells(self, t: torch.Tensor, uv: torch.Tensor):
        """Flat indices into one object's canvas (T·C·C) for lookups at canvas coordinates uv (S×2)."""
        C = self.cfg.canvas
        ui = torch.round(uv[:, 0] * C).long().clamp(0, C - 1)
        vi = torch.round(uv[:, 1] * C).long().clamp(0, C - 1)
        return (t * C + vi) * C + ui

    def _canvas(self, k: int, cells: torch.Tensor) -> torch.Tensor:
        return self.cubes[k - 1].view(-1, 3)[cells]

    def _pixels(self, t, y, x, colour, contents) -> tuple[torch.Tensor, torch.Tensor]:
        """Every pixel MLP: (S×N×3 colours, S×N alphas). contents: S×N×3 (detached here)."""
        contents = contents.detach()
        base = torch.stack([t.float() / self.T, y.float() / self.H, x.float() / self.W], 1)
        outs = []
        for k in range(self.N):
            others = torch.cat([contents[:, j] for j in range(self.N) if j != k], 1)
            outs.append(self.pixel[k](torch.cat([base, colour, others], 1)))
        o = torch.stack(outs, 1)
        return o[..., :3], o[..., 3]

    @torch.no_grad()
    def _splat(self, t, uv, colour, alpha, jitter: bool) -> None:
        """canvas_k ← ema·canvas_k + (1−ema)·clip(I·clip(a_k)) at (jittered) positions; hard overwrite
        when jitter is off. Duplicate cells in a batch: the last sample wins (deterministic)."""
        value = (colour[:, None] * alpha.clamp(0, 1)[..., None]).clamp(0, 1)             # S×N×3
        for k in range(1, self.N):
            pos = uv[:, k]
            if jitter:
                pos = pos + torch.randn(pos.shape, generator=self.gen, device=self.device) * self.cfg.jitter
            cells = self._cells(t, pos)
            order = torch.sort(cells, stable=True)
            last = torch.ones_like(cells, dtype=torch.bool)
            last[:-1] = order.values[1:] != order.values[:-1]
            keep = order.indices[last]
            flat = self.cubes[k - 1].view(-1, 3)
            cells_k, v = cells[keep], value[keep, k]
            if jitter:
                flat[cells_k] = self.cfg.ema * flat[cells_k] + (1 - self.cfg.ema) * v
            else:
                flat[cells_k] = v

    # ---- resumable interface ---------------------------------------------------------------------
    def segments(self) -> list[R.Segment]:
        return [s for stage, n in self.stage_iters.items() for s in R.split(stage, n, self.cfg.checkpoint_every)]

    def state_dict(self) -> dict:
        state = {"pixel": R.module_state(self.pixel), "cubes": R.to_numpy(self.cubes),
                 "opts": {k: R.optimizer_state(o) for k, o in self.opts.items()},
                 "generator": R.generator_state(self.gen)}
        if self.content0 is not None:
            state["content0"] = R.module_state(self.content0)
        if self.texture is not None:
            state["texture"] = R.to_numpy(self.texture)
        if self.delivered is not None:
            state["delivered"] = R.to_numpy(self.delivered)
        if self.invented is not None:
            state["invented"] = self.invented.astype(np.uint8)
        return state

    def load_state_dict(self, state: dict) -> None:
        R.load_module_state(self.pixel, state["pixel"])
        if self.content0 is not None:
            R.load_module_state(self.content0, state["content0"])
        if self.texture is not None:
            with torch.no_grad():                   # in place: the optimisers hold this parameter
                self.texture.copy_(R.from_numpy(state["texture"], self.device))
        self.delivered = R.from_numpy(state["delivered"], self.device) if "delivered" in state else None
        self.invented = np.asarray(state["invented"]) > 0 if "invented" in state else None
        self._alphas, self._holes = {}, None
        self.cubes = R.from_numpy(state["cubes"], self.device)
        for k, o in self.opts.items():
            R.load_optimizer_state(o, state["opts"][k])
        R.load_generator_state(self.gen, state["generator"])

    def run_segment(self, seg: R.Segment) -> None:
        if seg.stage == "revote":
            self._revote()
            return
        if seg.stage == "fill":
            self._fill_unseen()
            return
        if seg.stage == "holes":
            self._take_back_holes()
            return
        cfg, opt, n = self.cfg, self.opts[seg.stage], self.stage_iters[seg.stage]
        for i in range(seg.start, seg.stop):
            loss = self._step(seg.stage, i, n)
            opt.zero_grad(set_to_none=True)
            if self.texture is not None:
                self.texture.grad = None
            loss.backward()
            opt.step()
            if self.texture_opt is not None:
                self.texture_opt.step()
            if i % 10 == 9 or i == seg.stop - 1:
                self._done[seg.stage] = i + 1
                total = sum(self.stage_iters.values())
                self._progress(sum(self._done.values()) / max(total, 1),
                               f"{seg.stage} {i + 1}/{n} loss {float(loss.detach()) / cfg.batch:.4g}")

    def _step(self, stage: str, i: int, n: int) -> torch.Tensor:
        cfg, N = self.cfg, self.N
        pick = torch.randint(self.T * self.H * self.W, (cfg.batch,), generator=self.gen, device=self.device)
        t, r = pick // (self.H * self.W), pick % (self.H * self.W)
        y, x = r // self.W, r % self.W
        colour = self.frames[t, y, x]                                          # S×3
        label = torch.nn.functional.one_hot(self.labels[t, y, x], N).float()   # S×N
        uv = self._uv(t, x, y)                                                 # S×N×2
        tn = t.float() / self.T
        memory_now = stage == "s2" and i >= n * cfg.memory_switch
        if memory_now:
            plate = self._plate(uv[:, 0], tn)
        else:
            with torch.no_grad():
                plate = self._plate(uv[:, 0], tn)
        cells = [self._cells(t, uv[:, k]) for k in range(N)]
        contents = torch.stack([plate] + [self._canvas(k, cells[k]) for k in range(1, N)], 1)   # S×N×3
        c, a = self._pixels(t, y, x, colour, contents)
        if stage == "s1":
            composite = (c * a.clamp(0, 1)[..., None]).sum(1)
            l_blend = (composite - colour).abs().sum()
            tau = torch.rand(cfg.batch, generator=self.gen, device=self.device)
            l_mem = ((self._plate(uv[:, 0], tau) - colour).abs() * (label[:, :1] * self.teach[t, y, x, None])).sum()
            loss = l_blend + (label - a).abs().sum() + l_mem
            self._splat(t, uv, colour, a.detach(), jitter=True)
        else:
            with torch.no_grad():
                d = torch.linalg.vector_norm(contents - colour[:, None], dim=2)               # S×N
                d[:, 0] = torch.where(d[:, 0] > cfg.bg_gate, torch.full_like(d[:, 0], 65536.0), d[:, 0])
                target = torch.nn.functional.one_hot(d.argmin(1), N).float()
            loss = (target - a).abs().sum() + ((label - a).abs() * self.trust[t, y, x, None]).sum()
            if memory_now:
                loss = loss + ((plate - colour).abs() * (a[:, :1].detach().clamp(0, 1) * self.teach[t, y, x, None])).sum()
            self._splat(t, uv, colour, a.detach(), jitter=i < n * cfg.overwrite_switch)
        return loss

    # ---- export ------------------------------------------------------------------------------------
    @torch.no_grad()
    def _frame(self, ti: int, chunk: int = 1 << 15, alphas: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Frame ti as the model sees it: (the rendered plate H×W×3, the alphas N×H×W, unclipped). The
        plate is the delivered texture's where there is one; the pixel MLPs always see the learnt one.
        ``alphas`` False: the plate alone (None for the alphas), without running the pixel MLPs."""
        H, W, N = self.H, self.W, self.N
        ys, xs = torch.meshgrid(torch.arange(H, device=self.device), torch.arange(W, device=self.device),
                                indexing="ij")
        ys, xs = ys.reshape(-1), xs.reshape(-1)
        t = torch.full_like(xs, ti)
        pl, al = [], []
        for a0 in range(0, H * W, chunk):
            sl = slice(a0, a0 + chunk)
            tt, yy, xx = t[sl], ys[sl], xs[sl]
            colour = self.frames[tt, yy, xx]
            uv = self._uv(tt, xx, yy)
            p = None if alphas and self.delivered is None else \
                self._plate(uv[:, 0], tt.float() / self.T, self.delivered)         # the delivered plate
            if alphas:
                learnt = self._plate(uv[:, 0], tt.float() / self.T)
                contents = torch.stack([learnt] + [self._canvas(k, self._cells(tt, uv[:, k])) for k in range(1, N)], 1)
                _, a = self._pixels(tt, yy, xx, colour, contents)
                al.append(a)
                p = learnt if p is None else p
            pl.append(p)
        plate = torch.cat(pl).view(H, W, 3).cpu().numpy()
        return plate, (torch.cat(al).T.reshape(N, H, W).cpu().numpy() if alphas else None)

    @torch.no_grad()
    def _revote(self) -> None:
        """The plate texture rebuilt as the median of the pixels the learnt alphas give the background —
        the sprites' alpha sum below ½, dilated by cfg.plate_revote px (at 256 high); never the pixels
        held_out holds — instead of the warm-up labels'. Where the warm-up lost part of a sprite in many
        frames (the Violet girl's arm in the first frames), the labels' median there is the sprite
        itself; where the learnt alpha has a hole inside a sprite (the plate, holding the sprite's
        colour, claims those pixels in s2), the pixels next to it still vote for the sprite: the margin
        keeps them out. Texels no vote is left for are filled from their neighbours (push-pull). The
        alphas are not relearnt: the export renders the new plate under them."""
        frames = self.frames.cpu().numpy()
        r = max(1, int(round(self.cfg.plate_revote * self.H / 256.0)))
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        votes = np.zeros((self.T, self.H, self.W), bool)
        for ti in range(self.T):
            _, a = self._frame(ti)
            sprite = (np.clip(a[1:], 0.0, 1.0).sum(0) >= 0.5).astype(np.uint8)
            votes[ti] = cv2.dilate(sprite, disc) == 0
            self._progress(sum(self._done.values()) / max(sum(self.stage_iters.values()), 1),
                           f"plate re-vote: frame {ti + 1}/{self.T}")
        votes &= ~self._held
        tex = median_texture(frames, votes, self._H0, self.texture.shape[-1], self._offsets_np())
        self.texture.copy_(torch.from_numpy(tex).permute(2, 0, 1)[None].to(self.device))

    @torch.no_grad()
    def _alpha_pass(self, what: str, keep: bool, pockets: bool = False
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """One pass of the pixel MLPs over the clip: per frame (T×H×W each) the learnt background weight
        1 − (the sprites' alpha sum, clipped), 0 on the pixels held_out holds (seen); the same at least
        cfg.plate_clear px (at 256 high) from the sprites, alpha sum ≥ ½ (clear); and _background's visible
        and holes (``pockets``: with the pockets). ``keep``: the alphas are kept for the export."""
        T, H, W, cfg = self.T, self.H, self.W, self.cfg
        r = cfg.plate_clear * H / 256.0
        seen = np.zeros((T, H, W), np.float32)
        clear = np.zeros((T, H, W), np.float32)
        visible = np.zeros((T, H, W), bool)
        holes = np.zeros((T, H, W), bool)
        for ti in range(T):
            _, a = self._frame(ti)
            if keep:
                self._alphas[ti] = a        # the export's: the delivered plate does not change them
            cover, visible[ti], holes[ti] = self._background(ti, a, pockets)
            seen[ti] = (1.0 - cover) * self._teach[ti]
            clear[ti] = seen[ti] * (cv2.distanceTransform((cover < 0.5).astype(np.uint8), cv2.DIST_L2, 5) >= r)
            self._progress(sum(self._done.values()) / max(sum(self.stage_iters.values()), 1),
                           f"{what}: frame {ti + 1}/{T}")
        return seen, clear, visible, holes

    def _background(self, ti: int, a: np.ndarray, pockets: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Frame ti's background under its alphas a (N×H×W): (cover, the sprites' alpha sum clipped to
        0..1; visible, the pixels it leaves to the background, alpha sum < ½, held_out's excepted; holes,
        those of them inside a closing of the sprites by a disc of cfg.plate_holes px, where the alpha let
        the plate claim a sprite's own pixels, and with ``pockets`` (cfg.plate_pockets) those in pockets
        whose colour a sprite pixel within POCKET_REACH px (at 256 high) has too, within POCKET_GATE: a
        sprite's the alpha missed, where true background enclosed by sprites and the frame's edge has its
        own colours)."""
        cover = np.clip(np.clip(a[1:], 0.0, 1.0).sum(0), 0.0, 1.0)
        sprite = (cover >= 0.5).astype(np.uint8)
        visible = (sprite == 0) & self._teach[ti]
        holes = np.zeros_like(visible)
        rh = int(round(self.cfg.plate_holes * self.H / 256.0))
        if rh > 0:
            disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * rh + 1, 2 * rh + 1))
            holes = visible & (cv2.morphologyEx(sprite, cv2.MORPH_CLOSE, disc) > 0)
            if pockets and self.cfg.plate_pockets > 0:
                pocket = pocket_pixels(visible, rh, self.cfg.plate_pockets)
                holes |= sprite_coloured(self.frames[ti].cpu().numpy(), pocket, sprite > 0,
                                         int(round(POCKET_REACH * self.H / 256.0)), POCKET_GATE)
        return cover, visible, holes

    def _without_holes(self, tex: np.ndarray, visible: np.ndarray, holes: np.ndarray) -> np.ndarray:
        """The texture (side×side×3) with what the holes' votes did to it taken back (hole_correction):
        texels they land on shifted, those only they vote for NaN (to fill)."""
        delta, lost = hole_correction(self.frames.cpu().numpy(), visible, holes, self._H0, tex.shape[0],
                                      self._offsets_np())
        tex = np.clip(tex + delta, 0.0, 1.0)
        tex[lost] = np.nan
        return tex

    def _offsets_np(self) -> np.ndarray | None:
        return None if self.offsets is None else self.offsets.cpu().numpy()

    @torch.no_grad()
    def _take_back_holes(self) -> None:
        """Between s1 and s2 (cfg.plate_holes): the learnt texture without its holes' votes. s1 taught the
        plate from the warm-up labels and the alphas that follow them; where both leave holes in a
        sprite (the Violet girl's sleeve at the frame's edge in frames 32-38), the plate learns the
        sprite's colour, matches it there in s2, and s2's targets keep the holes open. Taken back
        before s2, the plate there is the street's again, and s2 gives more of those pixels to the
        sprite (the alphas change; _fill_unseen takes back what is left for the delivered plate)."""
        _, _, visible, holes = self._alpha_pass("plate holes", keep=False)
        tex = self._without_holes(self.texture[0].permute(1, 2, 0).cpu().numpy(), visible, holes)
        self.texture.copy_(torch.from_numpy(fill_holes(tex)).permute(2, 0, 1)[None].to(self.device))

    @torch.no_grad()
    def _fill_unseen(self) -> None:
        """The delivered plate: the learnt texture with its texels that no frame shows clearly filled from
        the structure around them (cfg.plate_fill: shift-map completion, inpaint_texture; or push-pull), as
        the texels no frame sees at all are. A texel's evidence is the sum
        over frames of the learnt background weight (_alpha_pass's seen) of the pixel that lands on it;
        its clear evidence the same over pixels at least cfg.plate_clear px from the sprites. Texels with
        evidence below cfg.plate_evidence (frames' worth) and clear evidence below ½ are filled. Those are
        the plate's few votes from beside a sprite: where the alphas miss part of it (hair strands, a
        sleeve at the frame's edge: the Violet cut's first frames), its colours. The texels at the
        leading edge of a pan, also seen by few frames but clear of the sprites, keep theirs.

        With cfg.plate_holes, the votes from holes in the learnt alphas are taken back as well: each
        texel they land on moves by what they moved its median (hole_correction), and the texels only
        they vote for are filled. A median shift, not a re-vote: the texels keep what SGD fitted (a
        median re-vote of the whole plate costs Violet 1.4 dB).

        With cfg.plate_fill "shiftmap", the emptied texels are first inpainted by shift-map completion
        (inpaint_texture: the façade continued), then those some frame shows (evidence ≥ ½ frame) are
        emptied again and filled by push-pull from the completed plate: a smooth guess is nearer the
        frames there, where a copied window misplaced by a few texels shows in the composite (shift-map
        everywhere costs Violet 0.5 dB and seed 1 1.6 dB; push-pull from the plate without the completion
        draws the sprite's traces around them into light streaks).

        With cfg.plate_pockets, the holes include the pockets (pocket_pixels): background regions cut off
        from the rest, which the alphas leave inside a sprite or between it and the frame's edge (the Violet
        girl's sleeve where it leaves the frame, frames 32-38, the ghost behind her in frames 0 and 25).

        The pixel MLPs keep the learnt texture as their input, so the alphas are the same with or
        without either rule; only _give, at the export, hands the sprites the pockets whose plate is made up."""
        cfg = self.cfg
        self._alphas = {}
        seen, clear, visible, holes = self._alpha_pass("plate evidence", keep=True, pockets=True)
        self._holes = holes                             # what _give needs with the kept alphas
        side = self.texture.shape[-1]
        offsets = self._offsets_np()
        tex = self.texture[0].permute(1, 2, 0).cpu().numpy().copy()
        if cfg.plate_holes > 0:
            tex = self._without_holes(tex, visible, holes)
        evidence = texel_evidence(seen, self._H0, side, offsets)
        if cfg.plate_evidence > 0:
            tex[(evidence < cfg.plate_evidence) & (texel_evidence(clear, self._H0, side, offsets) < 0.5)] = np.nan
        empty = np.isnan(tex[..., 0])
        if cfg.plate_fill == "shiftmap":
            tex = inpaint_texture(tex)
            tex[empty & (evidence >= 0.5)] = np.nan     # shown by some frame: smoothed into the completed plate
        tex = fill_holes(tex)
        self.delivered = torch.from_numpy(tex).permute(2, 0, 1)[None].contiguous().to(self.device)
        self.invented = empty if cfg.plate_pockets > 0 else None

    def _give(self, ti: int, a: np.ndarray, holes: np.ndarray | None = None) -> np.ndarray:
        """Frame ti's alphas (N×H×W) with its holes (pockets included; `holes`, H×W, when the fill's pass
        computed them for these alphas, else from _background) over texels the fill made up
        (self.invented) handed to the sprite around them: its alpha raised, the plate's lowered, by the
        share of made-up plate there. Such a pixel is a sprite's the alpha missed (its plate came from
        the pocket's own votes alone); the plate there is now the fill, so left to the plate the
        composite would show the fill instead of the frame. The sprite around a pixel: the largest
        alpha after a blur over POCKET_REACH px (at 256 high)."""
        if holes is None:
            _, _, holes = self._background(ti, a, pockets=True)
        if not holes.any():
            return a
        offsets = self._offsets_np()
        made_up = render_texture(self.invented.astype(np.float32)[..., None], self._H0[ti:ti + 1], (self.H, self.W),
                                 None if offsets is None else offsets[ti:ti + 1])[0, ..., 0]
        give = holes * np.clip(made_up, 0.0, 1.0)
        a = a.copy()
        s = POCKET_REACH * self.H / 256.0
        k = 1 + np.stack([cv2.GaussianBlur(np.clip(x, 0.0, 1.0), (0, 0), s) for x in a[1:]]).argmax(0)
        for j in range(1, self.N):
            a[j] = np.where((k == j) & (give > 0), np.maximum(a[j], give), a[j])
        a[0] = np.minimum(a[0], 1.0 - give)
        return a

    def export(self) -> Export:
        T, H, W, N = self.T, self.H, self.W, self.N
        plate = np.zeros((T, H, W, 3), np.float32)
        alpha = np.zeros((T, N, H, W), np.float32)
        for ti in range(T):
            kept = self._alphas.pop(ti, None)           # the fill's pass ran the pixel MLPs already
            plate[ti], a = self._frame(ti, alphas=kept is None)
            alpha[ti] = a if kept is None else kept
            if self.invented is not None:
                alpha[ti] = self._give(ti, alpha[ti], None if kept is None or self._holes is None else self._holes[ti])
            self._progress(1.0, f"export frame {ti + 1}/{T}")
        self._holes = None                              # (like the kept alphas: used once)
        alpha = np.clip(alpha, 0.0, 1.0)
        return Export(plate=np.clip(plate, 0.0, 1.0), alpha=alpha, labels=alpha.argmax(1).astype(np.int32))


PLATES = ("mlp", "texture", "texture+mlp")
FILLS = ("shiftmap", "pushpull")
POCKET_REACH = 16.0             # px at 256 high: a pocket pixel is the sprite's if a sprite pixel this near has its colour,
POCKET_GATE = 32.0 / 256.0      # within this colour distance (plate_align_gate's: the plate matches the frame)


def texture_side(H0: np.ndarray, largest: int, density: float = 1.0) -> int:
    """Texels per side of the plate texture over the unit canvas: `density` texels per frame pixel at
    the frame where the plate is seen closest (the smallest canvas step per pixel), at most `largest`.
    H0: T×3×3 frame pixel → unit canvas (last row 0, 0, 1)."""
    step = np.sqrt(np.abs(np.linalg.det(H0[:, :2, :2]))).min()
    return int(min(largest, max(8, np.ceil(density / max(step, 1e-9)) + 1)))


def plate_frames(labels: np.ndarray, n: int) -> np.ndarray:
    """T bool: the frames whose pixels may teach the plate — those where the warm-up kept every
    sprite. A frame where an object's pixel count falls below half of its larger neighbour's lost
    (part of) that sprite to the background (sprites grow and shrink smoothly): its "background"
    would paint a ghost of the sprite into the plate where no other frame sees it (see held_out)."""
    counts = np.stack([(labels == k).sum((1, 2)) for k in range(1, n)], 1).astype(np.float64)   # T×(N−1)
    if len(counts) < 2:
        return np.ones(len(labels), bool)
    prev = np.concatenate([counts[1:2], counts[:-1]])
    nxt = np.concatenate([counts[1:], counts[-2:-1]])
    ok = (counts >= 0.5 * np.maximum(prev, nxt)).all(1)
    return ok if ok.any() else np.ones(len(labels), bool)


def held_out(frames: np.ndarray, labels: np.ndarray, H: np.ndarray, cfg: SpriteConfig) -> np.ndarray:
    """T×H×W bool: the pixels the plate must not learn from (its median start, both memory losses)
    although the warm-up may label them background — where it lost (part of) a sprite. The plate
    learnt from them takes a ghost of the sprite (the texels, stepped directly, learn what even one
    frame shows), which then explains the sprite's colours, and stage s2 hands the sprite to the plate.
    Two rules: whole frames where a sprite's count falls below half of a neighbour's (plate_frames);
    and, with cfg.plate_carry > 0, the sprites' carried masks in frames that lost part of one
    (carried_sprites), less the pixels that look like the plate the other frames see (the median of
    the background pixels outside the carried masks, within cfg.bg_gate, allowing 3 px at 256 high of
    misregistration): a sprite that truly changed shape (a girl bowing, whose transform cannot follow)
    uncovers background there, and the plate must learn it."""
    T, h, w = labels.shape
    held = np.broadcast_to(~plate_frames(labels, H.shape[1])[:, None, None], labels.shape).copy()
    if cfg.plate_carry <= 0:
        return held
    carried = carried_sprites(labels, H, cfg.plate_carry)
    if carried.any():
        side = texture_side(H[:, 0], cfg.plate_texels, cfg.plate_density)
        votes = (labels == 0) & ~carried
        plate = render_texture(median_texture(frames, votes, H[:, 0], side, fill=False), H[:, 0], (h, w))
        r = max(1, int(round(3 * h / 256.0)))
        for t in np.flatnonzero(carried.any((1, 2))):
            held[t] |= carried[t] & unlike_plate(frames[t], plate[t], cfg.bg_gate, r)
    return held


def carried_sprites(labels: np.ndarray, H: np.ndarray, keep: float) -> np.ndarray:
    """T×H×W bool: where the warm-up lost (part of) a sprite. Walking the clip forwards, then backwards,
    each sprite's labelled pixels (labels: T×H×W, 0 … N−1) are carried frame to frame through its
    transforms (H: T×N×3×3, frame pixel → unit canvas); in a frame where the warm-up labels fewer than
    `keep` of the carried pixels (nor of those it labelled in the frame they came from: a transform
    that wrongly grows the sprite does not count), the carried mask is kept and carried on, else the
    frame's own labels replace it. Bounded: only frames that lost part of a sprite hold anything, and
    only inside the sprite's last complete shape (its own labels there included)."""
    T, h, w = labels.shape
    out = np.zeros(labels.shape, bool)
    for k in range(1, H.shape[1]):
        own = (labels == k).astype(np.uint8)
        for order in (range(T), range(T - 1, -1, -1)):
            ref, size, prev = None, 0, None
            for t in order:
                if ref is not None:
                    M = np.linalg.inv(H[t, k]) @ H[prev, k]          # frame prev pixel → frame t pixel
                    ref = cv2.warpPerspective(ref, M, (w, h), flags=cv2.INTER_NEAREST)
                if ref is None or own[t].sum() >= keep * min(size, ref.sum()):
                    ref, size = own[t], own[t].sum()
                else:
                    out[t] |= ref > 0
                prev = t
    return out


def unlike_plate(frame: np.ndarray, plate: np.ndarray, gate: float, r: int) -> np.ndarray:
    """H×W bool: the frame's pixels (H×W×3) farther than `gate` from every pixel of the plate (H×W×3;
    NaN where no frame saw it) within r pixels."""
    h, w = frame.shape[:2]
    pad = np.pad(plate, ((r, r), (r, r), (0, 0)), mode="edge")
    out = np.ones((h, w), bool)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dx * dx + dy * dy <= r * r:
                out &= ~(np.linalg.norm(pad[r + dy:r + dy + h, r + dx:r + dx + w] - frame, axis=-1) <= gate)
    return out


def label_trust(labels: np.ndarray, band: float) -> np.ndarray:
    """T×H×W bool: the warm-up labels (T×H×W) that stage s2 holds the alphas to — all but the pixels
    within `band` pixels of an edge between two labels. The warm-up labels come from flow at a
    fraction of the frame size: their edges are a few pixels off, and a sprite's dark outline often
    falls on the background side; there the self-supervised target alone decides who owns a pixel."""
    if band <= 0:
        return np.ones(labels.shape, bool)
    r = max(1, int(round(band)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    lab = np.asarray(labels).astype(np.uint8)
    return np.stack([cv2.dilate(x, kernel) == cv2.erode(x, kernel) for x in lab])


def median_texture(frames: np.ndarray, background: np.ndarray, H0: np.ndarray, side: int,
                   offsets: np.ndarray | None = None, budget: int = 1 << 26, fill: bool = True,
                   drop: np.ndarray | None = None) -> np.ndarray:
    """side×side×3 float32 plate texture: per texel, the median over frames of the pixels labelled
    background (`background`, T×H×W bool, eroded by one pixel so edges of sprites stay out) that land
    on it through H0 (T×3×3, frame pixel → unit canvas; texel i sits at u = i/(side−1)), each frame
    pixel p moved first by its alignment offset (`offsets`, T×H×W×2: p lands at H0·(p + offset));
    texels no frame saw — and those `drop` marks (side×side bool) — are filled from their neighbours (push-pull; left NaN if not `fill`). Done in bands of texel rows so the stack of
    warped frames stays under `budget` bytes."""
    out = np.full((side, side, 3), np.nan, np.float32)
    for r0, n, (stack,) in _texel_stacks(frames, [background], H0, side, offsets, budget):
        med = _nanmedian0(stack)
        if drop is not None:
            med[drop[r0:r0 + n]] = np.nan
        out[r0:r0 + n] = med
    return fill_holes(out) if fill else out


def hole_correction(frames: np.ndarray, visible: np.ndarray, holes: np.ndarray, H0: np.ndarray, side: int,
                    offsets: np.ndarray | None = None, budget: int = 1 << 26) -> tuple[np.ndarray, np.ndarray]:
    """What the votes from holes in the sprites' alphas did to the plate: (delta, lost). `visible`
    (T×H×W bool): the pixels the learnt alphas give the background; `holes` (a subset): those inside a
    closing of the sprites. delta (side×side×3): per texel a hole pixel lands on, the median of its
    votes but those from holes and beside them minus the median of all its votes (0 elsewhere); lost
    (side×side bool): the texels that at least half a frame of holes lands on and no other vote. The
    votes are median_texture's (its arguments); only the texel rows from the first to the last a hole
    lands on are stacked."""
    delta = np.zeros((side, side, 3), np.float32)
    lost = np.zeros((side, side), bool)
    from_holes = texel_evidence(holes.astype(np.float32), H0, side, offsets)
    hit = from_holes > 0
    rows = np.flatnonzero(hit.any(1))
    if len(rows) == 0:
        return delta, lost
    lo, hi = rows[0], rows[-1] + 1
    for r0, n, (every, others) in _texel_stacks(frames, [visible, visible & ~holes], H0, side, offsets, budget,
                                                 rows=(lo, hi)):
        m_all, m_ok = _nanmedian0(every), _nanmedian0(others)
        h = hit[r0:r0 + n]
        d = np.where(np.isnan(m_ok) | np.isnan(m_all), 0.0, m_ok - m_all)
        delta[r0:r0 + n] = np.where(h[..., None], d, 0.0)
        lost[r0:r0 + n] = (from_holes[r0:r0 + n] >= 0.5) & np.isnan(m_ok[..., 0])
    return delta, lost


def _texel_stacks(frames: np.ndarray, masks: list[np.ndarray], H0: np.ndarray, side: int,
                  offsets: np.ndarray | None, budget: int, rows: tuple[int, int] | None = None):
    """Per band of texel rows (r0, n, stacks): for each vote mask (T×H×W bool, eroded as _vote_masks
    does), the T×n×side×3 stack of the frame pixels that land on the band's texels, NaN where the mask
    does not vote. The frames are warped once per band for all masks (median_texture's loop). `rows`:
    (first, stop) texel rows, all by default."""
    T = len(frames)
    keeps = [_vote_masks(m) for m in masks]
    first, stop = rows or (0, side)
    band = max(1, min(side, budget // max(1, len(masks) * T * side * 3 * 4)))
    for r0 in range(first, stop, band):
        n = min(band, stop - r0)
        stacks = [np.full((T, n, side, 3), np.nan, np.float32) for _ in masks]
        for t in range(T):
            mx, my = texel_sources(H0[t], side, r0, n, None if offsets is None else offsets[t])
            got = cv2.remap(np.ascontiguousarray(frames[t], np.float32), mx, my, cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
            for keep, stack in zip(keeps, stacks):
                ok = cv2.remap(keep[t], mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0.5
                stack[t][ok] = got[ok]
        yield r0, n, stacks


def _vote_masks(background: np.ndarray) -> list[np.ndarray]:
    """The pixels that vote for the plate texture: the background (T×H×W bool) eroded by one pixel, so
    the edges of sprites stay out (float32 0/1 per frame, for cv2.remap)."""
    kernel = np.ones((3, 3), np.uint8)
    return [cv2.erode(b.astype(np.uint8), kernel).astype(np.float32) for b in background]


def pocket_pixels(visible: np.ndarray, r: int, share: float) -> np.ndarray:
    """H×W bool: the background pixels (`visible`, H×W bool) in pockets, the regions of the background cut
    off from its main body: holes the alphas leave inside a sprite, or between a sprite and the frame's
    edge (outside the frame counts as a sprite). An opening by a disc of radius r cuts the thin links
    between regions (gaps between hair strands, a strip along the frame's edge); the opened regions of at
    least `share` of the largest, grown back by r, are the open background, and every other background
    pixel is in a pocket (all of them if no region outlives the opening)."""
    if share <= 0 or r <= 0 or not visible.any():
        return np.zeros_like(visible)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    core = cv2.morphologyEx(visible.astype(np.uint8), cv2.MORPH_OPEN, disc, borderType=cv2.BORDER_CONSTANT,
                            borderValue=0)
    n, regions, stats, _ = cv2.connectedComponentsWithStats(core, connectivity=4)
    area = stats[1:, cv2.CC_STAT_AREA]
    if n <= 1:
        return visible.copy()
    open_ = np.concatenate([[False], area >= share * area.max()])[regions].astype(np.uint8)
    return visible & (cv2.dilate(open_, disc) == 0)


def sprite_coloured(frame: np.ndarray, pixels: np.ndarray, sprite: np.ndarray, r: int, gate: float) -> np.ndarray:
    """H×W bool: those of `pixels` (H×W bool) whose colour (frame H×W×3) a `sprite` pixel (H×W bool)
    within r px has too, within `gate` (colour distance)."""
    out = np.zeros_like(pixels)
    ys, xs = np.nonzero(pixels)
    if len(ys) == 0:
        return out
    H, W = pixels.shape
    colour = frame[ys, xs]
    best = np.full(len(ys), np.inf, np.float32)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dy * dy + dx * dx > r * r:
                continue
            y2, x2 = np.clip(ys + dy, 0, H - 1), np.clip(xs + dx, 0, W - 1)
            ok = sprite[y2, x2] & (y2 == ys + dy) & (x2 == xs + dx)
            d = np.linalg.norm(colour - frame[y2, x2], axis=-1)
            best = np.where(ok, np.minimum(best, d), best)
    out[ys, xs] = best <= gate
    return out


def near_sprites(labels: np.ndarray, r: float) -> np.ndarray:
    """T×H×W bool: the pixels within r pixels of a sprite (labels > 0; T×H×W)."""
    k = max(1, int(round(r)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    return np.stack([cv2.dilate((x > 0).astype(np.uint8), kernel) > 0 for x in labels])


def doubtful_texels(votes: np.ndarray, near: np.ndarray | None, H0: np.ndarray, side: int, offsets: np.ndarray | None,
                    k: int) -> np.ndarray | None:
    """side×side bool, or None if k is 0: the plate texels fewer than k frames see as background (`votes`,
    T×H×W) and only next to a sprite (`near`, T×H×W): pixels in the holes and along the edges of the warm-up
    labels, where they let part of the sprite through (hair strands, a sleeve). The texels at the leading edge
    of a pan, also seen by few frames, but away from the sprites, keep their votes."""
    if k <= 0:
        return None
    return (vote_counts(votes, H0, side, offsets) < k) & (vote_counts(votes & ~near, H0, side, offsets) == 0)


def vote_counts(background: np.ndarray, H0: np.ndarray, side: int, offsets: np.ndarray | None = None) -> np.ndarray:
    """side×side float32: per texel of the plate texture, how many frames see it as background — the
    votes median_texture takes its median of (same arguments)."""
    keep = _vote_masks(background)
    out = np.zeros((side, side), np.float32)
    for t in range(len(keep)):
        mx, my = texel_sources(H0[t], side, 0, side, None if offsets is None else offsets[t])
        out += cv2.remap(keep[t], mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0.5
    return out


def texel_evidence(weights: np.ndarray, H0: np.ndarray, side: int, offsets: np.ndarray | None = None) -> np.ndarray:
    """side×side float32: per texel of the plate texture, the sum over frames of `weights` (T×H×W) at the
    frame pixel that lands on it (bilinear; 0 where it falls outside the frame). Same arguments as
    vote_counts, whose masks it generalises to weights."""
    out = np.zeros((side, side), np.float32)
    for t in range(len(weights)):
        mx, my = texel_sources(H0[t], side, 0, side, None if offsets is None else offsets[t])
        out += cv2.remap(np.ascontiguousarray(weights[t], np.float32), mx, my, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out


def texel_sources(H0: np.ndarray, side: int, r0: int, n: int, offsets: np.ndarray | None = None):
    """(map_x, map_y), each n×side float32: the frame pixel that lands on each texel of rows r0 … r0+n−1
    of a side×side plate texture through H0 (frame pixel → unit canvas) after the frame's alignment
    offsets (H×W×2; p lands at H0·(p + offset(p)), inverted by two fixed-point steps: the offsets are
    smooth)."""
    j, i = np.meshgrid(np.arange(side, dtype=np.float64), np.arange(r0, r0 + n, dtype=np.float64))
    uv1 = np.stack([j / (side - 1.0), i / (side - 1.0), np.ones_like(j)])
    q = np.tensordot(np.linalg.inv(H0), uv1, 1)
    px, py = (q[0] / q[2]).astype(np.float32), (q[1] / q[2]).astype(np.float32)
    if offsets is None:
        return px, py
    mx, my = px, py
    for _ in range(2):
        off = cv2.remap(offsets, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        mx, my = px - off[..., 0], py - off[..., 1]
    return mx, my


def render_texture(texture: np.ndarray, H0: np.ndarray, hw: tuple[int, int],
                   offsets: np.ndarray | None = None, nearest: bool = False) -> np.ndarray:
    """T×h×w×C: the plate texture (side×side×C) seen in each frame through H0 (T×3×3, frame pixel →
    unit canvas) and the frames' alignment offsets (T×h×w×2 or None), as SpriteLearner._plate reads it
    (bilinearly; `nearest`: the nearest texel)."""
    h, w = hw
    side = texture.shape[0]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.empty((len(H0), h, w, texture.shape[2]), np.float32)
    for t, H in enumerate(H0):
        px, py = (xs, ys) if offsets is None else (xs + offsets[t, ..., 0], ys + offsets[t, ..., 1])
        q = np.tensordot(H, np.stack([px, py, np.ones_like(px)]), 1)
        mx = (q[0] / q[2] * (side - 1)).astype(np.float32)
        my = (q[1] / q[2] * (side - 1)).astype(np.float32)
        out[t] = cv2.remap(texture, mx, my, cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE).reshape(h, w, -1)
    return out


def plate_offsets(frames: np.ndarray, background: np.ndarray, rendered: np.ndarray, offsets: np.ndarray | None,
                  sigma: float, gate: float = 0.0) -> np.ndarray:
    """T×H×W×2 float32 alignment offsets of the plate, per frame: a homography per frame cannot follow a
    background with depth (facades at different distances slide against each other as the camera
    pans), and the median texture of misregistered frames is blurred while every frame's plate is off
    by a pixel or two along each edge. The optical flow (OpenCV DIS) from each frame to its rendered
    plate (`rendered`, T×H×W×3, already through `offsets`), kept on the background pixels (`background`)
    where the rendered plate moved by the flow matches the frame (within `gate`, a colour distance, if > 0:
    where the warm-up lost part of a sprite, its pixels are in `background`, and the flow that matches them
    to the street is noise that bends the plate under the sprite) away from the sprites (eroded by 3·σ:
    DIS's patches straddling a sprite's edge follow the sprite),
    smoothed by a normalised Gaussian of σ = `sigma` pixels and filled by push-pull where no background
    is seen (under the sprites), is added to `offsets`. A frame with no background (no votes: the
    warm-up lost a sprite there) takes the added offsets of the nearest frame that has some (the
    camera moves smoothly, and so does the parallax)."""
    T, h, w = background.shape
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    r = max(1, int(round(3 * sigma)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    added: list[np.ndarray | None] = []
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    for t in range(T):
        flow = dis.calc(_grey8(frames[t]), _grey8(rendered[t]), None)
        seen_bg = background[t]
        if gate > 0:                              # only where the plate, moved by the flow, matches the frame
            moved = cv2.remap(np.ascontiguousarray(rendered[t], np.float32), xs + flow[..., 0], ys + flow[..., 1],
                              cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            seen_bg = seen_bg & (np.linalg.norm(moved - frames[t], axis=-1) <= gate)
        m = cv2.erode(seen_bg.astype(np.uint8), kernel).astype(np.float32)
        num = cv2.GaussianBlur(flow * m[..., None], (0, 0), sigma)
        den = cv2.GaussianBlur(m, (0, 0), sigma)
        if not (den > 0.05).any():
            added.append(None)
            continue
        smooth = np.where((den > 0.05)[..., None], num / np.maximum(den, 1e-6)[..., None], np.nan)
        added.append(fill_holes(np.concatenate([smooth, np.zeros_like(smooth[..., :1])], 2).astype(np.float32))[..., :2])
    have = [t for t in range(T) if added[t] is not None]
    out = np.zeros((T, h, w, 2), np.float32) if offsets is None else np.array(offsets, np.float32, copy=True)
    if have:
        for t in range(T):
            out[t] += added[min(have, key=lambda s: (abs(s - t), s))]
    return out


def plate_error(frames: np.ndarray, background: np.ndarray, rendered: np.ndarray) -> float:
    """Mean absolute difference of the rendered plate (T×H×W×3) and the frames on the background pixels
    (T×H×W bool): the plate alignment keeps a pass only if this falls. Where the homographies already
    hold (a background moving as one plane), the flow on the plate is noise, and a pass that only
    moves the plate around is dropped."""
    if not background.any():
        return 0.0
    return float(np.abs(rendered - frames).mean(-1)[background].mean())


def _grey8(rgb: np.ndarray) -> np.ndarray:
    return (np.clip(cv2.cvtColor(np.ascontiguousarray(rgb, np.float32), cv2.COLOR_RGB2GRAY), 0, 1) * 255
            + 0.5).astype(np.uint8)


def _nanmedian0(stack: np.ndarray) -> np.ndarray:
    """np.nanmedian(stack, axis=0), vectorised (NumPy's loops over every column in Python when the
    array is large: minutes for a 78-frame plate): NaNs sort last, the middle of each column's valid
    values is picked; NaN where a column has none."""
    srt = np.sort(stack, axis=0)
    count = (~np.isnan(stack)).sum(0)
    lo = np.take_along_axis(srt, np.maximum((count - 1) // 2, 0)[None], 0)[0]
    hi = np.take_along_axis(srt, np.minimum(count // 2, len(stack) - 1)[None], 0)[0]
    return np.where(count > 0, (lo + hi) * np.float32(0.5), np.nan).astype(np.float32)


def fill_holes(img: np.ndarray) -> np.ndarray:
    """NaN pixels of an H×W×3 image filled from the valid ones by push-pull: area-averaged halvings
    of (value·valid, valid), then each level's holes filled from the next coarser one."""
    valid = ~np.isnan(img[..., 0])
    if valid.all():
        return img
    if not valid.any():
        return np.full_like(img, 0.5)
    vals = np.where(valid[..., None], img, 0.0).astype(np.float32)
    wts = valid.astype(np.float32)
    h, w = wts.shape
    if max(h, w) <= 1:
        return vals
    small = (max(1, (w + 1) // 2), max(1, (h + 1) // 2))
    sv = cv2.resize(vals, small, interpolation=cv2.INTER_AREA)
    sw = cv2.resize(wts, small, interpolation=cv2.INTER_AREA)
    coarse = np.where((sw > 0)[..., None], sv / np.maximum(sw, 1e-12)[..., None], np.nan).astype(np.float32)
    coarse = cv2.resize(fill_holes(coarse), (w, h), interpolation=cv2.INTER_LINEAR)
    return np.where(valid[..., None], vals, coarse).astype(np.float32)


INPAINT_TEXELS = 250_000     # shift-map completion works on at most this many texels (its time grows faster than
                             # linearly: on the Violet plate 301×815 at this budget takes 8 s near idle, 14 s at
                             # load 2; twice the side took 50 s at load 2)


def inpaint_texture(img: np.ndarray, budget: int = INPAINT_TEXELS) -> np.ndarray:
    """NaN texels of an H×W×3 texture (0..1) filled with the structure around them: shift-map completion
    (He & Sun 2012, "Statistics of patch offsets for image completion", OpenCV xphoto; it copies the
    image onto itself at the offsets its patches repeat at, joined by a graph cut) over the bounding box
    of the valid texels, in CIELab, scaled down to at most `budget` texels. The valid texels keep their
    values; the fill is upsampled into the NaN ones. What it leaves, and the texels outside the box (no
    frame lands on them), are filled by push-pull (fill_holes).

    For the plate no frame shows (what a sprite covers all along): push-pull averages the colours around
    it into a smooth smudge in the sprite's shape; this continues the façade's windows and walls."""
    nan = np.isnan(img[..., 0])
    if not nan.any():
        return img
    if nan.all():
        return fill_holes(img)
    ys, xs = np.nonzero(~nan)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop, hole = img[y0:y1, x0:x1], nan[y0:y1, x0:x1]
    out = img.copy()
    if hole.any():
        h, w = hole.shape
        scale = min(1.0, float(np.sqrt(budget / (h * w))))
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        rgb = np.where(hole[..., None], 0.0, np.clip(crop, 0.0, 1.0)).astype(np.float32)
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        unknown = cv2.resize(hole.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0
        lab = cv2.cvtColor((small * 255.0).round().astype(np.uint8), cv2.COLOR_RGB2Lab)
        lab[unknown] = 0
        done = np.zeros_like(lab)
        cv2.xphoto.inpaint(lab, np.where(unknown, 0, 255).astype(np.uint8), done, cv2.xphoto.INPAINT_SHIFTMAP)
        left = unknown & (done == 0).all(-1)      # Lab (0, 0, 0) is no colour: a texel no offset reached
        fill = cv2.cvtColor(done, cv2.COLOR_Lab2RGB).astype(np.float32) / 255.0
        fill = np.where(unknown[..., None], fill, small)
        fill[left] = np.nan
        fill = cv2.resize(fill_holes(fill), (w, h), interpolation=cv2.INTER_LINEAR)
        out[y0:y1, x0:x1] = np.where(hole[..., None], fill, crop)
    return fill_holes(out)


def learn_sprites(cfg: SpriteConfig, frames: np.ndarray, labels: np.ndarray, transforms: np.ndarray,
                  device: str = "cpu", progress: R.Progress | None = None, checkpoint: R.Checkpoint | None = None,
                  on_resume=None) -> tuple[Export, SpriteLearner]:
    learner = SpriteLearner(cfg, frames, labels, transforms, device, progress)
    R.run(learner, checkpoint, on_resume)
    return learner.export(), learner
