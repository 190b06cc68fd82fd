"""A straightforward evaluator of neuron graphs for tests: one neuron at a time in torch, so autograd computes
every derivative (gradients, Jacobians, exact Hessians) independently of the executor's own reverse walk."""

from __future__ import annotations

import torch

from graphbuilder.search import NeuronGraph

TORCH_ACT = {"identity": lambda z: z, "relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
             "softplus": torch.nn.functional.softplus, "sin": torch.sin}


def reference_forward(ng: NeuronGraph, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """(N, inputs) -> (N, outputs) with parameters θ = (weights in connection order, biases hidden then
    outputs), the state dict layout."""
    conns, units = ng.connections, ng.hidden + ng.outputs
    w_of = {e: k for k, e in enumerate(conns)}
    b_of = {u: len(conns) + k for k, u in enumerate(units)}
    value = {i: x[:, k] for k, i in enumerate(ng.inputs)}
    for n in ng.topological_order():
        if n in value:
            continue
        z = theta[b_of[n]] + sum((theta[w_of[(s, n)]] * value[s] for s in ng.sources(n)), torch.zeros_like(x[:, 0]))
        value[n] = TORCH_ACT[ng.activation(n)](z)
    return torch.stack([value[o] for o in ng.outputs], 1)
