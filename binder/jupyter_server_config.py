"""Jupyter server settings for GraphBuilder's environments. `make setup` copies this file to
.venv/etc/jupyter/, Binder's postBuild to <sys.prefix>/etc/jupyter/; Jupyter reads it from there.

Kernel websockets send with TCP_NODELAY. A widget message makes the kernel send three messages: "busy", the
reply and "idle". jupyter_server leaves Nagle's algorithm on, so Linux holds the reply until the browser
acknowledges "busy", and the browser delays that acknowledgement by about 40 ms: most of an editor edit's
round trip (benchmarks/bench_widget.py). Turning Nagle off only sends small messages sooner.
"""

import asyncio

from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection


class NoDelayKernelConnection(ZMQChannelsWebsocketConnection):
    """The default kernel websocket connection, with Nagle's algorithm off on the browser's socket."""

    def connect(self) -> asyncio.Future[None] | None:
        self.websocket_handler.set_nodelay(True)
        return super().connect()


c = get_config()  # noqa: F821 (Jupyter's config loader provides it)
c.ServerApp.kernel_websocket_connection_class = NoDelayKernelConnection
