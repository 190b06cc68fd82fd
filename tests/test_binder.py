"""binder/ stays in step: requirements.txt with pyproject.toml's runtime dependencies, and the Jupyter settings
that `make setup` and Binder both install."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def project_requirements() -> dict[str, Requirement]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    reqs = [Requirement(line) for line in data["project"]["dependencies"]]
    return {canonicalize_name(r.name): r for r in reqs}


def binder_pins(text: str) -> dict[str, Requirement]:
    """Requirements in a requirements.txt text; comments and pip options (--extra-index-url) skipped."""
    pins = {}
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        req = Requirement(line)
        pins[canonicalize_name(req.name)] = req
    return pins


def mismatches(project: dict[str, Requirement], pins: dict[str, Requirement]) -> list[str]:
    problems = []
    for name, req in project.items():
        pin = pins.get(name)
        if pin is None:
            problems.append(f"{req.name}: in pyproject.toml but missing from binder/requirements.txt")
            continue
        exact = [s.version for s in pin.specifier if s.operator == "=="]
        if len(exact) != 1:
            problems.append(f"{pin}: binder pins must be exact (name==version)")
        elif not req.specifier.contains(Version(exact[0]), prereleases=True):
            problems.append(f"{pin}: outside pyproject.toml's range {req}")
    return problems


def test_binder_requirements_match_pyproject():
    project = project_requirements()
    pins = binder_pins((ROOT / "binder" / "requirements.txt").read_text(encoding="utf-8"))
    assert project, "pyproject.toml lists no dependencies"
    problems = mismatches(project, pins)
    assert not problems, "update binder/requirements.txt:\n" + "\n".join(problems)


def test_checker_catches_drift():
    project = {
        canonicalize_name(r.name): r for r in map(Requirement, ["torch>=2.13,<2.14", "numpy", "Foo_Bar"])
    }
    pins = binder_pins("--extra-index-url https://x\n# c\ntorch==2.14.0+cpu\nnumpy>=1\n")
    problems = mismatches(project, pins)
    assert any("torch==2.14.0+cpu: outside" in p for p in problems)
    assert any("numpy>=1: binder pins must be exact" in p for p in problems)
    assert any("Foo_Bar: in pyproject.toml but missing" in p for p in problems)
    assert mismatches(project, binder_pins("torch==2.13.0+cpu\nnumpy==2.0\nfoo-bar==1.0\n")) == []


def test_jupyter_settings_load_as_jupyter_reads_them():
    """binder/'s Jupyter files (installed by `make setup` and Binder's postBuild) load with Jupyter's own
    loaders: widget state saved with notebooks; kernel websockets through the TCP_NODELAY connection."""
    from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
    from traitlets.config.loader import PyFileConfigLoader

    overrides = json.loads((ROOT / "binder" / "overrides.json").read_text(encoding="utf-8"))
    assert overrides["@jupyter-widgets/jupyterlab-manager:plugin"]["saveState"] is True
    config = PyFileConfigLoader("jupyter_server_config.py", path=str(ROOT / "binder")).load_config()
    connection = config.ServerApp.kernel_websocket_connection_class
    assert issubclass(connection, ZMQChannelsWebsocketConnection)
    assert connection.connect is not ZMQChannelsWebsocketConnection.connect
    postbuild = (ROOT / "binder" / "postBuild").read_text(encoding="utf-8")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for name in ("overrides.json", "jupyter_server_config.py"):
        assert f"binder/{name}" in postbuild and f"binder/{name}" in makefile
