"""Architecture search on IR graphs: every result is a `gb.Graph` that opens in the editor and exports.

    prune_grow   prune connections / add neurons over arbitrary neuron DAGs (arXiv:2108.02231)
    trinity      Hit-Detector: backbone, neck and head of a detector searched together (arXiv:2003.11818)
"""

from graphbuilder.ops.neuron_graph import NeuronGraph
from graphbuilder.search.baseline import mlp_sweep, smallest_reaching
from graphbuilder.search.prune_grow import SearchResult, prune_grow
from graphbuilder.search.trinity import TrinityConfig, TrinityResult, trinity

__all__ = ["NeuronGraph", "SearchResult", "mlp_sweep", "prune_grow", "smallest_reaching"]
__all__ += ["TrinityConfig", "TrinityResult", "trinity"]
