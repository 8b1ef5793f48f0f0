"""The runtime: port types, NodeType base + registry, hashing, caches, planner, executor, events, errors."""
from .cache import DiskStore, ObjectCache, RamCache, default_cache_dir
from .errors import CODES, Cancelled, CelgraphError, GraphInvalid, Issue, NodeFailed
from .events import Event
from .node import CheckContext, Context, In, NodeType, Out, Params
from .params import Bool, Choice, Float, Int, IntList, Param, ParamError, Path, String
from .registry import Registry, register, registry
from .runtime import CacheCheckFailed, CancelToken, Engine, RunResult, default_engine
from .types import (PORT_TYPES, FileRef, Flow, Image, Labels, LineArt, Mask, PortType, PortTypeError,
                    Sprites, Transforms, as_image)

__all__ = [n for n in dir() if not n.startswith("_")]
