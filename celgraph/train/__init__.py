"""celgraph.train: training entry points for the project's own network weights.

No pretrained weights can be installed or downloaded, so the networks are trained here, from
scratch, on procedurally generated cartoon data (:mod:`celgraph.synth`), and the small results
are committed under ``celgraph/models/weights`` with an entry in ``celgraph/models/MODEL_CARD.md``.

Modules:

* :mod:`celgraph.train.data` — synthetic flow pairs (frame t, frame t±k, exact flow, valid
  mask) with crop / flip / colour-jitter augmentation, and the fixed held-out evaluation pairs.
* :mod:`celgraph.train.flow` — RAFT / RAFT-small (sequence loss, AdamW, one-cycle LR, gradient
  clipping), held-out evaluation beside DIS, export to safetensors, and ``graph train flow``.
  ``python -m celgraph.train.flow --help``.
* :mod:`celgraph.train.gapfill`, :mod:`celgraph.train.sketch`, :mod:`celgraph.train.colorize` —
  the patch trainers (``graph train gapfill|sketch|colorize``), on :mod:`celgraph.train.pool`
  (patch pools stored as npz shards).
* :mod:`celgraph.train.loop` — what all four share: the run folder, log, resumable checkpoints,
  the step loop and the command-line pieces; :mod:`celgraph.train.cli` — the ``graph train``
  command that gathers the four sub-commands (:func:`add_train_parser`).
"""
