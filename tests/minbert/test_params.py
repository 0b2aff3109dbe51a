from dataclasses import dataclass, field

import pytest

from minbert.params import ParamsError, from_dict, load_section


@dataclass(frozen=True)
class Inner:
    rank: int
    targets: tuple[str, ...]


@dataclass(frozen=True)
class Outer:
    ratio: float
    name: str
    inner: Inner
    flag: bool = False
    weights: dict[str, float] = field(default_factory=dict)


def test_builds_nested_frozen_objects():
    p = from_dict(Outer, {"ratio": 1, "name": "x", "inner": {"rank": 4, "targets": ["q", "v"]},
                          "weights": {"sst": 2}}, "aug")
    assert p.ratio == 1.0 and isinstance(p.ratio, float)
    assert p.inner.targets == ("q", "v")
    assert p.weights["sst"] == 2.0
    with pytest.raises(Exception):
        p.ratio = 3  # frozen


def test_missing_key_is_named():
    with pytest.raises(ParamsError, match="missing key 'aug.inner.rank'"):
        from_dict(Outer, {"ratio": 1, "name": "x", "inner": {"targets": []}}, "aug")


def test_unknown_key_is_named():
    with pytest.raises(ParamsError, match="unknown key 'aug.ratoi'"):
        from_dict(Outer, {"ratoi": 1, "ratio": 1, "name": "x",
                          "inner": {"rank": 1, "targets": []}}, "aug")


def test_wrong_type_is_named():
    with pytest.raises(ParamsError, match="'aug.inner.rank' must be an integer"):
        from_dict(Outer, {"ratio": 1, "name": "x", "inner": {"rank": "4", "targets": []}}, "aug")


def test_load_section_reads_the_project_params(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("balance:\n  max_per_class: 5\n  seed: 1\n")
    from pipeline.balance import BalanceParams

    assert load_section("balance", BalanceParams, path) == BalanceParams(5, 1)
    with pytest.raises(ParamsError, match="missing section 'prepare'"):
        load_section("prepare", BalanceParams, path)


def test_repository_params_file_loads_for_spine_stages():
    from pipeline.balance import BalanceParams
    from pipeline.prepare import PrepareParams

    assert load_section("prepare", PrepareParams).raw_dir == "data/raw"
    assert load_section("balance", BalanceParams).max_per_class >= 1
