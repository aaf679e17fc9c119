"""``tfstream.pipeline.config``: reading YAML/TOML, overrides, and one clear error per bad key."""

import os

import pytest

from tfstream.pipeline import ConfigError, config_from_dict, config_to_dict, load_config
from tfstream.pipeline.config import read_config_file

YAML = """\
name: churn
data:
  train: [data/train]
  label: y
stats: {sample: 100000}
model: {spec: "mlp:32,16", task: binary}
train:
  epochs: 3
  batch_size: 256
  accumulation_steps: 4
  learning_rate: 3.0e-4
  remat: [hidden_0]
export: {base_dir: out/models, keep: 2}
"""

TOML = """\
name = "churn"
[data]
train = ["data/train"]
label = "y"
[stats]
sample = 100000
[model]
spec = "mlp:32,16"
task = "binary"
[train]
epochs = 3
batch_size = 256
accumulation_steps = 4
learning_rate = 3e-4
remat = ["hidden_0"]
[export]
base_dir = "out/models"
keep = 2
"""


def _write(path, text):
    path.write_text(text)
    return str(path)


def test_yaml_and_toml_give_the_same_config(tmp_path):
    from_yaml = load_config(_write(tmp_path / "fit.yaml", YAML))
    from_toml = load_config(_write(tmp_path / "fit.toml", TOML))
    assert from_yaml == from_toml
    assert from_yaml.train.epochs == 3 and from_yaml.train.learning_rate == pytest.approx(3e-4)
    assert from_yaml.stats.sample == 100000 and isinstance(from_yaml.stats.sample, int)
    assert from_yaml.train.remat == ["hidden_0"]
    # relative paths of a file are relative to the file's directory
    assert from_yaml.data.train == [os.path.join(str(tmp_path), "data", "train")]
    assert from_yaml.export.base_dir == os.path.join(str(tmp_path), "out", "models")
    assert from_yaml.resolved_run_dir == os.path.join("runs", "churn")
    assert from_yaml.resolved_checkpoint_dir == os.path.join("runs", "churn", "checkpoints")


def test_overrides_win_and_name_defaults_to_file_stem(tmp_path):
    path = _write(tmp_path / "job.yaml", "data: {train: x.csv}\n")
    config = load_config(
        path, overrides={"train.epochs": 7, "stats.sample": 0.01, "checkpoint_dir": "ck"}
    )
    assert config.name == "job"
    assert config.data.train == [str(tmp_path / "x.csv")]  # one path becomes a list
    assert config.train.epochs == 7
    assert config.stats.sample == 0.01 and isinstance(config.stats.sample, float)
    assert config.resolved_checkpoint_dir == "ck"


def test_round_trip_through_dict():
    config = config_from_dict({"name": "a", "data": {"train": ["d"]}, "train": {"epochs": 2}})
    assert config_from_dict(config_to_dict(config)) == config


@pytest.mark.parametrize(
    "doc, expected",
    [
        ({"train": {"epoch": 3}}, "unknown config key `train.epoch` in `train`. Did you mean "
                                  "`train.epochs`?"),
        ({"trian": {}}, "unknown config key `trian` at the top level. Did you mean `train`?"),
        ({"data": {"lable": "y"}}, "Did you mean `data.label`?"),
        ({"train": {"epochs": "three"}}, "`train.epochs` must be an integer; received 'three'"),
        ({"train": {"epochs": 2.5}}, "`train.epochs` must be an integer; received 2.5"),
        ({"train": {"shuffle": "yes"}}, "`train.shuffle` must be true or false"),
        ({"train": {"learning_rate": "fast"}}, "`train.learning_rate` must be a number"),
        ({"data": {"train": 3}}, "`data.train` must be a list of strings"),
        ({"data": 3}, "`data` must be a mapping of keys; received 3"),
        ({"train": {"precision": "fp8"}}, "`train.precision` must be one of"),
        ({"train": {"epochs": 0}}, "`train.epochs` must be a positive integer; received 0"),
        ({"stats": {"sample": 1.5}}, "`stats.sample` must be a fraction in (0, 1)"),
        ({"data": {"validation_fraction": 0.2, "validation": ["v"]}}, "not both"),
    ],
)  # fmt: skip
def test_bad_values_name_the_key(doc, expected):
    doc = {"name": "x", **doc}
    doc.setdefault("data", {})
    if isinstance(doc["data"], dict):
        doc["data"].setdefault("train", ["d"])
    with pytest.raises(ConfigError) as info:
        load_config(overrides=_flatten(doc))
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def _flatten(doc, prefix=""):
    out = {}
    for key, value in doc.items():
        if (
            isinstance(value, dict)
            and key in ("data", "train", "stats", "model", "export")
            and (value)
        ):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def test_missing_file_and_missing_train(tmp_path):
    with pytest.raises(ConfigError, match="config file .*nope.yaml' does not exist"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="`data.train` is missing"):
        load_config(overrides={"name": "x"})


def test_unparsable_and_wrong_suffix(tmp_path):
    with pytest.raises(ConfigError, match="does not parse"):
        read_config_file(_write(tmp_path / "bad.yaml", "train: [1, 2\n"))
    with pytest.raises(ConfigError, match="does not parse"):
        read_config_file(_write(tmp_path / "bad.toml", "train = \n"))
    with pytest.raises(ConfigError, match="expected a .yaml, .yml or .toml suffix"):
        read_config_file(_write(tmp_path / "fit.json", "{}"))
    with pytest.raises(ConfigError, match="expected a mapping of keys"):
        read_config_file(_write(tmp_path / "list.yaml", "- 1\n- 2\n"))


def test_resolved_config_file_loads_back_from_anywhere(tmp_path, monkeypatch):
    import yaml

    from tfstream.pipeline.config import with_absolute_paths

    monkeypatch.chdir(tmp_path)
    config = load_config(overrides={"name": "x", "data.train": ["data/a.csv"], "train.epochs": 2})
    resolved = with_absolute_paths(config)
    assert resolved.data.train == [str(tmp_path / "data" / "a.csv")]
    assert resolved.run_dir == str(tmp_path / "runs" / "x")
    path = tmp_path / "elsewhere" / "config.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(config_to_dict(resolved), sort_keys=False))
    assert load_config(path) == resolved
