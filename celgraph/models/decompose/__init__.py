"""Sprite decomposition after ToonDecompose / "Sprite-from-Sprite" (Zhang, Wong, Liu, 2022).

Plain torch / numpy / OpenCV; nothing here knows the engine. The nodes in celgraph/nodes/decompose.py
feed these functions arrays and callbacks (progress, checkpoint store, flow pairs).

* ``mlp``        the coordinate MLP (IMLP) and the sin/cos positional encoding, seeded initialisation
* ``resumable``  optimisations cut into segments whose full state is checkpointed and resumed bit-exactly
* ``chain``      warm-up similarity chains over keyframes and the unit-canvas normalisation (step 2)
* ``peel``       warm-up alpha by flow peeling, joint winner-take-all blending, segmentation MLP (step 1)
* ``sprites``    sprite learning, stages s1 and s2, and the export (steps 4-6)

See ../shared/reference/toondecompose.md for the upstream algorithm this follows, and
docs/decompose.md for what differs.
"""
