"""What a hostile graph file costs to refuse: each small-file attack on the loader's work (a rank-1,000,000
input read by 300 convs, 20,000 mixed_op candidates, a neuron graph over the connection limit, nodes spread
over blocks past the node limit, meta nested 800 deep) against loading a benign file of the same size in
bytes (the baseline: reading and checking that many bytes has to happen anyway).

    .venv/bin/python benchmarks/bench_hostile_files.py [--repeat 3]

Each attack must raise `GraphError` (the script stops if one does not); it prints the median time to refuse,
the median time to load the benign file, and their ratio. The benign file holds a list of as many numbers as
fit in the same bytes, so reading and checking it is the same kind of work. It never fails on time.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from bench_compile import median_time

import graphbuilder as gb
from graphbuilder.ir import serialize
from graphbuilder.ir.limits import MAX_CONNECTIONS, MAX_NODES


def _node(name: str, op: str, params: dict[str, Any], inputs: list[Any]) -> dict[str, Any]:
    return {"name": name, "op": op, "params": params, "inputs": inputs, "meta": {}}


def _file(nodes: list[dict[str, Any]], meta: dict[str, Any] | None = None) -> str:
    return json.dumps({"format": "graphbuilder.graph", "version": 1, "name": "g", "meta": meta or {}, "nodes": nodes})


def rank_attack() -> str:
    """The issue's 3 MB file: an input of rank 1,000,000 read by 300 convs."""
    nodes = [_node("x", "input", {"shape": [1] * 1_000_000, "dtype": "float32"}, [])]
    nodes += [_node(f"c{i}", "conv2d", {"out_channels": 4, "kernel_size": 1}, [["x", 0]]) for i in range(300)]
    return _file(nodes)


def candidates_attack() -> str:
    """One mixed_op node with 20,000 candidates (each builds a module)."""
    return _file([_node("x", "input", {"shape": [2, 8, 8, 8], "dtype": "float32"}, []),
                  _node("m", "mixed_op", {"candidates": ["skip"] * 20_000, "out_channels": 8}, [["x", 0]])])


def connections_attack() -> str:
    """A neuron graph one connection over the limit."""
    n = MAX_CONNECTIONS + 1
    topology = {"inputs": [0], "hidden": [], "outputs": [{"id": 1, "act": "identity"}], "connections": [[0, 1]] * n}
    return _file([_node("x", "input", {"shape": [2, 1], "dtype": "float32"}, []),
                  _node("ng", "neuron_graph", {"topology": topology, "mode": "auto"}, [["x", 0]])])


def blocks_attack() -> str:
    """Nodes spread over blocks, each under the per-graph limit, together past the per-file limit."""
    per_block = MAX_NODES // 4
    body = {"name": "b", "meta": {}, "nodes": [_node("i", "input", {"shape": [2, 3], "dtype": "float32"}, [])]}
    body["nodes"] += [_node(f"r{k}", "relu", {}, [["i", 0]]) for k in range(per_block)]
    body["nodes"].append(_node("o", "output", {}, [["i", 0]]))
    nodes = [_node("x", "input", {"shape": [2, 3], "dtype": "float32"}, [])]
    nodes += [{**_node(f"b{j}", "block", {}, [["x", 0]]), "block": body} for j in range(5)]
    return _file(nodes)


def deep_attack() -> str:
    """The issue's 5 KB file: meta nested 800 deep."""
    deep: Any = 0
    for _ in range(800):
        deep = {"a": deep}
    return _file([_node("x", "input", {"shape": [2, 3], "dtype": "float32"}, [])], {"deep": deep})


def benign(size: int) -> str:
    """A valid graph file of about `size` bytes: a small graph whose meta holds a list of numbers."""
    small = _file([_node("x", "input", {"shape": [2, 3], "dtype": "float32"}, []),
                   _node("o", "output", {}, [["x", 0]])], {"note": []})
    return small.replace('"note": []', '"note": [' + ", ".join(["1"] * max(1, (size - len(small)) // 3)) + "]")


def refuse(text: str) -> None:
    try:
        serialize.loads(text)
    except gb.GraphError:
        return
    raise SystemExit("an attack file loaded: the limit it targets is not enforced")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    attacks = {"rank 1,000,000 input, 300 convs": rank_attack, "20,000 mixed_op candidates": candidates_attack,
               f"{MAX_CONNECTIONS + 1:,} neuron connections": connections_attack,
               f"{5 * (MAX_NODES // 4 + 2):,} nodes in 5 blocks": blocks_attack, "meta 800 deep": deep_attack}
    print(f"{'attack':36} {'bytes':>12} {'refused in':>11} {'benign load':>12} {'ratio':>6}")
    for label, make in attacks.items():
        text = make()
        easy = benign(len(text))
        serialize.loads(easy)  # the baseline must load
        t_refuse = median_time(lambda t=text: refuse(t), args.repeat)
        t_benign = median_time(lambda t=easy: serialize.loads(t), args.repeat)
        print(f"{label:36} {len(text):>12,} {t_refuse * 1e3:>9.1f}ms {t_benign * 1e3:>10.1f}ms "
              f"{t_refuse / t_benign:>6.2f}")


if __name__ == "__main__":
    main()
