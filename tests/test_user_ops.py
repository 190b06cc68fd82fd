"""Ops from user code are first-class: natural names, files that say where they come from, and `to_python`
that imports or copies them; a user op survives save -> fresh process -> import -> load -> to_python -> run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

import graphbuilder as gb
from graphbuilder.ir import registry
from graphbuilder.ops.declare import snake_case

REPO = Path(__file__).resolve().parents[1]

USER_MODULE = '''
"""A user's module of layers, registered as GraphBuilder ops."""
import torch
from torch import nn

import graphbuilder as gb


@gb.op()
class SEBlock(nn.Module):
    """Squeeze-and-excitation (arXiv:1709.01507): channel weights from a global pool."""

    def __init__(self, in_channels: int, reduction: int = 4) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(in_channels, in_channels // reduction, 1)
        self.fc2 = nn.Conv2d(in_channels // reduction, in_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))
'''

BUILD = '''
import torch, graphbuilder as gb, se_layers
g = gb.Graph("se_net")
x = g.input("x", shape=(2, 8, 6, 6))
g.output(g.add("se_block", g.add("conv2d", x, out_channels=8, kernel_size=3, padding=1), reduction=2, name="se"))
model = gb.compile(g)
gb.store_weights(g, model)
g.save("net.graph.json")
x = torch.randn(2, 8, 6, 6)
torch.save({"x": x, "y": model(x).detach()}, "io.pt")
'''

LOAD_WITHOUT_MODULE = '''
import graphbuilder as gb
try:
    gb.Graph.load("net.graph.json")
except gb.GraphError as e:
    print(e)
else:
    raise SystemExit("loaded an op whose module was never imported")
'''

EXPORT = '''
import torch, graphbuilder as gb, se_layers
g = gb.Graph.load("net.graph.json")
open("net_import.py", "w").write(gb.export.to_python(g, "Net"))
open("net_inline.py", "w").write(gb.export.to_python(g, "Net", user_ops="inline"))
torch.save(gb.compile(g).state_dict(), "state.pt")
'''

RUN = '''
import sys, importlib, torch
io, state = torch.load("io.pt"), torch.load("state.pt")
for name in sys.argv[1:]:
    model = importlib.import_module(name).Net()
    model.load_state_dict(state)
    torch.testing.assert_close(model(io["x"]), io["y"], rtol=0, atol=0)
    print(name, "ok")
'''


def _python(code: str, cwd: Path, *, graphbuilder: bool = True, args: tuple[str, ...] = ()) -> str:
    """Run `code` in a fresh interpreter in `cwd`; with ``graphbuilder=False`` GraphBuilder cannot be imported."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    if graphbuilder:
        env["PYTHONPATH"] = f"{REPO}{os.pathsep}{cwd}"
        cmd = [sys.executable, "-c", code, *args]
    else:
        (cwd / "_run.py").write_text(code)
        block = "import sys; sys.modules['graphbuilder'] = None\n"  # any import of it now raises ImportError
        (cwd / "_run.py").write_text(block + code)
        cmd = [sys.executable, "_run.py", *args]
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_class_names_become_natural_op_names() -> None:
    assert [snake_case(n) for n in ("SEBlock", "MLP", "ScaledReLU", "Conv2dBN", "ResNetStem", "MyBlock")] == [
        "se_block", "mlp", "scaled_relu", "conv2d_bn", "resnet_stem", "my_block"]

    @gb.op()
    class MLP(nn.Module):
        def __init__(self, in_features: int, hidden: int = 4) -> None:
            super().__init__()
            self.fc = nn.Linear(in_features, hidden)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x)

    try:
        assert registry.get("mlp").source.endswith("MLP")
    finally:
        registry.unregister("mlp")


def test_user_op_survives_save_fresh_process_load_and_to_python(tmp_path: Path) -> None:
    (tmp_path / "se_layers.py").write_text(USER_MODULE)
    _python(BUILD, tmp_path)
    assert '"ops": {\n  "se_block": "se_layers.SEBlock"' in (tmp_path / "net.graph.json").read_text()

    message = _python(LOAD_WITHOUT_MODULE, tmp_path)
    assert "se_block" in message and "import se_layers" in message and "did you mean" not in message

    _python(EXPORT, tmp_path)
    imported = (tmp_path / "net_import.py").read_text()
    inlined = (tmp_path / "net_inline.py").read_text()
    assert "from se_layers import SEBlock" in imported
    assert "class SEBlock(nn.Module):" in inlined and "gb.op" not in inlined and "graphbuilder" not in inlined
    # The inlined file runs where GraphBuilder cannot be imported; the importing one needs only the user's module.
    assert "net_inline ok" in _python(RUN, tmp_path, graphbuilder=False, args=("net_inline",))
    assert "net_import ok" in _python(RUN, tmp_path, args=("net_import",))


def test_to_python_of_a_main_module_class_says_to_inline(tmp_path: Path) -> None:
    code = textwrap.dedent('''
        import torch, graphbuilder as gb
        from torch import nn

        @gb.op()
        class Twice(nn.Module):
            def forward(self, x):
                return 2 * x

        g = gb.Graph("t")
        g.output(g.add("twice", g.input("x", shape=(2, 3)), name="double"))
        try:
            gb.export.to_python(g)
        except gb.GraphError as e:
            print(e)
        print(gb.export.to_python(g, user_ops="inline"))
    ''')
    (tmp_path / "main.py").write_text(code)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "main.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "__main__" in done.stdout and "user_ops='inline'" in done.stdout
    assert "class Twice(nn.Module):" in done.stdout


def test_broken_graph_saves_loudly_and_loads_with_the_named_option(tmp_path: Path) -> None:
    g = gb.Graph("broken")
    x = g.input("x", shape=(2, 4))
    g.output(g.add("add", g.add("linear", x, out_features=4, name="fc"), x, name="sum"))
    g["fc"].params["out_features"] = 3  # (2, 3) + (2, 4): a shape error at 'sum'
    path = tmp_path / "broken.graph.json"
    with pytest.warns(gb.GraphWarning, match="strict=False"):
        g.save(str(path))
    with pytest.raises(gb.GraphError, match=r"'sum'.*strict=False"):
        gb.Graph.load(str(path))
    back = gb.Graph.load(str(path), strict=False)
    assert set(back.errors()) == {"sum", "output"}

    table = str(back.summary())
    assert "2 node(s) have errors" in table and "ERROR" in table and "fc" in table
    with pytest.raises(gb.GraphError, match="cannot write Python source while node 'sum' has an error"):
        gb.export.to_python(back)


def test_compile_follows_the_imported_modules_mode() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    x = torch.randn(2, 3, 8, 8)
    net.train()
    for _ in range(2):
        net(torch.randn(2, 3, 8, 8))  # non-trivial running statistics
    net.eval()
    g = gb.from_module(net, (x,))
    assert g.meta["training"] is False
    model = gb.compile(g)
    assert not model.training and all(not m.training for m in model.modules())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.testing.assert_close(model(x), net(x), rtol=0, atol=0)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed in a forward pass of an eval-mode model"
    assert "self.eval()" in gb.export.to_python(g)
    assert gb.compile(gb.from_module(net.train(), (x,))).training
