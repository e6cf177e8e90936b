"""params.yaml lists every knob of the typed params, and parses into them."""

from pathlib import Path

import yaml

from training.config.params import Params, load_params

ROOT = Path(__file__).resolve().parents[1]


def _keys(tree: dict, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else key
        keys |= _keys(value, name) if isinstance(value, dict) else {name}
    return keys


def test_params_yaml_lists_every_knob_and_parses():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    defaults = Params().model_dump(by_alias=True, mode="json")
    assert _keys(raw) == _keys(defaults)
    load_params(ROOT / "params.yaml")


def test_missing_params_file_gives_embedded_defaults(tmp_path):
    assert load_params(tmp_path / "absent.yaml") == Params()
