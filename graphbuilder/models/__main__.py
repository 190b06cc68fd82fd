"""``python -m graphbuilder.models [name ...]``: each catalog network's parameters and MAdds beside its paper's."""

import sys

from graphbuilder.models.catalog import table

print(table(sys.argv[1:] or None))
