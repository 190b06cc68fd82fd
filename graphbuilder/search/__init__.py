"""Architecture search on IR graphs: every result is a `gb.Graph` that opens in the editor and exports.

    prune_grow   prune connections / add neurons over arbitrary neuron DAGs (arXiv:2108.02231)
"""

from graphbuilder.ops.neuron_graph import NeuronGraph

__all__ = ["NeuronGraph"]
