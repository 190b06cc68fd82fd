"""Every size limit GraphBuilder enforces, in one place, each checked before the work it bounds.

A small input must not cost minutes or gigabytes: a 3 MB file naming a rank-1,000,000 input made 300 convs
infer for minutes, and 20,000 `mixed_op` candidates built 20,000 modules. So every size that drives work has
a limit here, and the code that reads the size refuses it (with a `GraphError` naming the node or JSON path,
the size and the limit) before doing any of that work. docs/format.md lists them for file authors.
"""

from __future__ import annotations

MAX_FILE_BYTES = 64 * 1024 * 1024
"""A graph file's size."""

MAX_NODES = 100_000
"""Nodes in one graph file or pasted fragment, all blocks together (blocks would otherwise multiply it)."""

MAX_BLOCK_DEPTH = 32
"""Blocks inside blocks."""

MAX_VALUE_DEPTH = 64
"""Nesting of one JSON value held by a node or graph: a meta entry, a ``json`` parameter."""

MAX_DOCUMENT_DEPTH = 3 * (MAX_BLOCK_DEPTH + 1) + MAX_VALUE_DEPTH + 4
"""Nesting of a whole graph file: each block level adds three (node list, node, block) to a value's depth."""

MAX_INT = 2**63 - 1
"""Largest integer magnitude in a graph file (int64, what torch sizes are)."""

MAX_FLOAT = 3.4028234663852886e38
"""Largest magnitude of a ``float`` parameter: torch converts scalars to the input's dtype, float32 by default,
and a larger value fails only when the compiled model runs ("cannot be converted to type float")."""

MAX_TUPLE = 64
"""Elements of a tuple parameter: an input's rank, a reshape's shape, a permutation."""

MAX_CANDIDATES = 64
"""Candidate ops of one `mixed_op` node (each builds a module)."""

MAX_CONNECTIONS = 1_000_000
"""Weighted connections of one `neuron_graph` node."""

MAX_NEURONS = 1_000_000
"""Neurons of one `neuron_graph` node."""
