"""Recurrent layers with flat outputs (imports only torch), so each output is one port of a graph node.

`LSTM` and `GRU` hold torch's layer (batch first, zero initial state) and return ``(output, h_n, c_n)`` /
``(output, h_n)`` instead of nested tuples; written by composition so TorchScript can compile them.
"""

from __future__ import annotations

from torch import Tensor, nn


class LSTM(nn.Module):
    """`nn.LSTM` (batch first) returning ``(output, h_n, c_n)``."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, bias=bias, batch_first=True, dropout=dropout,
                            bidirectional=bidirectional, proj_size=proj_size)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out, (h, c) = self.lstm(x)
        return out, h, c


class GRU(nn.Module):
    """`nn.GRU` (batch first) returning ``(output, h_n)``."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 dropout: float = 0.0, bidirectional: bool = False) -> None:
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size, num_layers, bias=bias, batch_first=True, dropout=dropout,
                          bidirectional=bidirectional)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        out, h = self.gru(x)
        return out, h
