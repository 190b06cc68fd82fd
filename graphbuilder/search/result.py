"""The contract every search result keeps, so notebooks, sweeps and the editor treat all searches alike.

A result knows the graph it found (`.graph`: an ordinary `gb.Graph`, ready to open in the editor, compile or
export), draws itself (`.plot()`), and round-trips through JSON (`to_dict` / `from_dict`; `save` / `load`
write that document atomically). Nothing is pickled, so a result file from elsewhere is data like a graph file.

Sweeps (`search/sweep.py`) compare results by `metrics()`: scalar figures of merit, ``error`` (lower is better)
first where the search has one. Results travel from worker processes as that JSON document plus the graph file
(`search/transport.py`), and the receiving side finds the class by `type_name()` among the subclasses it has
imported (`named`), never by importing a name it was sent.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from typing import Any, Self

from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import Graph
from graphbuilder.ir.serialize import atomic_write


class BaseResult(ABC):
    """Base of every search result: `graph`, `plot`, `to_dict`/`from_dict`; `save`/`load` come for free."""

    @property
    @abstractmethod
    def graph(self) -> Graph:
        """The found architecture as a plain `gb.Graph` (with its trained weights where the search has them)."""

    @abstractmethod
    def plot(self, *args: Any, **kwargs: Any) -> Any:
        """A matplotlib figure of the search (the subclass says what it shows)."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """A JSON document of the result, tagged with a ``format`` string of the subclass."""

    @classmethod
    @abstractmethod
    def from_dict(cls, data: Any) -> Self:
        """Rebuild a result from `to_dict` output, validating it (raises `GraphError`)."""

    def metrics(self) -> dict[str, float]:
        """Scalar figures of merit, for tables and comparisons across results: by default the graph's
        parameter count and FLOPs (`Graph.summary`). Subclasses add theirs (``error``: lower is better)."""
        summary = self.graph.summary()
        return {"params": float(summary.total_params), "flops": float(summary.total_flops)}

    @classmethod
    def type_name(cls) -> str:
        """The class's dotted name (``module.QualName``), as results name their type in transport files."""
        return f"{cls.__module__}.{cls.__qualname__}"

    @classmethod
    def named(cls, name: str) -> type[BaseResult]:
        """The imported subclass whose `type_name()` is `name` (raises `GraphError` if none is). Only classes
        already imported are found: a name read from a file never triggers an import."""
        todo, seen = list(cls.__subclasses__()), set()
        while todo:
            sub = todo.pop()
            if sub in seen:
                continue
            seen.add(sub)
            if sub.type_name() == name:
                return sub
            todo.extend(sub.__subclasses__())
        raise GraphError(f"no search result class named {name!r} is imported here; import the module that "
                         "defines it before loading its results")

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the result as JSON, atomically (no pickle)."""
        atomic_write(os.fspath(path), (json.dumps(self.to_dict(), indent=1) + "\n").encode("utf-8"))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        """Read a result written by `save`."""
        with open(os.fspath(path), encoding="utf-8") as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise GraphError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None
        return cls.from_dict(data)
