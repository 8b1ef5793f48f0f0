"""The runtime (above `celgraph.graph`): caches, the planner, executors (local threads, Dask),
events. It also re-exports the descriptor layer (`celgraph.core`), so node authors keep writing
``from celgraph.engine import NodeType, In, Out, Float, Image``."""
from ..core import *  # noqa: F401,F403  (the node-authoring names; engine is above core)
from ..core import __all__ as _core_names
from ..core.params import PathParam as Path  # noqa: F401  (PathParam's old name, kept for plug-ins; not in __all__)
from .cache import DiskStore, ObjectCache, RamCache, default_cache_dir
from .events import Event
from .runtime import CacheCheckFailed, CancelToken, Engine, RunResult, default_engine

__all__ = [*_core_names, "DiskStore", "ObjectCache", "RamCache", "default_cache_dir", "Event",
           "CacheCheckFailed", "CancelToken", "Engine", "RunResult", "default_engine"]
