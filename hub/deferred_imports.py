"""Modules imported on first use instead of at import time.

great-expectations imports ``scipy.stats`` and ``altair`` at module level for
expectations Triad's suites do not use by default (KL divergence, KS tests and
their charts). Importing them costs about 1.5 s of every command that
validates a batch; a stand-in module imports the real one the first time an
attribute is read, so a suite that does use them still works.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any

_lock = threading.RLock()


class _Deferred(ModuleType):
    """Stands in ``sys.modules`` for a module until one of its attributes is read."""

    def __init__(self, name: str, spec: Any) -> None:
        super().__init__(name)
        self.__spec__ = spec   # the import system reads it; it must not trigger the load

    def __getattr__(self, attr: str) -> Any:   # only called for attributes the stand-in lacks
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        return getattr(_load(self), attr)


def _load(stub: _Deferred) -> ModuleType:
    with _lock:
        real = stub.__dict__.get("_deferred_real")
        if real is None:
            name = stub.__name__
            if sys.modules.get(name) is stub:
                del sys.modules[name]
            real = importlib.import_module(name)
            stub.__dict__["_deferred_real"] = real
        return real


def defer(*names: str) -> None:
    """Put stand-ins for ``names`` into ``sys.modules`` unless they are imported already or missing."""
    with _lock:
        for name in names:
            if name in sys.modules:
                continue
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError):
                continue
            if spec is not None:
                sys.modules[name] = _Deferred(name, spec)
