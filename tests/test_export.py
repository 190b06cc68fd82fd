"""Exports: every reference model round-trips through save/load, standalone Python source (run in a fresh
interpreter without graphbuilder), ONNX (onnxruntime, 1e-5), TorchScript and torch.export; every registered
op goes through ONNX on its own; hostile node names cannot inject code; failed exports leave no file.
References: the hand-written modules in tests/models.py and ``gb.compile(graph)`` on the same input."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from models import MODELS
from torch import nn
from zoo import run_without_graphbuilder

import graphbuilder as gb
from graphbuilder.export import runtime
from graphbuilder.ir import registry
from graphbuilder.ops.examples import example_graph, example_tensors

RUFF = Path(sys.executable).with_name("ruff")


def _eval(model: nn.Module, *xs: torch.Tensor) -> list[torch.Tensor]:
    with torch.no_grad():
        out = model.eval()(*xs)
    return list(out) if isinstance(out, (tuple, list)) else [out]


@pytest.fixture(scope="module")
def models() -> dict[str, tuple[nn.Module, torch.Tensor, gb.Graph]]:
    out = {}
    for name, factory in MODELS.items():
        module, x = factory()
        out[name] = (module, x, gb.from_module(module, (x,)))
    return out


NAMES = sorted(MODELS)


@pytest.mark.parametrize("name", NAMES)
def test_save_load_with_weights_compiles_equal(name: str, models: dict, tmp_path: Path) -> None:
    module, x, graph = models[name]
    path = tmp_path / f"{name}.graph.json"
    graph.save(str(path))
    assert (tmp_path / f"{name}.safetensors").exists()
    loaded = gb.Graph.load(str(path))
    assert torch.equal(_eval(gb.compile(loaded), x)[0], _eval(module, x)[0])


@pytest.mark.parametrize("name", NAMES)
def test_torchscript_and_torch_export_equal(name: str, models: dict) -> None:
    module, x, graph = models[name]
    want = _eval(module, x)[0]
    scripted = gb.export.to_torchscript(graph)
    assert isinstance(scripted, torch.jit.ScriptModule)
    assert torch.equal(_eval(scripted, x)[0], want)
    program = gb.export.to_exported(graph, dynamic_batch=True)
    assert isinstance(program, torch.export.ExportedProgram)
    exported = program.module()  # exported in eval mode (its .eval() is not supported)
    with torch.no_grad():
        # equal, except that the exported attention is decomposed (no eager fast path): ulp-level there
        diff = (exported(x) - want).abs().max()
        assert diff == 0 if name != "transformer" else diff <= 1e-6
        x3 = torch.randn(3, *x.shape[1:])  # another batch size through the symbolic batch dim
        assert torch.allclose(exported(x3), _eval(module, x3)[0], atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_onnx_runs_in_onnxruntime_within_1e_5(name: str, models: dict, tmp_path: Path) -> None:
    import onnx

    module, x, graph = models[name]
    path = gb.export.to_onnx(graph, tmp_path / f"{name}.onnx", dynamic_batch=True)
    onnx.checker.check_model(onnx.load(path))
    for batch in (x.shape[0], 3):
        xb = x if batch == x.shape[0] else torch.randn(batch, *x.shape[1:])
        got = gb.export.run_onnx(path, (xb,))[0]
        assert (got - _eval(module, xb)[0]).abs().max() <= 1e-5
    assert sorted(os.listdir(tmp_path)) == [f"{name}.onnx"]  # no temp files left behind


def run_standalone(sources: dict[str, tuple[str, dict[str, torch.Tensor], torch.Tensor]], folder: Path
                   ) -> dict[str, torch.Tensor]:
    """Run each generated source in ONE fresh interpreter where graphbuilder cannot be imported (see
    tests/zoo.py); returns each model's output."""
    outputs = run_without_graphbuilder({name: (src, state, [x]) for name, (src, state, x) in sources.items()}, folder)
    return {name: outs[0] for name, outs in outputs.items()}


def test_python_source_runs_without_graphbuilder_and_matches(models: dict, tmp_path: Path) -> None:
    sources = {}
    for name in NAMES:
        module, x, graph = models[name]
        source = gb.export.to_python(graph)
        compiled = gb.compile(graph)
        sources[name] = (source, compiled.state_dict(), x)
        tree = ast.parse(source)
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert imported <= {"torch", "torch.nn.functional", "__future__", "math", "typing"}, imported
        assert "graphbuilder" not in source.replace("GraphBuilder", "")
    outputs = run_standalone(sources, tmp_path)
    for name in NAMES:
        module, x, _ = models[name]
        assert torch.equal(outputs[name], _eval(module, x)[0]), name


