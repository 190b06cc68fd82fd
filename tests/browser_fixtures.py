"""A real JupyterLab server and headless Chromium for the widget's browser tests and benchmark.

`running_lab(root)` starts `jupyter lab` from this checkout's .venv on a free localhost port with a known
token, a temporary root directory, settings and workspace folders (news off; saving widget state is the
environment's default, see `make setup`) and kills it (and its kernels) however the block exits.
`launch_chromium(playwright)` drives Debian's /usr/bin/chromium; Playwright never downloads a browser.
`Notebook` wraps the few UI gestures the tests need: open a notebook, run a cell, read an output.

Used by tests/test_widget_browser.py (module-scoped fixtures) and benchmarks/bench_widget.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
ARTIFACTS = REPO / "test-artifacts"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    """A running JupyterLab: base `url`, `token`, server `root` folder and process."""

    url: str
    token: str
    root: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def api(self, path: str, method: str = "GET", body: Any = None) -> Any:
        """Call the server's REST API (JSON in, JSON out)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                     headers={"Authorization": f"token {self.token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            text = r.read()
        return json.loads(text) if text else None

    def notebook_url(self, name: str) -> str:
        """URL that opens notebook `name` in a fresh workspace."""
        return f"{self.url}/lab/tree/{name}?token={self.token}&reset"


def _settings(folder: Path) -> None:
    # No news pop-up. Saving widget state with the notebook is this environment's default
    # (.venv/share/jupyter/lab/settings/overrides.json, from binder/overrides.json via `make setup`).
    files = {
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                           "checkForUpdates": False},
    }
    for rel, value in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


@contextlib.contextmanager
def running_lab(root: Path | None = None, timeout: float = 90.0) -> Iterator[Lab]:
    """Start `jupyter lab` on a free port; yield a `Lab`; always stop it and its kernels."""
    jupyter = VENV_BIN / "jupyter"
    if not jupyter.exists():
        raise RuntimeError(f"{jupyter} not found: run `make setup` first")
    base = Path(tempfile.mkdtemp(prefix="gb-lab-"))
    root = root or base / "root"
    root.mkdir(parents=True, exist_ok=True)
    settings = base / "settings"
    _settings(settings)
    port, token = free_port(), os.urandom(12).hex()
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "JUPYTER_CONFIG_DIR": str(base / "config"), "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
           "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "GB_FAST": "1"}
    log = base / "lab.log"
    cmd = [str(jupyter), "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False",
           f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={base / 'workspaces'}",
           "--ServerApp.disable_check_xsrf=True", "--ServerApp.port_retries=0"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI often run as root
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root,
                                start_new_session=True)
    lab = Lab(f"http://127.0.0.1:{port}", token, root, proc, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                lab.api("/api/status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    tail = log.read_text()[-3000:]
                    raise RuntimeError(f"jupyter lab did not start in {timeout} s:\n{tail}") from None
                time.sleep(0.3)
        yield lab
    finally:
        with contextlib.suppress(Exception):
            for kernel in lab.api("/api/kernels"):
                lab.api(f"/api/kernels/{kernel['id']}", method="DELETE")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        shutil.rmtree(base, ignore_errors=True)


def launch_chromium(playwright: Any) -> Any:
    """Headless Debian Chromium through Playwright (no browser download)."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def write_notebook(path: Path, cells: list[str]) -> None:
    """A notebook of code `cells` (no outputs) using the default Python kernel."""
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [],
                     "source": src} for i, src in enumerate(cells)],
          "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                                      "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb, indent=1))


class Notebook:
    """The UI gestures the browser tests need on one open notebook `page`."""

    def __init__(self, page: Any) -> None:
        self.page = page

    def open(self, lab: Lab, name: str, timeout: float = 90_000) -> Notebook:
        """Open notebook `name` and wait until its kernel is idle."""
        self.page.goto(lab.notebook_url(name))
        self.page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=timeout)
        self.accept_kernel_dialog()
        self.wait_idle(timeout)
        return self

    def accept_kernel_dialog(self) -> None:
        """Accept JupyterLab's "Select Kernel" dialog if it shows (it sometimes does while the kernel
        starts, even for a notebook that names its kernel); it would block every click."""
        dialog = self.page.locator(".jp-Dialog", has_text="Select Kernel")
        if dialog.count():
            dialog.locator(".jp-mod-accept").click()
            dialog.wait_for(state="detached")

    def wait_idle(self, timeout: float = 60_000) -> None:
        """Wait until the kernel reports idle."""
        self.page.wait_for_selector(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']",
                                    timeout=timeout)

    def cell(self, index: int) -> Any:
        """Locator of cell `index`."""
        return self.page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").nth(index)

    def run(self, index: int, timeout: float = 120_000) -> str:
        """Run cell `index` (click its editor, Shift+Enter), wait for it to finish; returns its output text."""
        self.start(index)
        prompt = self.cell(index).locator(".jp-InputArea-prompt")
        self.page.wait_for_function("el => /\\[\\d+\\]/.test(el.textContent)", arg=prompt.element_handle(),
                                    timeout=timeout)
        self.wait_idle(timeout)
        return self.output(index)

    def start(self, index: int) -> None:
        """Start running cell `index` (click its editor, Shift+Enter) and return once it is queued or running."""
        cell = self.cell(index)
        prompt = cell.locator(".jp-InputArea-prompt")
        before = prompt.inner_text()
        for _ in range(20):  # the first keypress can land before the editor or the kernel is ready
            self.accept_kernel_dialog()
            cell.locator(".jp-InputArea-editor").click(timeout=5_000)
            self.page.keyboard.press("Shift+Enter")
            try:
                self.page.wait_for_function(
                    "([el, before]) => el.textContent.includes('*')"
                    " || (el.textContent !== before && /\\d/.test(el.textContent))",
                    arg=[prompt.element_handle(), before], timeout=3_000)
                break
            except Exception:
                continue

    def output(self, index: int) -> str:
        """Text of cell `index`'s outputs."""
        area = self.cell(index).locator(".jp-OutputArea")
        return area.inner_text() if area.count() else ""

    def save(self) -> None:
        """Save the notebook (Ctrl+S) and wait until it is written."""
        self.page.locator(".jp-NotebookPanel").first.click(position={"x": 5, "y": 5})
        self.page.keyboard.press("Control+s")
        self.page.wait_for_timeout(500)
        self.page.wait_for_function("() => !document.querySelector('.jp-NotebookPanel .jp-mod-dirty')",
                                    timeout=20_000)
