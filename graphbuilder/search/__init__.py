"""Architecture search on IR graphs: every result is a `gb.Graph` that opens in the editor and exports.

    prune_grow   prune connections / add neurons over arbitrary neuron DAGs (arXiv:2108.02231)
    trinity      Hit-Detector: backbone, neck and head of a detector searched together (arXiv:2003.11818)
    sweep        any search over configs and seeds, in this process, on every local core or on Ray
"""

from graphbuilder.ops.neuron_graph import NeuronGraph
from graphbuilder.search.baseline import mlp_sweep, smallest_reaching
from graphbuilder.search.executors import Executor, LocalExecutor, ProcessExecutor, RayExecutor, Work
from graphbuilder.search.prune_grow import PruneGrowConfig, SearchResult, prune_grow
from graphbuilder.search.result import BaseResult
from graphbuilder.search.sweep import SweepError, SweepResult, Trial, sweep
from graphbuilder.search.trinity import TrinityConfig, TrinityResult, trinity

__all__ = ["NeuronGraph", "PruneGrowConfig", "SearchResult", "mlp_sweep", "prune_grow", "smallest_reaching"]
__all__ += ["TrinityConfig", "TrinityResult", "trinity"]
__all__ += ["BaseResult", "Executor", "LocalExecutor", "ProcessExecutor", "RayExecutor", "SweepError", "SweepResult"]
__all__ += ["Trial", "Work", "sweep"]