def test_python_source_is_ruff_clean_and_readable(models: dict, tmp_path: Path) -> None:
    source = gb.export.to_python(models["resnet50"][2])
    path = tmp_path / "net.py"
    path.write_text(source)
    done = subprocess.run([str(RUFF), "check", "--no-cache", "--isolated", "--line-length", "120",
                           "--select", "E,F,W,I,B,UP", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    # blocks are classes; identical blocks share one: per stage, the first bottleneck (with its downsample
    # shortcut) and the rest, so 8 classes for 16 blocks
    assert source.count("class Bottleneck") == 8 and source.count("= Bottleneck") == 16
    assert "class Net(nn.Module)" in source
    assert "self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)" in source
    assert "self.layer1 = " in source and "def forward(self, x):" in source


HOSTILE = ["__import__('os').system('echo pwned')", "x\nimport os", "self", "torch", "nn", "F", "class",
           "conv 1; del torch", "\u00e9\u00e8 ünïcødé", "1st", "__init__", "forward", '"""', "# comment", "lambda: 0"]


def _hostile_graph() -> gb.Graph:
    block = gb.Graph("evil\n\"\"\"block")
    bx = block.input(HOSTILE[1], shape=(2, 4, 8, 8))
    block.output(block.add("relu", block.add("conv2d", bx, name=HOSTILE[0], out_channels=4, kernel_size=1),
                           name=HOSTILE[2]), name=HOSTILE[3])
    g = gb.Graph("'; import os #")
    x = g.input(HOSTILE[4], shape=(2, 3, 8, 8))
    h = g.add("conv2d", x, name=HOSTILE[5], out_channels=4, kernel_size=3, padding=1)
    h = g.add(block, h, name=HOSTILE[6])
    h = g.add(block, h, name=HOSTILE[7])
    h = g.add("add", h, g.add("identity", h, name=HOSTILE[8]), name=HOSTILE[9])
    h = g.add("batch_norm2d", h, name=HOSTILE[10])
    h = g.add("mean", h, name=HOSTILE[11], dim=(2, 3))
    h = g.add("linear", h, name=HOSTILE[12], out_features=3)
    g.output(h, name=HOSTILE[13])
    g.add("relu", x, name=HOSTILE[14])  # a dead branch: its layer exists, the forward skips it
    return g


def test_hostile_names_cannot_inject_code(tmp_path: Path) -> None:
    g = _hostile_graph()
    source = gb.export.to_python(g, class_name="Net")
    tree = ast.parse(source)
    # Only these kinds of statements exist at top level: the docstring, imports and class definitions.
    for stmt in tree.body:
        assert isinstance(stmt, (ast.Expr, ast.Import, ast.ImportFrom, ast.ClassDef)), ast.dump(stmt)[:200]
    calls = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    allowed_calls = {"super", "super().__init__", "nn.Conv2d", "nn.ReLU", "nn.Identity", "nn.BatchNorm2d",
                     "nn.Linear", "torch.add", "torch.mean"}
    block_classes = {c.name for c in tree.body if isinstance(c, ast.ClassDef)}
    for call in calls:
        assert call in allowed_calls or call in block_classes or call.startswith("self."), call
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert "os" not in names and "__import__" not in names and "exec" not in names and "eval" not in names
    strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    assert all(s.startswith(("Graph ", "Net:")) or s in ("zeros",) for s in strings), strings
    assert len(block_classes) == 2  # one block class shared by both uses, and Net
    compiled = gb.compile(g)
    x = torch.randn(2, 3, 8, 8)
    out = run_standalone({"hostile": (source, compiled.state_dict(), x)}, tmp_path)
    assert torch.equal(out["hostile"], _eval(compiled, x)[0])
    path = tmp_path / "hostile_src.py"
    path.write_text(source)
    done = subprocess.run([str(RUFF), "check", "--no-cache", "--isolated", "--line-length", "120", str(path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_hostile_names_round_trip_weights(tmp_path: Path) -> None:
    g = _hostile_graph()
    gb.store_weights(g, gb.compile(g))
    assert g[HOSTILE[6]].block.weights  # block weights live in the block graph
    g.save(str(tmp_path / "h.graph.json"))
    loaded = gb.Graph.load(str(tmp_path / "h.graph.json"))
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(_eval(gb.compile(loaded), x)[0], _eval(gb.compile(g), x)[0])
    from safetensors import safe_open

    with safe_open(str(tmp_path / "h.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert f"{HOSTILE[6]}/{HOSTILE[0]}/weight" in keys  # escaped path: block / node / state_dict key


def one_op_graph(op: str) -> gb.Graph:
    """A graph applying `op` once to fresh inputs, from the op's first declared example."""
    opdef = registry.get(op)
    assert opdef.examples, f"op {op!r} declares no examples"
    return example_graph(opdef, opdef.examples[0])[0]


# -- failures: named, early, and leaving no file --------------------------------------------------------------------


def _fixed_batch_graph() -> gb.Graph:
    g = gb.Graph("fixed")
    x = g.input("x", shape=(2, 4, 4, 4))
    g.output(g.add("linear", g.add("reshape", x, name="to rows", shape=(2, 64)), name="fc", out_features=3))
    return g


def test_failed_onnx_export_names_node_and_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    target.write_bytes(b"previous export")
    with pytest.raises(gb.GraphError) as info:
        gb.export.to_onnx(_fixed_batch_graph(), target, dynamic_batch=True)
    assert "to rows" in str(info.value) and "batch" in str(info.value)
    assert info.value.nodes == ("to rows",)
    assert target.read_bytes() == b"previous export" and sorted(os.listdir(tmp_path)) == ["model.onnx"]
    # the same graph exports with a fixed batch
    gb.export.to_onnx(_fixed_batch_graph(), target, dynamic_batch=False)
    assert target.read_bytes() != b"previous export"


def test_check_reports_per_format_and_per_node() -> None:
    report = gb.export.check(_fixed_batch_graph(), formats=("python", "torchscript", "exported"))
    data = json.loads(json.dumps(report.to_json()))
    assert data["formats"]["python"]["ok"] and data["formats"]["python"]["max_abs_diff"] == 0.0
    assert data["formats"]["torchscript"]["ok"] and not data["formats"]["exported"]["ok"]
    assert data["nodes"] == {"to rows": {"exported": data["formats"]["exported"]["blockers"][0]["reason"]}}
    assert not report.ok and "to rows" in str(report)
    good = gb.export.check(MODELS_SMALL(), formats=("python", "onnx"))
    assert good.ok and good.formats["onnx"].max_abs_diff <= 1e-5 and good.to_json()["nodes"] == {}


def MODELS_SMALL() -> gb.Graph:  # noqa: N802
    g = gb.Graph("small")
    x = g.input("x", shape=(2, 3, 8, 8))
    h = g.add("relu", g.add("batch_norm2d", g.add("conv2d", x, out_channels=4, kernel_size=3)))
    g.output(g.add("linear", g.add("flatten", g.add("adaptive_avg_pool2d", h, output_size=1)), out_features=2))
    return g


def test_export_with_unexportable_custom_module_names_node() -> None:
    @gb.op("local_module_test_export")
    class Local(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 2

    try:
        g = gb.Graph("custom")
        g.output(g.add("local_module_test_export", g.input("x", shape=(2, 3)), name="double"))
        with pytest.raises(gb.GraphError, match="'double'.*not a module-level class"):
            gb.export.to_python(g)
    finally:
        registry.unregister("local_module_test_export")


# -- every registered op through ONNX ---------------------------------------------------------------------------------


ALL_OPS = runtime.known_ops()


def sampled_ops(per_category: int = 4) -> set[str]:
    """Up to `per_category` ops of each registry category, spread evenly over its sorted names: the default run's
    ONNX sweep. One ONNX export costs about a second per op, so every op is swept only under `-m slow`."""
    by_category: dict[str, list[str]] = {}
    for op in sorted(ALL_OPS):
        by_category.setdefault(registry.get(op).category, []).append(op)
    picked: set[str] = set()
    for ops in by_category.values():
        step = max(1, len(ops) // per_category)
        picked.update(ops[::step][:per_category])
    return picked


SAMPLED_OPS = sampled_ops()
CHUNK = 20  # ops per combined export; a blocker re-exports only its chunk


class OnnxSweep:
    """Exports one-op graphs in combined chunks on first use, runs them in onnxruntime, and keeps per op the
    max abs diff, or the blocker reason from export alone."""

    def __init__(self) -> None:
        order = [op for op in ALL_OPS if op in SAMPLED_OPS] + [op for op in ALL_OPS if op not in SAMPLED_OPS]
        self.chunks = [order[i:i + CHUNK] for i in range(0, len(order), CHUNK)]
        self.graphs: dict[str, gb.Graph] = {}
        self.blocked: dict[str, str] = {}
        self.diffs: dict[str, float] = {}

    def __getitem__(self, op: str) -> gb.Graph:
        if op not in self.graphs:
            self._run(next(chunk for chunk in self.chunks if op in chunk))
        return self.graphs[op]

    def _run(self, chunk: list[str]) -> None:
        usable = {op: one_op_graph(op) for op in chunk}
        self.graphs.update(usable)
        while True:  # ops named as blockers are set aside and the rest exported again
            try:
                self.diffs.update(_combined_diffs(usable, self.blocked))
                return
            except gb.GraphError as e:
                named = [n for n in e.nodes if n in usable and n not in self.blocked]
                if not named:
                    raise
                self.blocked.update({n: e.message for n in named})


@pytest.fixture(scope="module")
def onnx_sweep() -> OnnxSweep:
    return OnnxSweep()


def _combined_diffs(usable: dict[str, gb.Graph], blocked: dict[str, str]) -> dict[str, float]:
    combined = gb.Graph("all_ops")
    inputs: list[torch.Tensor] = []
    for op, g in usable.items():
        if op in blocked:
            continue
        ex = registry.get(op).examples[0]
        inputs += example_tensors(ex)
        ins = [combined.input(f"{op}/{n.name}", shape=n.params["shape"], dtype=n.params["dtype"]) for n in g.inputs]
        if not ex.inputs:  # the pass-through input of an op without inputs
            inputs.append(torch.zeros(1))
        node = combined.add(op, *ins[:len(ex.inputs)], name=op, **dict(g[op].params))
        for i in range(len(node.outputs)):
            combined.output(node[i], name=f"{op}/out{i}")
        for extra in ins[len(ex.inputs):]:
            combined.output(extra, name=f"{op}/passed")
    if not combined.inputs:
        return {}
    gb.store_weights(combined, gb.compile(combined))
    # A fixed batch: the one-op examples broadcast inputs whose first dim is not a batch (dynamic batch is
    # checked on whole models above).
    got = gb.export.run_onnx(runtime.onnx_bytes(combined, dynamic_batch=False), tuple(inputs))
    want = _eval(gb.compile(combined), *inputs)
    names = [n.name for n in combined.outputs]
    diffs: dict[str, float] = {}
    for name, a, b in zip(names, got, want, strict=True):
        op = name.rsplit("/", 1)[0]
        diff = (torch.as_tensor(a).double() - b.detach().double()).abs().max() if b.numel() else torch.zeros(())
        diffs[op] = max(diffs.get(op, 0.0), float(diff))
    return diffs


@pytest.mark.parametrize("op", [op if op in SAMPLED_OPS else pytest.param(op, marks=pytest.mark.slow)
                                for op in ALL_OPS])
def test_every_registered_op_exports_to_onnx_or_is_named_as_blocker(op: str, onnx_sweep: OnnxSweep,
                                                                    tmp_path: Path) -> None:
    graph = onnx_sweep[op]
    if op in onnx_sweep.blocked:
        target = tmp_path / "op.onnx"
        with pytest.raises(gb.GraphError) as info:
            gb.export.to_onnx(graph, target)
        assert op in info.value.nodes and not target.exists()
        return
    assert onnx_sweep.diffs[op] <= 1e-5, (op, onnx_sweep.diffs[op])


@pytest.mark.slow
@pytest.mark.parametrize("op", ALL_OPS)
def test_every_registered_op_alone_through_all_formats(op: str) -> None:
    graph = one_op_graph(op)
    report = gb.export.check(graph)
    for fmt, result in report.formats.items():
        if not result.ok:
            assert result.blockers and result.blockers[0]["node"] == op, (fmt, result.error)


# -- weights files ----------------------------------------------------------------------------------------------------


def test_weights_file_is_safetensors_and_never_unpickled(tmp_path: Path) -> None:
    g = MODELS_SMALL()
    gb.store_weights(g, gb.compile(g))
    path = tmp_path / "small.graph.json"
    g.save(str(path))

    class Boom:
        def __reduce__(self) -> Any:
            return (os.system, ("touch pwned",))

    import pickle

    (tmp_path / "small.safetensors").write_bytes(pickle.dumps({"conv2d/weight": Boom()}))
    with pytest.raises(gb.GraphError, match="cannot read weights file"):
        gb.Graph.load(str(path))
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_weights_stale_file_removed_and_edits_load_what_fits(tmp_path: Path) -> None:
    g = MODELS_SMALL()
    gb.store_weights(g, gb.compile(g))
    path = tmp_path / "small.graph.json"
    g.save(str(path))
    text = path.read_text()
    data = json.loads(text)
    assert [n["op"] for n in data["nodes"][1:3]] == ["conv2d", "batch_norm2d"]
    data["nodes"][2]["params"]["eps"] = 1e-3  # shapes unchanged: only the edited node loses its weights
    path.write_text(json.dumps(data))
    with pytest.warns(UserWarning, match="re-initialising batch_norm2d$"):
        edited = gb.Graph.load(str(path))
    assert set(edited.weights) == {"conv2d", "linear"}
    assert torch.equal(edited.weights["linear"]["weight"], g.weights["linear"]["weight"])
    data["nodes"][1]["params"]["out_channels"] = 5  # conv2d changes; batch norm and linear see new shapes
    path.write_text(json.dumps(data))
    with pytest.warns(UserWarning, match="re-initialising"):
        assert gb.Graph.load(str(path)).weights == {}
    g.weights.clear()
    g.save(str(path))
    assert not (tmp_path / "small.safetensors").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert gb.Graph.load(str(path)).weights == {}


# -- names that nn.Module or the generated file already define -------------------------------------------------------
def module_attribute_names() -> list[str]:
    """Every attribute of a compiled module (nn.Module's and fx.GraphModule's, methods and instance fields)."""
    return sorted(set(dir(torch.fx.GraphModule(nn.Module(), torch.fx.Graph()))))


def test_nodes_named_like_module_attributes_compile_and_export(tmp_path: Path) -> None:
    names = module_attribute_names()
    assert {"train", "training", "state_dict", "parameters", "modules", "children", "half", "cuda", "zero_grad",
            "register_buffer", "graph", "code", "meta", "forward"} <= set(names)
    g = gb.Graph("attributes")
    h = g.input(names[0], shape=(2, 3))
    for i, name in enumerate(names[1:-1]):
        h = g.add("linear", h, name=name, out_features=3) if i % 10 == 0 else g.add("tanh", h, name=name)
    g.output(h, name=names[-1])
    compiled = gb.compile(g)
    assert isinstance(compiled.training, bool) and callable(compiled.train) and callable(compiled.state_dict)
    x = torch.randn(2, 3)
    expected = _eval(compiled, x)[0]
    out = run_standalone({"attributes": (gb.export.to_python(g), compiled.state_dict(), x)}, tmp_path)
    assert torch.equal(out["attributes"], expected)


SHADOWING = ["Neuron", "ACTIVATIONS", "GloReUnit", "MBConv", "MixedOp", "WeightedSum", "Any", "NeuronGraphModule",
             "DetectionPredictor", "ValueError", "Exception", "math", "torch", "nn", "F", "Net", "super", "activate",
             "xavier_init", "build_candidate"]


def test_block_names_never_shadow_inlined_code(tmp_path: Path) -> None:
    g = gb.Graph("shadows")
    x = g.input("x", shape=(2, 8, 4, 4))
    h = x
    for name in SHADOWING:  # blocks first, so their classes are named before any module is inlined
        body = gb.Graph(name)
        body.output(body.add("relu", body.input("i", shape=(2, 8, 4, 4))))
        h = g.add(body, h, name=f"b_{name}")
    h = g.add("ir_k3_e3", h, out_channels=8)
    h = g.add("glore_unit", h, num_state=4, num_node=2)
    g.output(g.add("neuron", g.add("flatten", h), activation="tanh"))
    source = gb.export.to_python(g)
    defined = [n.name for n in ast.parse(source).body if isinstance(n, (ast.ClassDef, ast.FunctionDef))]
    assert len(defined) == len(set(defined)), sorted(n for n in defined if defined.count(n) > 1)
    compiled = gb.compile(g)
    x0 = torch.randn(2, 8, 4, 4)
    out = run_standalone({"shadows": (source, compiled.state_dict(), x0)}, tmp_path)
    assert torch.equal(out["shadows"], _eval(compiled, x0)[0])


@pytest.mark.parametrize("name", ["class", "None", "super", "math", "torch", "Neuron", "MixedOp", "ValueError",
                                  "Any", "1Net", "my net", ""])
def test_class_name_that_generated_code_defines_is_refused(name: str) -> None:
    with pytest.raises(gb.GraphError, match="class_name"):
        gb.export.to_python(one_op_graph("relu"), class_name=name)
