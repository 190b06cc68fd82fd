"""Recurrent layers (batch first, zero initial state); input_size comes from the input's last dim."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from graphbuilder.ir.errors import GraphError
from graphbuilder.ops.declare import example, features, flag, module_op, named, need_rank, number, size
from graphbuilder.ops.modules.recurrent import GRU, LSTM

_COMMON = dict(hidden_size=size("features of the hidden state"), num_layers=size("stacked layers", 1),
               bias=flag("bias weights", True), dropout=number("dropout between layers", 0.0, lo=0.0, hi=1.0),
               bidirectional=flag("run both directions (outputs 2 x hidden_size)", False))


def _read(m: nn.Module) -> dict[str, Any]:
    if not m.batch_first:
        raise GraphError(f"{type(m).__name__} with batch_first=False: construct it with batch_first=True")
    if getattr(m, "proj_size", 0):
        raise GraphError("LSTM with proj_size is not supported")
    return {k: getattr(m, k) for k in _COMMON}


def _ref(cls: type[nn.Module], **kw: Any) -> Any:
    def ref(x: torch.Tensor, **weights: torch.Tensor) -> Any:
        layer = cls(x.shape[-1], batch_first=True, **kw)
        layer.load_state_dict({k.split("_", 1)[1]: v for k, v in weights.items()})
        out, state = layer(x)
        return (out, *state) if isinstance(state, tuple) else (out, state)
    return ref


_HINT = "(N, L, features)"
for _name, _cls, _torch, _outputs in (("lstm", LSTM, nn.LSTM, "h_n and c_n"), ("gru", GRU, nn.GRU, "h_n")):
    module_op(_name, "recurrent", f"{_name.upper()} layer(s): outputs the sequence (N, L, D x hidden_size), then "
              f"{_outputs} (D x num_layers, N, hidden_size).", _cls, named(**_COMMON),
              derive={"input_size": features}, hint=_HINT, check=need_rank(3, hint=_HINT), module=_torch, read=_read,
              examples=[example((2, 5, 3), hidden_size=4, num_layers=2, ref=_ref(_torch, hidden_size=4, num_layers=2),
                                atol=1e-6),
                        example((2, 4, 3), hidden_size=2, bidirectional=True,
                                ref=_ref(_torch, hidden_size=2, bidirectional=True), atol=1e-6)])
