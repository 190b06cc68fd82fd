"""The model zoo: real `timm` and `transformers` models (small configs, random init) and the stages every one
must pass: import, compiled output equal to the original, save/load with weights, `to_python` run where
GraphBuilder cannot be imported, ONNX in onnxruntime, TorchScript and torch.export (where the original
supports them), and train mode for models with batch norm.

Used by tests/test_zoo.py (a few transformers in the default run, the rest `slow`; timm under `make zoo`) and
benchmarks/bench_import.py. Nothing is downloaded: every model is built from a config with random weights.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

import graphbuilder as gb
from graphbuilder.export import runtime

STAGES = ("import", "equal", "save_load", "python", "onnx", "torchscript", "export", "train")


@dataclass
class Case:
    """A zoo model: a factory for the module, its example inputs (positional and keyword) and its family."""

    name: str
    family: str
    make: Callable[[], nn.Module]
    inputs: Callable[[], tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]]]
    atol: float = 1e-5  # where an op is re-expressed; 0 would demand torch.equal


@dataclass
class Result:
    """Per stage: "pass", "n/a" (the original does not support it either) or the failure's first line."""

    name: str
    family: str
    stages: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(v in ("pass", "n/a") for v in self.stages.values()) and len(self.stages) == len(STAGES)


def flat_outputs(out: Any) -> list[torch.Tensor]:
    """The tensors a model returns, in pytree order (dataclass outputs, dicts and tuples flattened)."""
    leaves = torch.utils._pytree.tree_leaves(out)
    return [t for t in leaves if isinstance(t, torch.Tensor)]


def _close(got: list[torch.Tensor], want: list[torch.Tensor], atol: float) -> str | None:
    if len(got) != len(want):
        return f"{len(got)} outputs, expected {len(want)}"
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        a = torch.as_tensor(a)
        if a.shape != b.shape:
            return f"output {i}: shape {tuple(a.shape)} vs {tuple(b.shape)}"
        if not torch.equal(a, b):
            diff = float((a.double() - b.double()).abs().max()) if b.numel() else 0.0
            if not diff <= atol:
                return f"output {i}: max abs diff {diff:.3g} > {atol:g}"
    return None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:300] if text else ''}"


_RUNNER = r"""
import importlib.abc, sys


class NoGraphBuilder(importlib.abc.MetaPathFinder):
    # graphbuilder may be pip-installed (editable) into this venv: make it unimportable before anything runs.
    def find_spec(self, name, path=None, target=None):
        if name == "graphbuilder" or name.startswith("graphbuilder."):
            raise ModuleNotFoundError(name)


sys.meta_path.insert(0, NoGraphBuilder())
try:
    import graphbuilder  # noqa: F401
    raise SystemExit("graphbuilder must not be importable here")
except ModuleNotFoundError:
    pass
import torch
for name in sys.argv[1:]:
    namespace = {"__name__": name}
    exec(compile(open(name + ".py").read(), name + ".py", "exec"), namespace)
    model = namespace["Net"]()
    model.load_state_dict(torch.load(name + ".state.pt", weights_only=True), strict=True)
    with torch.no_grad():
        out = model.eval()(*torch.load(name + ".inputs.pt", weights_only=True))
    torch.save(list(out) if isinstance(out, tuple) else [out], name + ".outputs.pt")
"""


