"""The JupyterLab editor: `GraphWidget` (an anywidget) and editor actions.

Uses the IR and op schemas, never compile internals (tests/test_layers.py checks it). The front end lives
in extension/ and is bundled into graphbuilder/widget/static/widget.js.
"""

from graphbuilder.widget.actions import register_action, unregister_action
from graphbuilder.widget.widget import GraphWidget

__all__ = ["GraphWidget", "register_action", "unregister_action"]
