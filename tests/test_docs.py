"""The documentation builds with warnings as errors (broken internal links and malformed docstrings fail), the
op catalogue lists every registered op, and the README's facts about the library stay true."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import graphbuilder as gb

REPO = Path(__file__).resolve().parents[1]


def test_docs_build_with_warnings_as_errors_and_list_every_op(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(REPO / "docs"),
                           str(tmp_path)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    catalogue = (tmp_path / "ops.html").read_text(encoding="utf-8")
    missing = [name for name in gb.ops.names() if f'id="op-{name.replace("_", "-")}"' not in catalogue]
    assert not missing, f"ops missing from the catalogue: {missing}"
    api = (tmp_path / "api.html").read_text(encoding="utf-8")
    for name in ("graphbuilder.Graph", "graphbuilder.compile", "graphbuilder.diff", "graphbuilder.from_module",
                 "graphbuilder.export.to_python", "graphbuilder.search.prune_grow", "graphbuilder.widget.GraphWidget"):
        assert f'id="{name}"' in api, name


def test_readme_facts_match_the_library() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    stated = int(re.search(r"Over (\d+) built-in ops", readme).group(1))
    builtin = [d for d in gb.ops.all_ops() if not d.from_user_code]
    assert len(builtin) > stated, f"README says over {stated} built-in ops; there are {len(builtin)}"
    for link in re.findall(r"\]\(((?:docs/|ARCHITECTURE)[^)#]*)", readme):
        assert (REPO / link).exists(), f"README links to missing {link}"
    for option in ("height", "direction"):
        assert f"{option}=" in readme, f"README does not show GraphWidget's {option}"
