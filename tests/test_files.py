"""Graph files: round trips, atomic saves, the JSON Schema, and a corpus of hostile files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
import torch

import graphbuilder as gb
from graphbuilder.ir import serialize

BAD = Path(__file__).parent / "data" / "bad_graphs"
SCHEMA = json.loads((Path(serialize.__file__).parent / "graph.schema.json").read_text())


def sample() -> gb.Graph:
    block = gb.Graph("res")
    bx = block.input("x", shape=(1, 4, 8, 8))
    block.output(block.add("relu", block.add("add", block.add("conv2d", bx, out_channels=4, kernel_size=1), bx)))
    g = gb.Graph("sample")
    x = g.input("x", shape=(2, 4, 8, 8))
    s = g.add("split", x, split_size_or_sections=2, dim=1, name="halves")
    c = g.add("cat", s[1], s[0], dim=1)
    b = g.add(block, c, name="block 1")
    g["block 1"].meta["position"] = {"x": 10.5, "y": -3}
    g.output(g.add("mean", b, dim=(2, 3)))
    return g


def test_round_trip_same_structure_and_output(tmp_path: Path) -> None:
    g = sample()
    path = tmp_path / "sample.graph.json"
    g.save(path)
    g2 = gb.Graph.load(path)
    assert g2.to_dict() == g.to_dict()
    assert [n.name for n in g2] == [n.name for n in g]
    assert g2["block 1"].meta["position"] == {"x": 10.5, "y": -3}
    torch.manual_seed(0)
    m1 = gb.compile(g)
    m2 = gb.compile(g2)
    m2.load_state_dict(m1.state_dict())
    x = torch.randn(2, 4, 8, 8)
    assert torch.equal(m1(x), m2(x))


def test_file_is_stable_sorted_and_tagged(tmp_path: Path) -> None:
    g = sample()
    path = tmp_path / "a.graph.json"
    g.save(path)
    text = path.read_text()
    data = json.loads(text)
    assert data["format"] == "graphbuilder.graph" and data["version"] == 1
    assert text == json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    g.save(path)
    assert path.read_text() == text  # no volatile fields: saving twice is byte-identical


def test_saved_files_match_the_shipped_schema(tmp_path: Path) -> None:
    jsonschema.validate(sample().to_dict(), SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**sample().to_dict(), "extra": 1}, SCHEMA)


def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "g.graph.json"
    sample().save(path)
    before = path.read_bytes()

    def crash(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    g = sample()
    g["halves"].rename("renamed")
    with pytest.raises(OSError):
        g.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.graph.json"]  # no temp file left behind


def test_saving_unsaveable_meta_fails_before_writing(tmp_path: Path) -> None:
    g = sample()
    g["x"].meta["callback"] = print
    with pytest.raises(gb.GraphError, match="cannot be saved"):
        g.save(tmp_path / "x.graph.json")
    assert not (tmp_path / "x.graph.json").exists()


@pytest.mark.parametrize("name", sorted(p.name for p in BAD.glob("*.json")))
def test_hostile_file_gives_graph_error_and_runs_nothing(name: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(gb.GraphError) as err:
        g = gb.Graph.load(BAD / name)
        gb.compile(g)
    assert str(err.value)
    assert not (tmp_path / "gb_code_ran").exists() and not (tmp_path / "gb_pickle_ran").exists()


@pytest.mark.parametrize("name, path", [
    ("wrong_type_param.json", "nodes[1].params.kernel_size"),
    ("unknown_op.json", "nodes[1].op"),
    ("cycle.json", "nodes"),
    ("dangling_input.json", "nodes[1].inputs[0]"),
    ("duplicate_names.json", "nodes[2].name"),
    ("shape_mismatch.json", "nodes[2]"),
    ("huge_size.json", "nodes[1].params.out_features"),
    ("unknown_field.json", "code"),
])
def test_errors_point_at_json_path(name: str, path: str) -> None:
    with pytest.raises(gb.GraphError) as err:
        gb.Graph.load(BAD / name)
    assert err.value.path == path


def test_unknown_op_suggests_and_cycle_names_nodes() -> None:
    with pytest.raises(gb.GraphError, match="did you mean 'conv2d'"):
        gb.Graph.load(BAD / "unknown_op.json")
    with pytest.raises(gb.GraphError) as err:
        gb.Graph.load(BAD / "cycle.json")
    assert set(err.value.nodes) == {"a", "b", "c"}


def test_huge_params_refused_before_allocation() -> None:
    g = gb.Graph.load(BAD / "huge_params.json")
    with pytest.raises(gb.GraphError, match="would allocate"):
        gb.compile(g)


def test_non_strict_load_keeps_broken_graph_for_editing() -> None:
    g = gb.Graph.load(BAD / "shape_mismatch.json", strict=False)
    assert "s" in g.errors()
    g["c"].params["out_channels"] = 3
    assert g.errors() == {}
