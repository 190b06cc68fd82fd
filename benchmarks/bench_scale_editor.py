"""The editor at 1,000 to 10,000 nodes: first display and one head edit, beside an empty patch's round trip.

    .venv/bin/python benchmarks/bench_scale_editor.py [--sizes 1000 5000 10000] [--repeats 3] [--python-only]

Graphs: the conv/relu chains of `bench_widget.chain` (8 channels, 16x16), and a ResNet-like network of 50
bottleneck blocks shown collapsed (`resnet_like`, 665 nodes, 50 block nodes at the top level).

1. In the browser (a real JupyterLab and headless Chromium, the machinery of bench_widget.py): cell
   execution -> laid-out canvas (goal at 10,000 nodes: 1.5 s), and a head edit's round trip, Enter in the
   inspector -> the new shape on screen: the first conv's padding changes, so every node after it is re-inferred
   and its shape changes (goals: 50 ms at 1,000 nodes, 150 ms at 10,000). Baseline: an empty patch's round trip
   on the same widget (the comm alone).
2. `editor_rows` (also with ``--python-only``, and from ``bench_scale.py --editor``): the kernel's side alone,
   no browser: building the first document, a head edit's reply (`Session.handle` and the JSON encoding of what
   it sends), a local edit (the last conv, no shape changes) and an empty patch.

Prints medians; never fails on time. The browser part needs /usr/bin/chromium and the built widget bundle.
"""

from __future__ import annotations

import argparse
import inspect
import json
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import graphbuilder as gb
from graphbuilder.widget.session import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_widget import _run_timed, chain, comm_round_trip, edit_round_trip, lab_notebook  # noqa: E402


def resnet_like(blocks: int = 50) -> gb.Graph:
    """stem -> `blocks` bottleneck residual blocks (block nodes, 12 nodes inside each) -> pool -> fc."""
    unit = gb.Graph("bottleneck")
    x = unit.input("x", shape=(1, 16, 16, 16))
    h = unit.add("relu", unit.add("batch_norm2d", unit.add("conv2d", x, out_channels=4, kernel_size=1)))
    h = unit.add("relu", unit.add("batch_norm2d", unit.add("conv2d", h, out_channels=4, kernel_size=3, padding=1)))
    h = unit.add("batch_norm2d", unit.add("conv2d", h, out_channels=16, kernel_size=1))
    unit.output(unit.add("relu", unit.add("add", h, x)))
    g = gb.Graph(f"resnet_like{blocks}")
    h = g.add("conv2d", g.input("x", shape=(1, 3, 16, 16)), out_channels=16, kernel_size=3, padding=1, name="stem")
    for i in range(blocks):
        h = g.add(unit, h, name=f"b{i}")
    pooled = g.add("adaptive_avg_pool2d", h, output_size=1, name="pool")
    g.output(g.add("linear", g.add("flatten", pooled, name="flat"), out_features=10, name="fc"), name="out")
    return g


