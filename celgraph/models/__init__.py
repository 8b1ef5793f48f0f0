"""Torch networks and classical backends used by the nodes; nothing here knows the engine.

Import the submodules directly (``from celgraph.models.raft import raft_large``): this package
imports nothing heavy itself, so ``import celgraph.models`` does not pull in torch or OpenCV.

* ``raft``            RAFT / RAFT-small optical flow, weight-compatible with the official checkpoints
* ``flow_classical``  OpenCV DIS optical flow, the fallback when no RAFT weights are at hand
* ``flow_viz``        flow → colour (Middlebury wheel), colour-wheel legend, ``.flo`` files
"""
