"""`gb.export.check(graph)`: try every export on sample input and report per format and per node.

This is what an "Export" button shows: for each format (python, torchscript, exported, onnx) whether it
works, the nodes that block it and why, the largest absolute difference from the compiled module on the
sample input, and how long it took. `ExportReport.to_json()` is the payload for the editor.

Reference for each comparison: ``gb.compile(graph).eval()`` on the same inputs. The Python source is run
in a fresh namespace from its text (no GraphBuilder objects reachable from it) with the compiled
state_dict loaded; ONNX runs in onnxruntime.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from graphbuilder.compile import store_weights
from graphbuilder.export import runtime
from graphbuilder.export.python_source import to_python
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import Graph


@dataclass
class FormatResult:
    """One format's outcome. `max_abs_diff` is None when the export failed."""

    format: str
    ok: bool
    max_abs_diff: float | None = None
    seconds: float = 0.0
    error: str | None = None
    blockers: list[dict[str, str]] = field(default_factory=list)  # {"node", "op", "reason"}

    def to_json(self) -> dict[str, Any]:
        """JSON form: all fields."""
        return {"format": self.format, "ok": self.ok, "max_abs_diff": self.max_abs_diff,
                "seconds": round(self.seconds, 3), "error": self.error, "blockers": list(self.blockers)}


@dataclass
class ExportReport:
    """Per-format results, and per node the formats it blocks (``{"layer1/0/conv1": {"onnx": "reason"}}``)."""

    graph: str
    formats: dict[str, FormatResult]
    tolerance: float

    @property
    def ok(self) -> bool:
        """True when every format exported and matched within `tolerance`."""
        return all(r.ok for r in self.formats.values())

    @property
    def nodes(self) -> dict[str, dict[str, str]]:
        """Node path -> {format: reason} for every node that blocks some format."""
        out: dict[str, dict[str, str]] = {}
        for result in self.formats.values():
            for b in result.blockers:
                out.setdefault(b["node"], {})[result.format] = b["reason"]
        return out

    def to_json(self) -> dict[str, Any]:
        """The editor's payload: ``{"graph", "ok", "tolerance", "formats": {...}, "nodes": {...}}``."""
        return {"graph": self.graph, "ok": self.ok, "tolerance": self.tolerance,
                "formats": {k: v.to_json() for k, v in self.formats.items()}, "nodes": self.nodes}

    def __str__(self) -> str:
        lines = [f"export check of {self.graph!r}: {'all formats OK' if self.ok else 'problems found'}"]
        for r in self.formats.values():
            diff = "-" if r.max_abs_diff is None else f"{r.max_abs_diff:.2e}"
            lines.append(f"  {r.format:<12} {'ok' if r.ok else 'FAILED':<7} max|diff| {diff:<9} {r.seconds:6.2f}s"
                         + (f"  {r.error}" if r.error else ""))
            lines += [f"      node {b['node']!r} ({b['op']}): {b['reason']}" for b in r.blockers]
        return "\n".join(lines)


def check(graph: Graph, formats: tuple[str, ...] = runtime.FORMATS, dynamic_batch: bool = True,
          tolerance: float = 1e-5) -> ExportReport:
    """Run each export in `formats` on sample input and compare with the compiled module (eval mode).

    Never raises for an export failure: failures are reported with their blocking nodes. An invalid graph
    (shape errors) raises its `GraphError`, as compiling would.
    """
    graph.check()
    unknown = set(formats) - set(runtime.FORMATS)
    if unknown:
        raise GraphError(f"unknown export formats {sorted(unknown)}; choose from {list(runtime.FORMATS)}")
    reference_model = runtime._deployable(graph)
    graph = store_weights(graph.copy(), reference_model)  # every format then compiles the same weights
    inputs = runtime._export_inputs(graph, dynamic_batch)
    with torch.no_grad():
        reference = _as_list(reference_model(*inputs))
    results = {}
    for fmt in formats:
        start = time.perf_counter()
        try:
            outputs = _RUNNERS[fmt](graph, reference_model, inputs, dynamic_batch)
            diff = max(float((a.double() - b.double()).abs().max()) if a.numel() else 0.0
                       for a, b in zip(outputs, reference, strict=True))
            results[fmt] = FormatResult(fmt, diff <= tolerance, diff, time.perf_counter() - start,
                                        None if diff <= tolerance else f"outputs differ by {diff:.3g}")
        except GraphError as e:
            found = [{"node": n, "op": op, "reason": why} for n, op, why in runtime.blockers(graph, fmt, dynamic_batch)]
            results[fmt] = FormatResult(fmt, False, None, time.perf_counter() - start, e.message, found)
        except Exception as e:
            results[fmt] = FormatResult(fmt, False, None, time.perf_counter() - start, runtime._first_line(e))
    return ExportReport(graph.name, results, tolerance)


def _as_list(value: Any) -> list[torch.Tensor]:
    return list(value) if isinstance(value, (tuple, list)) else [value]


def run_python_source(source: str, class_name: str, state_dict: dict[str, torch.Tensor],
                      inputs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    """Execute exported source in a fresh namespace, load `state_dict` strictly, run on `inputs` (eval)."""
    namespace: dict[str, Any] = {"__name__": "graphbuilder_export_check"}
    exec(compile(source, f"<{class_name}.py>", "exec"), namespace)  # noqa: S102  (our own generated source)
    model = namespace[class_name]()
    model.load_state_dict(state_dict, strict=True)
    with torch.no_grad():
        return _as_list(model.eval()(*inputs))


def _python(graph: Graph, reference: Any, inputs: tuple[torch.Tensor, ...], dynamic: bool) -> list[torch.Tensor]:
    try:
        source = to_python(graph)
    except GraphError:
        raise
    return run_python_source(source, "Net", reference.state_dict(), inputs)


def _torchscript(graph: Graph, reference: Any, inputs: tuple[torch.Tensor, ...], dynamic: bool) -> list[torch.Tensor]:
    module = runtime.to_torchscript(graph)
    with torch.no_grad():
        return _as_list(module(*inputs))


def _exported(graph: Graph, reference: Any, inputs: tuple[torch.Tensor, ...], dynamic: bool) -> list[torch.Tensor]:
    program = runtime.to_exported(graph, dynamic_batch=dynamic)
    with torch.no_grad():
        return _as_list(program.module()(*inputs))


def _onnx(graph: Graph, reference: Any, inputs: tuple[torch.Tensor, ...], dynamic: bool) -> list[torch.Tensor]:
    return run_onnx(runtime.onnx_bytes(graph, dynamic), inputs)


def run_onnx(model: bytes | str, inputs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    """Run an ONNX model (bytes or a file path) in onnxruntime on CPU; outputs as tensors."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    feed = {i.name: x.numpy() for i, x in zip(session.get_inputs(), inputs, strict=True)}
    return [torch.from_numpy(o) for o in session.run(None, feed)]


_RUNNERS = {"python": _python, "torchscript": _torchscript, "exported": _exported, "onnx": _onnx}