def _median_ms(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _python_side(graph: gb.Graph, head: str, head_param: str, values: list[Any], local: str | None,
                 repeats: int) -> dict[str, float]:
    """Kernel-side milliseconds for one graph: first document, head edit, local edit, empty patch."""
    sent: list[Any] = []
    out: dict[str, float] = {}
    session: Session | None = None

    def display() -> None:
        nonlocal session
        session = Session(graph.copy(), sent.append)
        json.dumps(session.snapshot())

    out["display"] = _median_ms(display, repeats)
    assert session is not None
    counter = iter(range(10**9))

    def patch(ops: list[dict[str, Any]]) -> None:
        sent.clear()
        session.handle({"kind": "patch", "id": f"p{next(counter)}", "base_version": session.version, "ops": ops})
        json.dumps(sent)

    flip = iter(values * (4 * repeats))
    out["head edit"] = _median_ms(lambda: patch([{"op": "params", "node": head, "params": {head_param: next(flip)}}]),
                                  max(repeats, 4))
    if local is not None:
        kernel = iter([1, 3] * (4 * repeats))
        out["local edit"] = _median_ms(
            lambda: patch([{"op": "params", "node": local, "params": {"kernel_size": (k := next(kernel)),
                                                                       "padding": k // 2}}]), max(repeats, 4))
    out["empty patch"] = _median_ms(lambda: patch([]), max(repeats, 4))
    return out


def editor_rows(sizes: list[int], repeats: int = 3) -> None:
    """Print the kernel's side of the editor (no browser) for chains of `sizes` nodes and the ResNet-like graph."""
    print("\nEditor, kernel side only (ms, median; the reply includes its JSON encoding; baseline: empty patch)")
    print(f"{'graph':>24} {'display':>9} {'head edit':>10} {'local edit':>11} {'empty patch':>12}")
    for n in sizes:
        g, k = chain(n)
        row = _python_side(g, "conv0", "padding", [0, 1], f"conv{k - 1}", repeats)
        print(f"{f'chain {n}':>24} {row['display']:9.1f} {row['head edit']:10.1f} {row['local edit']:11.1f} "
              f"{row['empty patch']:12.2f}")
    g = resnet_like()
    row = _python_side(g, "stem", "padding", [0, 1], None, repeats)
    print(f"{f'resnet-like {len(g)}+blocks':>24} {row['display']:9.1f} {row['head edit']:10.1f} {'-':>11} "
          f"{row['empty patch']:12.2f}")


# The notebook's first cell: the graphs, built in the kernel by this very `chain` and `resnet_like`.
SETUP = ("import graphbuilder as gb\n\n" + inspect.getsource(chain) + "\n" + inspect.getsource(resnet_like)
         + "\ngraphs = {n: chain(n) for n in SIZES}\nresnet = resnet_like()\nprint('built')")


def _ready(n: int) -> str:
    return ("i => { const r = document.querySelectorAll('.jp-Notebook .jp-Cell')[i].querySelector('.gb-root');"
            f" return !!r && r !== window.__gbOld && r.dataset.gbReady === '1' && Number(r.dataset.gbNodes) >= {n}"
            " && r.dataset.gbPending === '0'; }")


def browser_rows(sizes: list[int], repeats: int) -> None:
    """Display and head-edit round trips in JupyterLab + Chromium (see the module docstring)."""
    cells = [SETUP.replace("SIZES", repr(sizes))]
    cells += [f"gb.GraphWidget(graphs[{n}][0].copy(), height=600, direction='TB')" for n in sizes]
    cells += ["gb.GraphWidget(resnet.copy(), height=600, direction='TB')"]
    rows = []
    with lab_notebook("scale.ipynb", cells) as nb:
        for i, n in enumerate([*sizes, 0]):
            index = 1 + i
            shown = 55 if n == 0 else n  # the ResNet-like graph draws its top level: 50 blocks + 5 nodes
            times = []
            for _ in range(repeats):
                nb.page.evaluate("i => { window.__gbOld = document.querySelectorAll('.jp-Notebook .jp-Cell')[i]"
                                 ".querySelector('.gb-root'); }", index)
                times.append(_run_timed(nb, index, _ready(shown), index))
            comm = comm_round_trip(nb, index, max(5, repeats))
            if n:
                edit, reply = edit_round_trip(nb, index, "conv0", "padding", ["0", "1"], "relu0", "conv1",
                                              max(2, repeats))
            else:
                edit, reply = edit_round_trip(nb, index, "stem", "padding", ["0", "1"], "stem", "b0", max(2, repeats))
            label = f"chain {n}" if n else "resnet-like, 50 blocks"
            rows.append((label, statistics.median(times), statistics.median(comm), statistics.median(edit),
                         statistics.median(reply)))
            print(f"  {label}: display {rows[-1][1]:.0f} ms, head edit {rows[-1][3]:.0f} ms", file=sys.stderr,
                  flush=True)
    print(f"\nEditor in JupyterLab + Chromium (ms, median of {repeats}; baseline: an empty patch's round trip)")
    print(f"{'graph':>24} {'display':>9} {'empty patch':>12} {'head edit':>10} {'x baseline':>11} {'reply in':>9}")
    for label, display, comm, edit, reply in rows:
        print(f"{label:>24} {display:9.0f} {comm:12.1f} {edit:10.1f} {edit / comm:11.1f} {reply:9.1f}")
    print("goals: display at 10,000 nodes 1500 ms; head edit 50 ms at 1,000 nodes, 150 ms at 10,000")


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the JupyterLab server is always stopped
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--python-only", action="store_true", help="only the kernel's side, no browser")
    args = parser.parse_args()
    editor_rows(args.sizes, args.repeats)
    if not args.python_only:
        browser_rows(args.sizes, args.repeats)


if __name__ == "__main__":
    main()
