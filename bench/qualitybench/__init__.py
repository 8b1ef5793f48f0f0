"""The suites of bench/quality.py, one module each (shared pieces in common.py; shared metrics in
celgraph.synth.metrics)."""
