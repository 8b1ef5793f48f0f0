"""Suites of bench/real.py, one module each: ``run(data, docs, quick) -> Markdown``.

Shared helpers for reading the real material live in :mod:`realbench.common`."""
