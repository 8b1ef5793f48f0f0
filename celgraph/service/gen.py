"""Regenerate the committed Python stubs from `proto/` (needs the dev extra: grpcio-tools).

    python -m celgraph.service.gen            # rewrite celgraph/service/_gen/
    python -m celgraph.service.gen --check    # exit 1 if the committed stubs are stale
    python -m celgraph.service.gen --out DIR  # write elsewhere (the staleness test does this)

protoc names modules after the .proto path (`celgraph/v1/graph_service_pb2.py`, imported as
`celgraph.v1`); we keep the descriptor's file name `celgraph/v1/graph_service.proto` (reflection and
the protobuf descriptor pool see it) but flatten the files into `celgraph/service/_gen/` and make
the grpc module import its sibling relatively, so `celgraph.service._gen` imports work.
"""
from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = ROOT / "proto"
PROTOS = ["celgraph/v1/graph_service.proto"]
GEN_DIR = Path(__file__).resolve().parent / "_gen"

_INIT = '"""Generated from proto/celgraph/v1/*.proto by `python -m celgraph.service.gen`. Do not edit."""\n'

# Lines that name the generator's version: they differ between grpcio-tools releases without the
# contract changing, so the staleness check ignores them.
VERSION_LINES = re.compile(r"(Protobuf Python Version|ValidateProtobufRuntimeVersion|"
                           r"_runtime_version\.Domain|GRPC_GENERATED_VERSION =|^\s*\d+,\s*$|^\s*'',\s*$)")


def generate(out: Path) -> list[Path]:
    """Run protoc on PROTOS into `out` (created); returns the files written."""
    try:
        from grpc_tools import protoc
    except ImportError:  # pragma: no cover - dev extra missing
        raise SystemExit("grpcio-tools is not installed: pip install -e '.[dev]'") from None
    import importlib.resources
    well_known = str(importlib.resources.files("grpc_tools") / "_proto")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="celgraph-gen-") as tmp:
        args = ["grpc_tools.protoc", f"-I{PROTO_ROOT}", f"-I{well_known}", f"--python_out={tmp}",
                f"--pyi_out={tmp}", f"--grpc_python_out={tmp}", *(str(PROTO_ROOT / p) for p in PROTOS)]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed (see above)")
        written = []
        for src in sorted(Path(tmp).rglob("*.py*")):
            text = src.read_text()
            # `from celgraph.v1 import graph_service_pb2 as ...` → sibling import inside _gen
            text = re.sub(r"^from celgraph\.v1 import (\w+) as", r"from . import \1 as", text, flags=re.M)
            dest = out / src.name
            dest.write_text(text)
            written.append(dest)
    (out / "__init__.py").write_text(_INIT)
    return [out / "__init__.py", *written]


def _normalise(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not VERSION_LINES.search(line))


def stale_files(committed: Path = GEN_DIR) -> list[str]:
    """Names of the generated files whose committed copy differs from a fresh generation."""
    with tempfile.TemporaryDirectory(prefix="celgraph-gen-check-") as tmp:
        fresh = generate(Path(tmp) / "_gen")
        names = {p.name for p in fresh} | {p.name for p in committed.glob("*.py*")}
        stale = []
        for name in sorted(names):
            a, b = Path(tmp) / "_gen" / name, committed / name
            if not a.is_file() or not b.is_file() or _normalise(a.read_text()) != _normalise(b.read_text()):
                stale.append(name)
        return stale


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m celgraph.service.gen", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=GEN_DIR, help=f"output folder (default {GEN_DIR})")
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed stubs are stale")
    args = ap.parse_args(argv)
    if args.check:
        stale = stale_files(args.out)
        if stale:
            print(f"stale generated stubs: {', '.join(stale)} — run python -m celgraph.service.gen",
                  file=sys.stderr)
            return 1
        print("generated stubs are up to date")
        return 0
    if args.out == GEN_DIR and GEN_DIR.exists():
        for old in GEN_DIR.glob("*.py*"):
            old.unlink()
        shutil.rmtree(GEN_DIR / "__pycache__", ignore_errors=True)
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