def run_without_graphbuilder(models: dict[str, tuple[str, dict[str, torch.Tensor], list[torch.Tensor]]],
                             folder: Path | None = None) -> dict[str, list[torch.Tensor]]:
    """Run each generated source (name -> source, state_dict, inputs) in ONE fresh interpreter (``python -I``,
    no PYTHONPATH) where graphbuilder cannot be imported; returns each model's outputs."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(folder or scratch)
        for name, (source, state, inputs) in models.items():
            (path / f"{name}.py").write_text(source)
            torch.save(state, path / f"{name}.state.pt")
            torch.save(list(inputs), path / f"{name}.inputs.pt")
        (path / "runner.py").write_text(_RUNNER)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        done = subprocess.run([sys.executable, "-I", "runner.py", *models], cwd=path, env=env, capture_output=True,
                              text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed")
        return {name: torch.load(path / f"{name}.outputs.pt", weights_only=True) for name in models}


def _original_supports(fmt: str, model: nn.Module, args: tuple, kwargs: dict) -> bool:
    try:
        with torch.no_grad():
            if fmt == "torchscript":
                torch.jit.script(model)
            else:
                torch.export.export(model, args, kwargs=kwargs or None)
        return True
    except Exception:
        return False


def run_case(case: Case, stages: tuple[str, ...] = STAGES, timings: dict[str, float] | None = None) -> Result:
    """Run `case` through `stages`; a stage after a failed import is reported as not run."""
    import time

    torch.manual_seed(0)
    result = Result(case.name, case.family)
    model = case.make().eval()
    args, kwargs = case.inputs()
    feed = [*args, *(v for v in kwargs.values() if v is not None)]
    with torch.no_grad():
        want = flat_outputs(model(*args, **kwargs))
    try:
        start = time.perf_counter()
        graph = gb.from_module(model, args, example_kwargs=kwargs)
        if timings is not None:
            timings["import"] = time.perf_counter() - start
        result.stages["import"] = "pass"
    except Exception as e:
        result.stages["import"] = _first_line(e)
        return result
    checks: dict[str, Callable[[], str | None]] = {}

    def equal() -> str | None:
        start = time.perf_counter()
        compiled = gb.compile(graph).eval()
        if timings is not None:
            timings["compile"] = time.perf_counter() - start
        with torch.no_grad():
            return _close(flat_outputs(compiled(*feed)), want, case.atol)

    def save_load() -> str | None:
        with tempfile.TemporaryDirectory() as folder:
            graph.save(str(Path(folder) / "m.graph.json"))
            loaded = gb.Graph.load(str(Path(folder) / "m.graph.json"))
        with torch.no_grad():
            return _close(flat_outputs(gb.compile(loaded).eval()(*feed)), want, case.atol)

    def python() -> str | None:
        source = gb.export.to_python(graph)
        outputs = run_without_graphbuilder({"net": (source, gb.compile(graph).state_dict(), feed)})["net"]
        return _close(outputs, want, case.atol)

    def onnx() -> str | None:
        data = runtime.onnx_bytes(graph, dynamic_batch=False)
        return _close(gb.export.run_onnx(data, tuple(feed)), want, 1e-4)

    def torchscript() -> str | None:
        try:
            scripted = gb.export.to_torchscript(graph)
        except Exception:
            if not _original_supports("torchscript", model, args, kwargs):
                return "n/a"
            raise
        with torch.no_grad():
            return _close(flat_outputs(scripted(*feed)), want, case.atol)

    def exported() -> str | None:
        try:
            program = gb.export.to_exported(graph, dynamic_batch=False)
        except Exception:
            if not _original_supports("export", model, args, kwargs):
                return "n/a"
            raise
        with torch.no_grad():
            return _close(flat_outputs(program.module()(*feed)), want, case.atol)

    def train() -> str | None:
        if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
            return "n/a"
        original = copy.deepcopy(model).train()
        g = gb.from_module(original, args, example_kwargs=kwargs)
        compiled = gb.compile(g).train()
        torch.manual_seed(1)
        got = flat_outputs(compiled(*feed))
        torch.manual_seed(1)
        ref = flat_outputs(original(*args, **kwargs))
        problem = _close([t.detach() for t in got], [t.detach() for t in ref], case.atol)
        stats = [b for k, b in original.state_dict().items() if "running_" in k]
        mine = [b for k, b in compiled.state_dict().items() if "running_" in k]
        if problem is None and sorted(float(s.sum()) for s in stats) != sorted(float(s.sum()) for s in mine):
            problem = "running statistics differ after one training step"
        return problem

    checks = {"equal": equal, "save_load": save_load, "python": python, "onnx": onnx, "torchscript": torchscript,
              "export": exported, "train": train}
    for stage in stages:
        if stage == "import":
            continue
        try:
            with runtime.quiet():
                problem = checks[stage]()
            result.stages[stage] = "pass" if problem is None else problem
        except Exception as e:
            result.stages[stage] = _first_line(e)
    return result


def table(results: list[Result]) -> str:
    """A markdown table: one row per model, one column per stage (pass, n/a, FAIL), and the pass count."""
    head = "| model | family | " + " | ".join(STAGES) + " |"
    rows = [head, "|" + "---|" * (len(STAGES) + 2)]
    for r in results:
        cells = [("pass" if v == "pass" else "n/a" if v == "n/a" else "FAIL") if (v := r.stages.get(s)) else "-"
                 for s in STAGES]
        rows.append(f"| {r.name} | {r.family} | " + " | ".join(cells) + " |")
    passed = sum(r.ok for r in results)
    rows.append(f"\n{passed} of {len(results)} models pass every stage ({100 * passed / max(1, len(results)):.0f}%)")
    return "\n".join(rows)


def main() -> None:
    """Run the zoo and print the per-model table: ``python tests/zoo.py timm|transformers [names...]``."""
    import argparse
    import time

    from zoo_models import timm_cases, transformers_cases

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("library", choices=("timm", "transformers"))
    parser.add_argument("names", nargs="*", help="only these models (default: all)")
    parser.add_argument("--stages", default=",".join(STAGES))
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases = timm_cases() if args.library == "timm" else transformers_cases()
    cases = [c for c in cases if not args.names or c.name in args.names]
    results = []
    for case in cases:
        start = time.perf_counter()
        result = run_case(case, tuple(args.stages.split(",")))
        results.append(result)
        failures = {k: v for k, v in result.stages.items() if v not in ("pass", "n/a")}
        print(f"{case.name}: {failures or 'ok'} ({time.perf_counter() - start:.0f} s)", flush=True)
    print(table(results))


if __name__ == "__main__":
    main()
