"""Graph -> graph transforms on the IR (grouping into blocks, fix-its for shape errors, and the passes other
features add)."""

from graphbuilder.passes.blocks import group, ungroup
from graphbuilder.passes.fixits import Fix, fixits, root_errors, root_of
from graphbuilder.passes.glore import glore_action, glore_block, glore_editor_action, insert_glore, residual_stages

__all__ = ["Fix", "fixits", "glore_action", "glore_block", "glore_editor_action", "group", "insert_glore",
           "residual_stages", "root_errors", "root_of", "ungroup"]
