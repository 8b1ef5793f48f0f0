"""Render-farm chunking (`graph plan`): the jobs OpenCue, Deadline or Tractor run for a scene."""
from __future__ import annotations

from ..graph.frames import format_frames
from ..graph.validate import ResolvedGraph
from .planner import make_plan


def farm_jobs(resolved: ResolvedGraph, scene_path: str, chunk: int, cache_dir: str | None = None) -> list[dict]:
    """Jobs for a render farm: one job computing the clip-scope nodes the targets need (once, for
    the whole range), then per-frame chunks of `chunk` frames that depend on it. Chunks are safe
    to run in parallel on one shared cache folder."""
    plan = make_plan(resolved)
    clip_nodes = sorted({t.node for t in plan.tasks.values() if t.frame is None and t.wants})
    frames = plan.requested
    per_frame_targets = [n for n in plan.targets if n not in clip_nodes]
    base = ["graph", "run", scene_path] + (["--cache-dir", str(cache_dir)] if cache_dir else [])
    jobs: list[dict] = []
    if clip_nodes:       # each asking for the outputs the whole run reads of it, no more
        clip_targets = [_wanted(n, plan.tasks[(n, None)].wants, plan) for n in clip_nodes]
        jobs.append({"id": "clip", "frames": format_frames(plan.frames),
                     "command": base + ["--targets", ",".join(clip_targets), "--frames", str(frames[0])],
                     "depends": [], "note": "clip-scope nodes: whole frame range, run once"})
    if per_frame_targets:
        for i in range(0, len(frames), chunk):
            part = frames[i:i + chunk]
            spec = format_frames(part)
            jobs.append({"id": f"frames-{spec}", "frames": spec,
                         "command": base + ["--frames", spec, "--targets", ",".join(
                             _wanted(n, resolved.outputs[n], plan) for n in per_frame_targets)],
                         "depends": ["clip"] if clip_nodes else []})
    return jobs


def _wanted(node: str, outputs, plan) -> str:
    """A --targets entry: the node alone when every output is wanted, else node.output, ..."""
    names = [o.name for o in plan.resolved.nodes[node].type.outputs]
    if set(names) <= set(outputs):
        return node
    return ",".join(f"{node}.{o}" for o in names if o in outputs)
