"""A named registry of plug-ins whose built-in members are imported on first use (thread-safely)."""

from __future__ import annotations

import importlib
import threading
from typing import Generic, Iterator, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """``name → plug-in``; ``builtin`` modules register themselves when first imported.

    Built-ins are imported on the first lookup, under a lock: jobs on threads (the local executor, Dask
    worker threads) may look up at the same time. A later registration of a name replaces the earlier one.
    """

    def __init__(self, builtin: tuple[str, ...]) -> None:
        self.builtin = builtin
        self.items: dict[str, T] = {}
        self._loaded = False
        self._lock = threading.RLock()

    def register(self, name: str, item: T) -> T:
        self.items[name] = item
        return item

    def _load(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if not self._loaded:
                for mod in self.builtin:
                    importlib.import_module(mod)
                self._loaded = True

    def names(self) -> tuple[str, ...]:
        self._load()
        return tuple(self.items)

    def get(self, name: str) -> T:
        """The plug-in registered as ``name``; ``KeyError`` if none."""
        self._load()
        return self.items[name]

    def values(self) -> Iterator[T]:
        self._load()
        return iter(list(self.items.values()))
