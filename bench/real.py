"""The real-material benchmark: celgraph's nodes on frames and drawings it did not make.

    python bench/real.py --suite gapfill|sketch|colorize|flow|decomposition [--data ../shared/real]
                         [--out bench/results/real.md] [--quick]

The data folder (default: ``../shared/real`` beside the repository, or ``$CELGRAPH_REAL``) is for
measurement only; its README says what each set is and what truth it has. Each suite lives in
``bench/realbench/<suite>.py`` and exposes ``run(data: Path, out_dir: Path, quick: bool) -> str``,
returning a Markdown section (a table with the classical baseline beside each method, plus notes).
The results file keeps one section per suite, so running one suite rewrites only its own section.
"""
from __future__ import annotations

import argparse
import importlib
import os
import platform
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUITES = ("gapfill", "sketch", "colorize", "flow", "decomposition")


def default_data() -> Path:
    env = os.environ.get("CELGRAPH_REAL")
    return Path(env) if env else REPO.parent / "shared" / "real"


def merge_section(text: str, suite: str, section: str) -> str:
    """Replace (or append) the ``suite`` section of a results file between its markers."""
    begin, end = f"<!-- suite:{suite} -->", f"<!-- /suite:{suite} -->"
    block = f"{begin}\n{section.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text)
    return text.rstrip() + "\n\n" + block + "\n"


HEADER = ("# bench/real.py\n\ncelgraph's nodes on real material (`../shared/real`, measurement only: nothing "
          "is trained on it). One section per suite; each names its command, date and machine.\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", required=True, action="append", choices=SUITES,
                    help="suite to run (repeatable)")
    ap.add_argument("--data", type=Path, default=None, help="the real-material folder (default ../shared/real)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "real.md")
    ap.add_argument("--docs", type=Path, default=REPO / "docs", help="where contact sheets go")
    ap.add_argument("--quick", action="store_true", help="a smoke run on less data (not for the committed table)")
    args = ap.parse_args(argv)
    data = (args.data or default_data()).resolve()
    if not (data / "README.md").is_file():
        print(f"bench/real.py: no real-material folder at {data} (expected its README.md); "
              "pass --data DIR or set CELGRAPH_REAL", file=sys.stderr)
        return 2
    text = args.out.read_text() if args.out.is_file() else HEADER
    for suite in args.suite:
        mod = importlib.import_module(f"realbench.{suite}")
        t0 = time.perf_counter()
        load0 = os.getloadavg()[0]
        body = mod.run(data, args.docs, args.quick)
        stamp = (f"`python bench/real.py --suite {suite}{' --quick' if args.quick else ''}` — "
                 f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, Python {platform.python_version()}, "
                 f"{os.cpu_count()} CPUs, {time.perf_counter() - t0:.0f} s, load average "
                 f"{load0:.1f} → {os.getloadavg()[0]:.1f} (times are comparable only at a low load)")
        section = f"## {suite}\n\n{stamp}\n\n{body.strip()}\n"
        print(section)
        if not args.quick:
            text = merge_section(text, suite, section)
    if not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
