"""Build the widget's JavaScript bundle: the build function behind hatch-jupyter-builder.

pyproject.toml names this as `build-function = "build_frontend.build"`; the hook imports it from the
project root. It runs `npm ci` (or `npm install` when extension/ has no package-lock.json), then
`npm run build`, which must write graphbuilder/widget/static/widget.js. It is not part of the wheel.

Run it by hand with `python build_frontend.py [--force]`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def _newest_source_mtime(ext: Path) -> float:
    """Newest mtime of any file under `ext`, ignoring node_modules/."""
    newest = 0.0
    for dirpath, dirnames, filenames in os.walk(ext):
        dirnames[:] = [d for d in dirnames if d != "node_modules"]
        for name in filenames:
            newest = max(newest, (Path(dirpath) / name).stat().st_mtime)
    return newest


def _run(cmd: list[str], cwd: Path) -> None:
    print(f"build_frontend: {' '.join(cmd)}  (in {cwd})", flush=True)
    subprocess.run(cmd, cwd=cwd, check=True)


def build(
    target_name: str = "wheel",
    version: str = "standard",
    path: str = "extension",
    target: str = "graphbuilder/widget/static/widget.js",
    force: bool = False,
) -> None:
    """Build `target` from the npm project at `path` unless it is already newer than every source.

    `target_name` and `version` come from hatch-jupyter-builder ("wheel"/"sdist", "standard"/"editable").
    """
    ext = ROOT / path
    out = ROOT / target
    if not (ext / "package.json").is_file():
        if out.is_file():
            print(f"build_frontend: no {ext / 'package.json'}; using the existing {out}")
            return
        raise FileNotFoundError(
            f"cannot build {out}: {ext / 'package.json'} is missing. The widget front end lives in "
            f"{path}/ and its `npm run build` must write {target}."
        )
    if not force and out.is_file() and out.stat().st_mtime >= _newest_source_mtime(ext):
        print(f"build_frontend: {target} is up to date")
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            "npm not found: building the widget needs Node 20 and npm on PATH "
            "(Debian: `apt-get install nodejs npm`; conda: `nodejs=20`)."
        )
    if (ext / "package-lock.json").is_file():
        try:
            _run([npm, "ci"], ext)
        except subprocess.CalledProcessError:
            # npm omits other platforms' optional packages (rollup's native builds) from locks written with
            # some configs, and `npm ci` then refuses the lock; `npm install` still honours its pinned versions.
            print("build_frontend: `npm ci` refused the lock file; falling back to `npm install`", flush=True)
            _run([npm, "install", "--no-audit", "--no-fund"], ext)
    else:
        _run([npm, "install", "--no-audit", "--no-fund"], ext)
    _run([npm, "run", "build"], ext)
    if not out.is_file():
        raise FileNotFoundError(f"`npm run build` in {path}/ finished but did not write {target}")
    out.touch()  # so an unchanged rebuild still counts as fresh


if __name__ == "__main__":
    build(force="--force" in sys.argv[1:])
