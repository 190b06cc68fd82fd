"""Graph -> graph transforms on the IR (grouping into blocks, and the passes other features add)."""

from graphbuilder.passes.blocks import group, ungroup
from graphbuilder.passes.glore import glore_action, glore_block, glore_editor_action, insert_glore, residual_stages

__all__ = ["glore_action", "glore_block", "glore_editor_action", "group", "insert_glore", "residual_stages",
           "ungroup"]
