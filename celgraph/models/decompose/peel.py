"""Warm-up alpha by flow peeling (ToonDecompose step 1, paper §3.2).

Samples are (pair, y, x) entries of the flow bundle: the flow from frame i to frame j at pixel
(x, y). Coordinates: f = i/FN, t = j/FN, x = col/W, y = row/H (FN frames, W×H the frame size).

Phase A, sequential peeling, objects k = 0 … N−1 one after another, each trained on the entries
no object has claimed yet (labels < 0):
  * object 0, the background: an affine flow field per pair, x' = a·x + b·y + c, y' = d·x + e·y + f,
    flow = (x' − x, y' − y), with (a … f) = MLP(PE_6(f, t)); trained with graduated trimming: only
    samples whose error is below ∞ / 32 / 16 / 8 px (over the four quarters of its schedule) count —
    a RANSAC-like robust fit of the dominant motion. Or (`background="lsq"`) each pair's affine fitted
    directly by iteratively trimmed least squares with the same thresholds (closed form, fast).
  * objects k ≥ 1: flow = MLP([PE_6(f, t), x, y]) (x, y raw: smooth, non-rigid flows), no trimming.
    Or (`foreground="ransac"`) each pair's affine by RANSAC on the unclaimed samples, then the
    objects renumbered so that each sprite keeps its number in every pair (mean colour + centroid).
  * loss: Σ‖pred − gt‖₂ over the batch (an L1 of norms: robust).
  * afterwards every entry the object explains within 2 px is labelled k — overwriting earlier
    labels, so a later object can take pixels from an earlier one (upstream behaviour).
Phase B, joint blending over all entries: every object's flow, d_k = ‖flow_k − gt‖, winner-take-all
onehot = one-hot(argmin d_k), a gate where the objects clearly disagree (std_k d_k > 4 px), and
    L = Σ|target − seg(f, x, y, colour)|·gate + Σ‖Σ_k onehot_k·flow_k − gt‖
so the segmentation MLP learns who owns which pixel while the winners keep refining their flows.
target = onehot, except where the background's motion misses the flow by more than `background_px`
(16 px; not upstream): there the target is the nearest *sprite* and the gate is on. The background is
one robustly fitted global motion, so flow it misses belongs to a sprite even when that sprite's own
fitted motion misses it too (a body that moves unlike the head its affine locked onto); upstream's
argmin hands such pixels to whichever motion is nearer, often the slowly panning background.
Labels: argmax of seg(f, x, y, colour) for every pixel of every frame (seg never sees flow).

All pixel thresholds are in pixels of a 256-px-high frame (upstream's working height) and scale
with the frame height. The dense passes run over whole images in batches, not row by row.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from . import resumable as R
from .mlp import IMLP, positional_encoding


@dataclass(frozen=True)
class PeelConfig:
    objects: int = 2
    iters: int = 40000                  # phase A, per object
    blend_iters: int = 40000            # phase B
    batch: int = 10000
    hidden: int = 256
    layers_bg: int = 6
    layers_fg: int = 12
    layers_seg: int = 8
    hidden_seg: int = 0                 # width of the segmentation MLP; 0 = hidden
    pe_freqs: int = 6
    lr: float = 1e-4
    trim_px: tuple = (32.0, 16.0, 8.0)  # object 0: thresholds from 1/4, 2/4, 3/4 of its schedule
    inlier_px: float = 2.0
    gate_px: float = 4.0
    background_px: float = 16.0         # phase B: flow that object 0 misses by more than this is a sprite's; 0 = off
    background: str = "mlp"             # "mlp" (upstream) or "lsq" (per-pair trimmed least squares)
    foreground: str = "mlp"             # "mlp" (upstream) or "ransac" (per-pair RANSAC affine)
    work_scale: float = 1.0             # resolution of the flow samples relative to the frames
    reference_height: int = 256         # pixel thresholds are given at this frame height
    seed: int = 0
    checkpoint_every: int = 0           # iterations per checkpoint segment; 0 = one per stage


# The presets: `full` is upstream's configuration; `cpu` and `preview` are reductions for a 2-core CPU
# (16 frames at 456×256 in about a minute, resp. seconds) — see docs/decompose.md. Both fit the
# sprites' flow by per-pair RANSAC with consistent numbering instead of coordinate MLPs: faster,
# and on plate + 2 sprites it separates the sprites where the MLPs merge them (docs/decompose.md).
PRESETS: dict[str, PeelConfig] = {
    "full": PeelConfig(),
    "cpu": PeelConfig(iters=800, blend_iters=3000, batch=1024, hidden=64, hidden_seg=128, layers_bg=4, layers_fg=6,
                      layers_seg=6, lr=1e-3, work_scale=0.5, checkpoint_every=500, foreground="ransac"),
    "preview": PeelConfig(iters=300, blend_iters=1000, batch=1024, hidden=32, hidden_seg=64, layers_bg=3,
                          layers_fg=4, layers_seg=4, lr=2e-3, work_scale=0.25, checkpoint_every=0,
                          foreground="ransac"),
}


def _area(img: np.ndarray, w: int, h: int) -> np.ndarray:
    if img.shape[1] == w and img.shape[0] == h:
        return np.ascontiguousarray(img, np.float32)
    return cv2.resize(np.ascontiguousarray(img, np.float32), (w, h), interpolation=cv2.INTER_AREA)


class Peeler:
    """The step-1 optimisation as a resumable trainer (see resumable.run)."""

    def __init__(self, cfg: PeelConfig, frames: np.ndarray, pairs: list[tuple[int, int, np.ndarray]],
                 device: str = "cpu", progress: R.Progress | None = None):
        if cfg.objects < 2:
            raise ValueError("WarmupAlpha needs at least 2 objects (0 is the background)")
        if not pairs:
            raise ValueError("no flow pairs: the clip needs at least 2 frames")
        self.cfg, self.device, self._progress = cfg, torch.device(device), progress or (lambda p, m: None)
        T, H, W = frames.shape[:3]
        self.T, self.H, self.W, self.FN = T, H, W, T
        w, h = max(4, round(W * cfg.work_scale)), max(4, round(H * cfg.work_scale))
        self.w, self.h = w, h
        self.px = H / cfg.reference_height              # pixel thresholds scale with the frame height
        dev = self.device
        self.frames_full = torch.from_numpy(np.ascontiguousarray(frames, np.float32)).to(dev)
        self.flows = torch.from_numpy(np.stack([_area(fl, w, h) for _, _, fl in pairs])).to(dev)  # P×h×w×2
        self.src = torch.tensor([i for i, _, _ in pairs], device=dev)
        self.dst = torch.tensor([j for _, j, _ in pairs], device=dev)
        ft = torch.stack([self.src, self.dst], 1).float() / self.FN
        self.pe_pairs = positional_encoding(ft, cfg.pe_freqs)                                    # P×24
        # normalised coordinates of the work grid's pixel centres, in full-resolution terms
        self.xs = (((torch.arange(w, device=dev) + 0.5) * (W / w) - 0.5) / W).float()
        self.ys = (((torch.arange(h, device=dev) + 0.5) * (H / h) - 0.5) / H).float()
        self.P = len(pairs)
        self.labels = torch.full((self.P, h, w), -1, dtype=torch.int8, device=dev)

        self.gen = torch.Generator(device=dev).manual_seed(cfg.seed)
        n_pe = self.pe_pairs.shape[1]
        if cfg.background == "mlp":
            self.bg = IMLP(n_pe, 6, cfg.layers_bg, cfg.hidden, self.gen).to(dev)
        elif cfg.background == "lsq":
            self.bg = _PairAffine(self.P).to(dev)
        else:
            raise ValueError(f"background must be 'mlp' or 'lsq', not {cfg.background!r}")
        if cfg.foreground == "mlp":
            self.fg = torch.nn.ModuleList(IMLP(n_pe + 2, 2, cfg.layers_fg, cfg.hidden, self.gen)
                                          for _ in range(cfg.objects - 1)).to(dev)
        elif cfg.foreground == "ransac":
            self.fg = torch.nn.ModuleList(_PairAffine(self.P) for _ in range(cfg.objects - 1)).to(dev)
        else:
            raise ValueError(f"foreground must be 'mlp' or 'ransac', not {cfg.foreground!r}")
        self.seg = IMLP(6, cfg.objects, cfg.layers_seg, cfg.hidden_seg or cfg.hidden, self.gen).to(dev)
        self.opts = {f"object{k}": torch.optim.Adam(self._object_params(k), lr=cfg.lr) for k in range(cfg.objects)}
        self.opts["blend"] = torch.optim.Adam([*self.bg.parameters(), *self.fg.parameters(),
                                               *self.seg.parameters()], lr=cfg.lr)
        self.stage_iters = {f"object{k}": (0 if self._closed_form(k) else cfg.iters) for k in range(cfg.objects)}
        self.stage_iters["blend"] = cfg.blend_iters
        self._total = sum(self.stage_iters.values())
        self._done = {k: 0 for k in self.stage_iters}

    # ---- networks -------------------------------------------------------------------------
    def _closed_form(self, k: int) -> bool:
        """Object k is fitted without iterations (per-pair least squares or RANSAC)."""
        return self.cfg.background == "lsq" if k == 0 else self.cfg.foreground == "ransac"

    def _object_params(self, k: int):
        return list(self.bg.parameters()) if k == 0 else list(self.fg[k - 1].parameters())

    def _flow(self, k: int, p: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """S×2 flow in pixels of object k at entries (pair p, normalised x, y)."""
        net = self.bg if k == 0 else self.fg[k - 1]
        if isinstance(net, _PairAffine) or k == 0:
            c = net(self.pe_pairs)[p] if isinstance(net, IMLP) else net.coeffs[p]
            return torch.stack([c[:, 0] * x + c[:, 1] * y + c[:, 2] - x,
                                c[:, 3] * x + c[:, 4] * y + c[:, 5] - y], 1)
        return net(torch.cat([self.pe_pairs[p], x[:, None], y[:, None]], 1))

    def _entries(self, idx: torch.Tensor):
        hw = self.h * self.w
        p, r = idx // hw, idx % hw
        yi, xi = r // self.w, r % self.w
        return p, yi, xi, self.xs[xi], self.ys[yi], self.flows.view(-1, 2)[idx]

    # ---- resumable interface -------------------------------------------------------------------
    def segments(self) -> list[R.Segment]:
        return [s for stage, n in self.stage_iters.items() for s in R.split(stage, n, self.cfg.checkpoint_every)]

    def run_segment(self, seg: R.Segment) -> None:
        if seg.stage == "blend":
            self._blend(seg.start, seg.stop)
        else:
            k = int(seg.stage[len("object"):])
            if k == 0 and self.cfg.background == "lsq":
                self._fit_lsq()
            elif k and self.cfg.foreground == "ransac":
                self._fit_ransac(k)
            else:
                self._peel(k, seg.start, seg.stop)
            if seg.stop == self.stage_iters[seg.stage]:
                self._assign(k)
                if k == self.cfg.objects - 1 and self.cfg.foreground == "ransac" and k >= 2:
                    self._consistent_ids()

    def state_dict(self) -> dict:
        return {"bg": R.module_state(self.bg), "fg": R.module_state(self.fg), "seg": R.module_state(self.seg),
                "opts": {k: R.optimizer_state(o) for k, o in self.opts.items()},
                "labels": R.to_numpy(self.labels), "generator": R.generator_state(self.gen)}

    def load_state_dict(self, state: dict) -> None:
        R.load_module_state(self.bg, state["bg"])
        R.load_module_state(self.fg, state["fg"])
        R.load_module_state(self.seg, state["seg"])
        for k, o in self.opts.items():
            R.load_optimizer_state(o, state["opts"][k])
        self.labels = R.from_numpy(state["labels"], self.device)
        R.load_generator_state(self.gen, state["generator"])

    # ---- phase A -----------------------------------------------------------------------------
    def _report(self, stage: str, i: int, loss: float | None = None) -> None:
        self._done[stage] = i
        msg = f"{stage} {i}/{self.stage_iters[stage]}" + ("" if loss is None else f" loss {loss:.4g}")
        self._progress(sum(self._done.values()) / max(self._total, 1), msg)

    def _pool(self) -> torch.Tensor:
        """Flat indices of the entries no object has claimed (all entries when none is left)."""
        free = torch.nonzero(self.labels.view(-1) < 0).squeeze(1)
        return free if len(free) else torch.arange(self.labels.numel(), device=self.device)

    def _threshold(self, k: int, i: int, n: int) -> float:
        if k != 0:
            return math.inf
        quarter = min(4 * i // max(n, 1), 3)
        return math.inf if quarter == 0 else self.cfg.trim_px[quarter - 1] * self.px

    def _peel(self, k: int, start: int, stop: int) -> None:
        cfg, stage = self.cfg, f"object{k}"
        opt, pool = self.opts[stage], self._pool()
        for i in range(start, stop):
            pick = pool[torch.randint(len(pool), (cfg.batch,), generator=self.gen, device=self.device)]
            p, _, _, x, y, gt = self._entries(pick)
            err = torch.linalg.vector_norm(self._flow(k, p, x, y) - gt, dim=1)
            thr = self._threshold(k, i, self.stage_iters[stage])
            if thr != math.inf:
                err = err * (err.detach() < thr)
            loss = err.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if i % 10 == 9 or i == stop - 1:
                self._report(stage, i + 1, float(loss.detach()) / cfg.batch)

    def _fit_lsq(self) -> None:
        """Object 0 without a network: per pair, affine flow by least squares on the unclaimed samples,
        refitted on those within 32, 16, then 8 px (the MLP's trimming schedule, in closed form)."""
        ys, xs = torch.meshgrid(self.ys, self.xs, indexing="ij")
        X = torch.stack([xs.reshape(-1), ys.reshape(-1), torch.ones_like(xs).reshape(-1)], 1).double()
        coeffs = torch.zeros(self.P, 6, dtype=torch.float64, device=self.device)
        for q in range(self.P):
            gt = self.flows[q].reshape(-1, 2).double()
            keep = (self.labels[q].reshape(-1) < 0)
            if keep.sum() < 3:
                keep = torch.ones_like(keep)
            A = torch.linalg.lstsq(X[keep], gt[keep]).solution            # 3×2: flow = [x y 1]·A
            for thr in self.cfg.trim_px:
                sel = keep & (torch.linalg.vector_norm(X @ A - gt, dim=1) < thr * self.px)
                if sel.sum() < 3:
                    break
                A = torch.linalg.lstsq(X[sel], gt[sel]).solution
            # in the MLP's parameterisation: flow_x = a·x + b·y + c − x
            coeffs[q] = torch.stack([A[0, 0] + 1, A[1, 0], A[2, 0], A[0, 1], A[1, 1] + 1, A[2, 1]])
            self._report("object0", 0, None)
        with torch.no_grad():
            self.bg.coeffs.copy_(coeffs.float())

    def _fit_ransac(self, k: int) -> None:
        """Object k ≥ 1 without a network: per pair, the affine motion that most unclaimed samples
        follow within ``inlier_px`` (OpenCV RANSAC + refinement, seeded). A sprite moves nearly
        rigidly, so a robust fit locks onto one sprite where a coordinate MLP, smooth but flexible,
        tends to fit several at once (upstream's weak spot with N ≥ 3)."""
        cv2.setRNGSeed(self.cfg.seed + k)
        ys, xs = torch.meshgrid(self.ys, self.xs, indexing="ij")
        pts = torch.stack([xs.reshape(-1) * self.W, ys.reshape(-1) * self.H], 1).cpu().numpy().astype(np.float32)
        coeffs = self.fg[k - 1].coeffs.detach().clone()
        for q in range(self.P):
            free = (self.labels[q].reshape(-1) < 0).cpu().numpy()
            flow = self.flows[q].reshape(-1, 2).cpu().numpy()
            A = None
            if free.sum() >= 6:
                src = pts[free]
                A, _ = cv2.estimateAffine2D(src, src + flow[free], method=cv2.RANSAC,
                                            ransacReprojThreshold=self.cfg.inlier_px * self.px,
                                            maxIters=2000, confidence=0.999, refineIters=10)
            if A is None:
                A = np.float64([[1, 0, 0], [0, 1, 0]])
            # flow in px = A·(X, Y, 1) − (X, Y) with X = x·W, Y = y·H, in _flow's parameterisation
            (a, b, c), (d, e, f) = A
            coeffs[q] = torch.tensor([(a - 1) * self.W + 1, b * self.H, c, d * self.W, (e - 1) * self.H + 1, f],
                                     dtype=coeffs.dtype)
            self._report(f"object{k}", 0, None)
        with torch.no_grad():
            self.fg[k - 1].coeffs.copy_(coeffs)

    @torch.no_grad()
    def _consistent_ids(self, rounds: int = 3) -> None:
        """Give each sprite the same object number in every pair. Per-pair RANSAC finds the sprites
        in an order that can differ between pairs; here each pair's objects ≥ 1 are matched
        (Hungarian) to prototypes — mean colour of the claimed pixels in the source frame, and their
        centroid — and renumbered, coefficients and labels alike. Prototypes start from the pair
        with the most claimed pixels and become the per-object medians after each round."""
        from scipy.optimize import linear_sum_assignment
        K = self.cfg.objects - 1
        small = torch.nn.functional.interpolate(self.frames_full.permute(0, 3, 1, 2), size=(self.h, self.w),
                                                mode="area").permute(0, 2, 3, 1)            # T×h×w×3
        ys, xs = torch.meshgrid(self.ys, self.xs, indexing="ij")
        feats = torch.full((self.P, K, 5), float("nan"), device=self.device)
        for q in range(self.P):
            img = small[self.src[q]]
            for k in range(1, K + 1):
                m = self.labels[q] == k
                if int(m.sum()) >= 4:
                    feats[q, k - 1] = torch.cat([img[m].mean(0), 0.5 * torch.stack([xs[m].mean(), ys[m].mean()])])
        f = feats.cpu().numpy()
        counts = (self.labels >= 1).flatten(1).sum(1).cpu().numpy()
        proto = f[int(np.argmax(counts))].copy()
        perms = np.tile(np.arange(K), (self.P, 1))
        for _ in range(rounds):
            for q in range(self.P):
                cost = np.nan_to_num(np.linalg.norm(f[q][:, None] - proto[None], axis=2), nan=1e3)
                r, c = linear_sum_assignment(cost)
                perms[q, c] = r                          # new object c + 1 ← old object perms[q, c] + 1
            aligned = np.stack([f[q][perms[q]] for q in range(self.P)])
            with np.errstate(all="ignore"):
                new = np.nanmedian(aligned, axis=0)
            proto = np.where(np.isnan(new), proto, new)
        coeffs = torch.stack([self.fg[k].coeffs.detach() for k in range(K)])                  # K×P×6
        labels = self.labels.clone()
        for q in range(self.P):
            for new_k, old_k in enumerate(perms[q]):
                self.fg[new_k].coeffs[q] = coeffs[old_k, q]
                labels[q][self.labels[q] == old_k + 1] = new_k + 1
        self.labels = labels

    @torch.no_grad()
    def _dense_flow(self, k: int, q: int) -> torch.Tensor:
        """h×w×2 flow of object k for pair q, the whole image in one batch."""
        ys, xs = torch.meshgrid(self.ys, self.xs, indexing="ij")
        p = torch.full((self.h * self.w,), q, device=self.device, dtype=torch.long)
        return self._flow(k, p, xs.reshape(-1), ys.reshape(-1)).view(self.h, self.w, 2)

    @torch.no_grad()
    def _assign(self, k: int) -> None:
        """Label k wherever object k explains the flow within 2 px (overwriting earlier labels)."""
        thr = self.cfg.inlier_px * self.px
        for q in range(self.P):
            inl = torch.linalg.vector_norm(self._dense_flow(k, q) - self.flows[q], dim=-1) < thr
            self.labels[q][inl] = k

    # ---- phase B -----------------------------------------------------------------------------
    def _blend(self, start: int, stop: int) -> None:
        """Samples are full-resolution pixels of every pair (the segmentation MLP must see the colours
        it will label, thin dark outlines included); their flow is read at the work-grid cell."""
        cfg, opt, H, W = self.cfg, self.opts["blend"], self.H, self.W
        n = self.P * H * W
        for i in range(start, stop):
            pick = torch.randint(n, (cfg.batch,), generator=self.gen, device=self.device)
            p, r = pick // (H * W), pick % (H * W)
            Y, X = r // W, r % W
            yi = ((Y.float() + 0.5) * (self.h / H)).long().clamp_(0, self.h - 1)
            xi = ((X.float() + 0.5) * (self.w / W)).long().clamp_(0, self.w - 1)
            gt = self.flows[p, yi, xi]
            x, y = X.float() / W, Y.float() / H
            flows = torch.stack([self._flow(k, p, x, y) for k in range(cfg.objects)], 1)     # S×N×2
            d = torch.linalg.vector_norm(flows - gt[:, None], dim=2)                         # S×N
            with torch.no_grad():
                onehot = torch.nn.functional.one_hot(d.argmin(1), cfg.objects).float()
                gate = d.std(1) > cfg.gate_px * self.px
                target = onehot
                if cfg.background_px > 0:        # not the background's motion: some sprite's, fitted or not
                    missed = d[:, 0] > cfg.background_px * self.px
                    nearest_sprite = torch.nn.functional.one_hot(1 + d[:, 1:].argmin(1), cfg.objects).float()
                    target = torch.where(missed[:, None], nearest_sprite, onehot)
                    gate = gate | missed
            f = self.src[p].float() / self.FN
            m = self.seg(torch.cat([f[:, None], x[:, None], y[:, None], self.frames_full[self.src[p], Y, X]], 1))
            loss = ((target - m).abs() * gate.float()[:, None]).sum() + \
                torch.linalg.vector_norm((onehot[:, :, None] * flows).sum(1) - gt, dim=1).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if i % 10 == 9 or i == stop - 1:
                self._report("blend", i + 1, float(loss.detach()) / cfg.batch)

    # ---- outputs ---------------------------------------------------------------------------------
    @torch.no_grad()
    def labels_full(self, chunk: int = 1 << 16) -> np.ndarray:
        """T×H×W int32: argmax of the segmentation MLP over every pixel of every frame."""
        H, W = self.H, self.W
        ys, xs = torch.meshgrid(torch.arange(H, device=self.device) / H, torch.arange(W, device=self.device) / W,
                                indexing="ij")
        xy = torch.stack([xs.reshape(-1), ys.reshape(-1)], 1).float()
        out = np.zeros((self.T, H, W), np.int32)
        for t in range(self.T):
            col = self.frames_full[t].reshape(-1, 3)
            f = torch.full((H * W, 1), t / self.FN, device=self.device)
            inp = torch.cat([f, xy, col], 1)
            lab = torch.cat([self.seg(inp[a:a + chunk]).argmax(1) for a in range(0, len(inp), chunk)])
            out[t] = lab.view(H, W).cpu().numpy()
        return out

    @torch.no_grad()
    def peel_labels(self) -> np.ndarray:
        """P×h×w int8: the phase-A assignment (−1 = unclaimed), for inspection."""
        return self.labels.cpu().numpy()


class _PairAffine(torch.nn.Module):
    """Object 0 for background='lsq': one learnable affine per pair (filled by the trimmed fit)."""

    def __init__(self, n_pairs: int):
        super().__init__()
        self.coeffs = torch.nn.Parameter(torch.tensor([[1.0, 0, 0, 0, 1.0, 0]]).repeat(n_pairs, 1))


def decompose_labels(cfg: PeelConfig, frames: np.ndarray, pairs, device: str = "cpu",
                     progress: R.Progress | None = None, checkpoint: R.Checkpoint | None = None,
                     on_resume=None) -> tuple[np.ndarray, Peeler]:
    """Run step 1 end to end: T×H×W int32 labels (0 … N−1) and the trained Peeler."""
    peeler = Peeler(cfg, frames, pairs, device, progress)
    R.run(peeler, checkpoint, on_resume)
    return peeler.labels_full(), peeler
