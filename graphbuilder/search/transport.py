"""Search work and its results as graph files, so they can cross process and machine boundaries as data.

Boundary: encoding and decoding only; `executors.py` decides where work runs, `sweep.py` what it means.

A *trial packet* is what a worker sends back for one unit of work: three files, zipped (stored, no compression)
into one `bytes` value.

    trial.json          format tag, the unit's key, metrics, seconds, host and pid, and either the search
                        result's JSON document (`BaseResult.to_dict`) with its class name, or the error
    graph.graph.json    the result's graph in the graph file format (docs/format.md)
    graph.safetensors   its weights

The receiving side stores the files in a folder and reads them back with the loaders every file goes through:
`Graph.load` validates the graph and its weights, `from_dict` the result document, and the result class is
looked up among the imported `BaseResult` subclasses by name (`BaseResult.named`). The only value a worker
returns is the packet's `bytes`: no object of its making is rebuilt and nothing it names is imported, so a
result from a remote machine is as safe to read as any graph file.

Graphs travel the other way as files too (`GraphDocument`): a `gb.Graph` in a search's config is sent as its
file bytes and loaded, validated, in the worker, never pickled with whatever objects subscribe to its edits.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
import socket
import tempfile
import traceback
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from graphbuilder.ir import serialize
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import Graph
from graphbuilder.search.result import BaseResult

TRIAL_FORMAT = "graphbuilder.trial"
TRIAL_FILE, GRAPH_FILE, WEIGHTS_FILE = "trial.json", "graph.graph.json", "graph.safetensors"
PACKET_FILES = (TRIAL_FILE, GRAPH_FILE, WEIGHTS_FILE)


@dataclass
class GraphDocument:
    """A graph as its file bytes (``graph.graph.json`` and, with weights, ``graph.safetensors``)."""

    files: dict[str, bytes]

    @classmethod
    def of(cls, graph: Graph) -> GraphDocument:
        """Save `graph` (JSON + safetensors weights) and keep the bytes."""
        with tempfile.TemporaryDirectory(prefix="gb-graph-") as folder:
            graph.save(os.path.join(folder, GRAPH_FILE))
            return cls(_read_files(folder, (GRAPH_FILE, WEIGHTS_FILE)))

    def load(self) -> Graph:
        """The graph, loaded and validated like any graph file."""
        with tempfile.TemporaryDirectory(prefix="gb-graph-") as folder:
            _write_files(folder, self.files)
            return Graph.load(os.path.join(folder, GRAPH_FILE))


@dataclass
class Outcome:
    """One unit of work's result, read back from its packet.

    Attributes:
        key: the unit's key (a sweep's trial key, e.g. ``c0-s1``).
        metrics: scalar figures (`BaseResult.metrics`, or what the function returned beside its graph).
        graph: the result graph, with its weights (None for a failed unit).
        result: the search result rebuilt with `from_dict` (None for a failed unit or a (graph, metrics) unit).
        error: ``"ExceptionType: message"`` of a failed unit, else None; `details` holds the worker's traceback.
        seconds: wall time of the unit in the worker.
        host, pid: where it ran.
    """

    key: str
    metrics: dict[str, float] = field(default_factory=dict)
    graph: Graph | None = None
    result: BaseResult | None = None
    error: str | None = None
    details: str = ""
    seconds: float = 0.0
    host: str = ""
    pid: int = 0


# -- worker side -------------------------------------------------------------------------------------------------
def pack(key: str, produced: Any, seconds: float) -> bytes:
    """The packet of a unit that returned `produced`: a `BaseResult`, or a ``(gb.Graph, metrics)`` pair."""
    if isinstance(produced, BaseResult):
        graph, metrics = produced.graph, produced.metrics()
        doc: dict[str, Any] = {"result_type": produced.type_name(), "result": produced.to_dict()}
    elif (isinstance(produced, tuple) and len(produced) == 2 and isinstance(produced[0], Graph)
          and isinstance(produced[1], Mapping)):
        graph, metrics = produced
        doc = {"result_type": None, "result": None}
    else:
        raise GraphError(f"the search function returned {type(produced).__name__}; return a search result (a "
                         "graphbuilder.search.result.BaseResult subclass) or a (gb.Graph, metrics dict) pair")
    files = GraphDocument.of(graph).files
    files[TRIAL_FILE] = _trial_json({"key": key, "metrics": check_metrics(metrics), "seconds": seconds, **doc})
    return _zip(files)


def pack_error(key: str, error: BaseException, seconds: float) -> bytes:
    """The packet of a unit whose function raised `error` (its message and the worker's traceback)."""
    text = "".join(traceback.format_exception(error)).rstrip()
    message = f"{type(error).__name__}: {error}"
    return _zip({TRIAL_FILE: _trial_json({"key": key, "error": message, "details": text, "seconds": seconds})})


def _trial_json(fields: dict[str, Any]) -> bytes:
    doc = {"format": TRIAL_FORMAT, "version": 1, "host": socket.gethostname(), "pid": os.getpid(), **fields}
    return (json.dumps(doc, indent=1, allow_nan=False) + "\n").encode("utf-8")


def check_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """`metrics` as names with floats (raises `GraphError` for anything else); non-finite figures are left out."""
    out = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or isinstance(value, bool) or not isinstance(value, (int, float)):
            raise GraphError(f"metric {name!r} is {value!r}; metrics are names with numbers")
        # JSON has no NaN or infinity: a missing figure is left out rather than written as a string
        if math.isfinite(value):
            out[name] = float(value)
    return out


def _zip(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name in sorted(files):
            archive.writestr(name, files[name])
    return buffer.getvalue()


# -- receiving side ----------------------------------------------------------------------------------------------
def unzip(packet: bytes) -> dict[str, bytes]:
    """The files of a packet; only the packet's three file names, each within the graph file size limit."""
    try:
        with zipfile.ZipFile(io.BytesIO(packet)) as archive:
            infos = archive.infolist()
            for info in infos:
                if info.filename not in PACKET_FILES:
                    raise GraphError(f"a trial packet holds {info.filename!r}; expected only {list(PACKET_FILES)}")
                if info.file_size > serialize.MAX_FILE_BYTES:
                    raise GraphError(f"a trial packet's {info.filename} is {info.file_size} bytes, over the "
                                     f"{serialize.MAX_FILE_BYTES}-byte limit")
            return {info.filename: archive.read(info) for info in infos}
    except zipfile.BadZipFile as e:
        raise GraphError(f"not a trial packet: {e}") from None


def store(packet: bytes, folder: str) -> None:
    """Write the packet's files into `folder`, all or nothing: a temporary folder beside it, then a rename."""
    files = unzip(packet)
    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
    try:
        _write_files(tmp, files)
        os.rename(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load(folder: str) -> Outcome:
    """Read a stored packet: the graph through `Graph.load`, the result through `from_dict` (raises
    `GraphError` naming the folder for anything that is not a valid packet)."""
    try:
        with open(os.path.join(folder, TRIAL_FILE), encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GraphError(f"{folder}: unreadable {TRIAL_FILE}: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != TRIAL_FORMAT or not isinstance(doc.get("key"), str):
        raise GraphError(f"{folder}: {TRIAL_FILE} is not a trial document (format {TRIAL_FORMAT!r} with a key)")
    outcome = Outcome(doc["key"], seconds=float(doc.get("seconds", 0.0)), host=str(doc.get("host", "")),
                      pid=int(doc.get("pid", 0)))
    if doc.get("error") is not None:
        outcome.error, outcome.details = str(doc["error"]), str(doc.get("details", ""))
        return outcome
    metrics = doc.get("metrics")
    if not isinstance(metrics, dict):
        raise GraphError(f"{folder}: {TRIAL_FILE} needs a 'metrics' object")
    outcome.metrics = check_metrics(metrics)
    outcome.graph = Graph.load(os.path.join(folder, GRAPH_FILE))
    if doc.get("result_type") is not None:
        result = BaseResult.named(str(doc["result_type"])).from_dict(doc.get("result"))
        if serialize.dumps(result.graph) != serialize.dumps(outcome.graph):
            raise GraphError(f"{folder}: the result document's graph differs from {GRAPH_FILE}")
        outcome.result = result
    return outcome


def read(packet: bytes) -> Outcome:
    """`load` of a packet that is not kept on disk."""
    with tempfile.TemporaryDirectory(prefix="gb-trial-") as folder:
        target = os.path.join(folder, "trial")
        store(packet, target)
        return load(target)


def _read_files(folder: str, names: tuple[str, ...]) -> dict[str, bytes]:
    out = {}
    for name in names:
        path = os.path.join(folder, name)
        if os.path.exists(path):
            with open(path, "rb") as f:
                out[name] = f.read()
    return out


def _write_files(folder: str, files: Mapping[str, bytes]) -> None:
    for name, data in files.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)


# -- identity of work --------------------------------------------------------------------------------------------
def fingerprint(value: Any) -> str:
    """A sha256 of a config (JSON values, arrays, tensors and graphs, nested in dicts and lists), so a resumed
    sweep can tell that a stored trial was run with the same inputs. Raises `GraphError` for other objects."""
    digest = hashlib.sha256()
    _feed(digest, value, "config")
    return digest.hexdigest()


def _feed(digest: Any, value: Any, where: str) -> None:
    if value is None or isinstance(value, (bool, int, float, str)):
        digest.update(json.dumps(value).encode())
    elif isinstance(value, Mapping):
        digest.update(b"{")
        for k in sorted(value, key=str):
            digest.update(json.dumps(str(k)).encode())
            _feed(digest, value[k], f"{where}[{k!r}]")
        digest.update(b"}")
    elif isinstance(value, (list, tuple)):
        digest.update(b"[")
        for i, v in enumerate(value):
            _feed(digest, v, f"{where}[{i}]")
        digest.update(b"]")
    elif isinstance(value, (np.ndarray, np.generic, torch.Tensor)):
        array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        digest.update(f"array {array.dtype.str} {array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    elif isinstance(value, (Graph, GraphDocument)):
        document = GraphDocument.of(value) if isinstance(value, Graph) else value
        for name, data in sorted(document.files.items()):
            digest.update(name.encode())
            digest.update(data)
    else:
        raise GraphError(f"{where} is a {type(value).__name__}; a sweep with a results folder needs configs of "
                         "JSON values, arrays, tensors and graphs, so a resumed run can check they are unchanged")
