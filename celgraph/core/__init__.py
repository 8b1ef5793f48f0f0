"""The descriptor layer (the ground floor): port types, params, NodeType and its contexts, the
registry, errors, hashing and atomic writes. It imports nothing else of celgraph; the scene model
(`celgraph.graph`), the runtime (`celgraph.engine`) and the node types are built on it."""
from .atomic import atomic_path, atomic_write, write_bytes, write_text
from .errors import CODES, Cancelled, CelgraphError, GraphInvalid, Issue, NodeFailed
from .hashing import canonical_json, file_digest, sha256_text
from .node import CheckContext, Context, In, NodeType, Out, Params, normalize_params
from .params import Bool, Choice, Float, Int, IntList, Param, ParamError, PathParam, String
from .registry import Registry, register, registry
from .types import (PORT_TYPES, FileRef, Flow, Image, Labels, LineArt, Mask, PortType, PortTypeError,
                    Sprites, Transforms, as_image)

__all__ = [n for n in dir() if not n.startswith("_")]
