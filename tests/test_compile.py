"""The compiled module is plain torch: fx code named after the graph, torch.compile, CUDA, no GraphBuilder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import graphbuilder as gb


def resnetish() -> gb.Graph:
    g = gb.Graph("small net")
    x = g.input("image", shape=(4, 3, 16, 16))
    h = g.add("relu", g.add("batch_norm2d", g.add("conv2d", x, out_channels=8, kernel_size=3, padding=1,
                                                   name="stem conv")))
    branch = g.add("conv2d", h, out_channels=8, kernel_size=3, padding=1, name="branch")
    h = g.add("relu", g.add("add", branch, h, name="residual"))
    parts = g.add("split", h, split_size_or_sections=4, dim=1)
    h = g.add("cat", parts[1], parts[0], dim=1)
    logits = g.add("linear", g.add("flatten", g.add("adaptive_avg_pool2d", h, output_size=1)), out_features=5,
                   name="head")
    g.output(logits)
    return g


def test_fx_names_follow_graph_names() -> None:
    model = gb.compile(resnetish())
    assert "stem_conv = self.stem_conv(image)" in model.code
    assert "residual = torch.add(branch" in model.code
    assert isinstance(model.head, torch.nn.Linear)
    assert type(model).__name__ == "SmallNet"


def test_torch_compile_matches_eager() -> None:
    torch.manual_seed(0)
    model = gb.compile(resnetish()).eval()
    x = torch.randn(4, 3, 16, 16)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x))


@pytest.mark.slow
def test_torch_compile_inductor_matches_eager() -> None:
    model = gb.compile(resnetish()).eval()
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(torch.compile(model)(x), model(x), rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu() -> None:
    torch.manual_seed(0)
    model = gb.compile(resnetish()).eval()
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        expected = model(x)
        got = model.to("cuda")(x.to("cuda")).cpu()
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_saved_module_runs_without_graphbuilder(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = gb.compile(resnetish()).eval()
    x = torch.randn(4, 3, 16, 16)
    torch.save({"model": model, "x": x, "y": model(x).detach()}, tmp_path / "model.pt")
    script = (
        "import importlib.abc, sys, torch\n"
        # The dev install puts graphbuilder on sys.path; refuse it so any import of it would fail loudly.
        "class NoGraphBuilder(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] == 'graphbuilder':\n"
        "            raise ImportError('graphbuilder is blocked')\n"
        "sys.meta_path.insert(0, NoGraphBuilder())\n"
        "d = torch.load('model.pt', weights_only=False)\n"
        "assert torch.equal(d['model'](d['x']), d['y'])\n"
        "print('ok')\n"
    )
    # -I: isolated mode (no cwd, no PYTHONPATH, no user site), so only torch's install is visible.
    run = subprocess.run([sys.executable, "-I", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ok"
    assert "graphbuilder" not in run.stderr
