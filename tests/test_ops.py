"""Every built-in op: the compiled graph equals a hand-written torch call on the same weights and input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import graphbuilder as gb

# op -> (input shapes, params, reference). A reference returns (module_or_None, fn(inputs, module) -> output).
Ref = Callable[[], tuple[nn.Module | None, Callable[..., Any]]]


def mod(m: nn.Module, multi: bool = False) -> Ref:
    return lambda: (m, lambda xs, m_: m_(*xs))


def fn(f: Callable[..., Any]) -> Ref:
    return lambda: (None, lambda xs, _: f(*xs))


CASES: dict[str, tuple[list[tuple[int, ...]], dict[str, Any], Ref]] = {
    "identity": ([(2, 5)], {}, fn(lambda x: x)),
    "conv1d": ([(2, 4, 11)], dict(out_channels=6, kernel_size=3, stride=2, padding=1),
               mod(nn.Conv1d(4, 6, 3, stride=2, padding=1))),
    "conv2d": ([(2, 4, 9, 9)], dict(out_channels=8, kernel_size=3, padding=2, dilation=2, groups=4),
               mod(nn.Conv2d(4, 8, 3, padding=2, dilation=2, groups=4))),
    "conv3d": ([(1, 2, 5, 6, 7)], dict(out_channels=3, kernel_size=(1, 3, 3), bias=False),
               mod(nn.Conv3d(2, 3, (1, 3, 3), bias=False))),
    "conv_transpose2d": ([(2, 4, 5, 5)], dict(out_channels=3, kernel_size=2, stride=2),
                         mod(nn.ConvTranspose2d(4, 3, 2, stride=2))),
    "linear": ([(3, 7, 5)], dict(out_features=4), mod(nn.Linear(5, 4))),
    "batch_norm1d": ([(6, 5)], {}, mod(nn.BatchNorm1d(5))),
    "batch_norm2d": ([(4, 3, 5, 5)], dict(eps=1e-3), mod(nn.BatchNorm2d(3, eps=1e-3))),
    "batch_norm3d": ([(2, 3, 2, 4, 4)], {}, mod(nn.BatchNorm3d(3))),
    "layer_norm": ([(2, 3, 6)], dict(normalized_dims=2), mod(nn.LayerNorm((3, 6)))),
    "group_norm": ([(2, 6, 4, 4)], dict(num_groups=3), mod(nn.GroupNorm(3, 6))),
    "instance_norm2d": ([(2, 3, 5, 5)], dict(affine=True), mod(nn.InstanceNorm2d(3, affine=True))),
    "relu": ([(2, 9)], {}, fn(torch.relu)),
    "relu6": ([(2, 9)], {}, fn(F.relu6)),
    "leaky_relu": ([(2, 9)], dict(negative_slope=0.2), fn(lambda x: F.leaky_relu(x, 0.2))),
    "gelu": ([(2, 9)], dict(approximate="tanh"), fn(lambda x: F.gelu(x, approximate="tanh"))),
    "silu": ([(2, 9)], {}, fn(F.silu)),
    "sigmoid": ([(2, 9)], {}, fn(torch.sigmoid)),
    "tanh": ([(2, 9)], {}, fn(torch.tanh)),
    "hardswish": ([(2, 9)], {}, fn(F.hardswish)),
    "hardsigmoid": ([(2, 9)], {}, fn(F.hardsigmoid)),
    "softmax": ([(2, 9)], dict(dim=1), fn(lambda x: torch.softmax(x, 1))),
    "log_softmax": ([(2, 9)], {}, fn(lambda x: torch.log_softmax(x, -1))),
    "prelu": ([(2, 3, 4)], dict(num_parameters=3), mod(nn.PReLU(3))),
    "max_pool1d": ([(2, 3, 10)], dict(kernel_size=3, stride=2), fn(lambda x: F.max_pool1d(x, 3, 2))),
    "max_pool2d": ([(2, 3, 9, 9)], dict(kernel_size=2), fn(lambda x: F.max_pool2d(x, 2))),
    "avg_pool1d": ([(2, 3, 10)], dict(kernel_size=2, padding=1), fn(lambda x: F.avg_pool1d(x, 2, padding=1))),
    "avg_pool2d": ([(2, 3, 8, 8)], dict(kernel_size=3, stride=1), fn(lambda x: F.avg_pool2d(x, 3, 1))),
    "adaptive_avg_pool2d": ([(2, 3, 7, 9)], dict(output_size=(2, 3)),
                            fn(lambda x: F.adaptive_avg_pool2d(x, (2, 3)))),
    "adaptive_max_pool2d": ([(2, 3, 7, 9)], dict(output_size=1), fn(lambda x: F.adaptive_max_pool2d(x, 1))),
    "upsample": ([(2, 3, 4, 5)], dict(scale_factor=2.0, mode="bilinear", align_corners=False),
                 fn(lambda x: F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False))),
    "add": ([(2, 3, 4), (3, 1)], {}, fn(lambda a, b: a + b)),
    "sub": ([(2, 3, 4), (2, 3, 4)], {}, fn(lambda a, b: a - b)),
    "mul": ([(2, 3, 4), (4,)], {}, fn(lambda a, b: a * b)),
    "cat": ([(2, 3, 4), (2, 5, 4), (2, 1, 4)], dict(dim=1), fn(lambda *xs: torch.cat(xs, 1))),
    "flatten": ([(2, 3, 4, 5)], dict(start_dim=2), fn(lambda x: x.flatten(2))),
    "reshape": ([(2, 12)], dict(shape=(-1, 3, 4)), fn(lambda x: x.reshape(-1, 3, 4))),
    "permute": ([(2, 3, 4)], dict(dims=(0, 2, 1)), fn(lambda x: x.permute(0, 2, 1))),
    "transpose": ([(2, 3, 4)], dict(dim0=0, dim1=2), fn(lambda x: x.transpose(0, 2))),
    "mean": ([(2, 3, 4, 5)], dict(dim=(2, 3), keepdim=True), fn(lambda x: x.mean((2, 3), keepdim=True))),
    "matmul": ([(2, 3, 4), (4, 5)], {}, fn(torch.matmul)),
    "dropout": ([(2, 9)], dict(p=0.3), fn(lambda x: x)),  # compared in eval mode
    "scaled_dot_product_attention": ([(2, 4, 6), (2, 5, 6), (2, 5, 3)], {},
                                     fn(F.scaled_dot_product_attention)),
}


def _compare(op: str, shapes: list[tuple[int, ...]], params: dict[str, Any], ref: Ref) -> None:
    torch.manual_seed(0)
    g = gb.Graph(op)
    ins = [g.input(f"x{i}", shape=s) for i, s in enumerate(shapes)]
    node = g.add(op, *ins, **params)
    g.output(node)
    model = gb.compile(g).eval()
    xs = [torch.randn(s) for s in shapes]
    module, call = ref()
    if module is not None:
        module.load_state_dict(getattr(model, op).state_dict())
        module.eval()
    with torch.no_grad():
        expected = call(xs, module)
        got = model(*xs)
    assert got.shape == expected.shape == node.shape
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


@pytest.mark.parametrize("op", sorted(CASES))
def test_op_matches_torch(op: str) -> None:
    shapes, params, ref = CASES[op]
    _compare(op, shapes, params, ref)


def test_split_multi_output() -> None:
    g = gb.Graph("split")
    x = g.input("x", shape=(2, 7, 3))
    s = g.add("split", x, split_size_or_sections=(2, 5), dim=1)
    assert s.num_outputs == 2 and s[1].shape == (2, 5, 3)
    g.output(s[1], s[0])
    t = torch.randn(2, 7, 3)
    a, b = gb.compile(g)(t)
    assert torch.equal(a, t[:, 2:]) and torch.equal(b, t[:, :2])


def test_multihead_attention_matches_module() -> None:
    g = gb.Graph("mha")
    q, kv = g.input("q", shape=(2, 5, 8)), g.input("kv", shape=(2, 6, 8))
    node = g.add("multihead_attention", q, kv, kv, num_heads=2, need_weights=True)
    g.output(node[0], node[1])
    model = gb.compile(g).eval()
    ref = nn.MultiheadAttention(8, 2, batch_first=True)
    ref.load_state_dict(model.multihead_attention.state_dict())
    ref.eval()
    a, b = torch.randn(2, 5, 8), torch.randn(2, 6, 8)
    out, weights = model(a, b)
    ref_out, ref_weights = ref(a, b, b, need_weights=True)
    assert torch.equal(out, ref_out) and torch.equal(weights, ref_weights)


def test_embedding_takes_int_ids() -> None:
    g = gb.Graph("emb")
    ids = g.input("ids", shape=(2, 7), dtype="int64")
    node = g.add("embedding", ids, num_embeddings=11, embedding_dim=4)
    g.output(node)
    model = gb.compile(g)
    ref = nn.Embedding(11, 4)
    ref.load_state_dict(model.embedding.state_dict())
    x = torch.randint(0, 11, (2, 7))
    assert node.shape == (2, 7, 4)
    assert torch.equal(model(x), ref(x))


CORE_OPS = set(CASES) | {"split", "multihead_attention", "embedding", "input", "output"}


def test_every_core_op_is_tested_and_registered() -> None:
    assert CORE_OPS <= set(gb.ops.names())
    assert len(CORE_OPS) >= 45


def test_every_op_declares_doc_category_and_param_docs() -> None:
    for opdef in gb.ops.all_ops():
        assert opdef.doc and opdef.category, opdef.name
        for p in opdef.params:
            assert p.name, opdef.name
        assert opdef.to_json()["name"] == opdef.name
