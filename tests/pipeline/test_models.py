"""``tfstream.pipeline.models``: specs, built-in models and ``module:function``."""

import numpy as np
import pytest

import tfstream as ts
from tfstream.pipeline import ConfigError, parse_spec
from tfstream.pipeline.models import ModelSpec, build_model
from tfstream.testing import make_frame


@pytest.fixture(scope="module")
def stats():
    frame = make_frame(300, features=4, strings=2, seed=0)
    return ts.compute_stats(ts.from_pandas(frame, label="label"), progress=False)


def test_parse_specs():
    assert parse_spec("mlp:256,128") == ModelSpec("mlp", (256, 128))
    assert parse_spec(" wide_deep:64 ") == ModelSpec("wide_deep", (64,))
    assert parse_spec("linear") == ModelSpec("linear")
    assert parse_spec("my.models:build") == ModelSpec("function", target="my.models:build")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("mlp:256,abc", "positive integers separated by commas"),
        ("mlp:", "positive integers"),
        ("mlp:0", "positive integers"),
        ("linear:3", "'linear' takes no widths"),
        ("resnet", "must be 'linear', 'mlp:W1,W2,...'"),
        ("", "must be a string"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_spec(spec)


def _raw(frame):
    return {c: np.asarray(frame[c]) for c in frame.columns if c != "label"}


@pytest.mark.parametrize("spec", ["linear", "mlp:8,4", "wide_deep:8"])
def test_built_in_models_take_raw_features(stats, spec):
    model = build_model(spec, stats=stats, task="binary")
    frame = make_frame(5, features=4, strings=2, seed=3)
    out = np.asarray(model(_raw(frame)))
    assert out.shape == (5, 1)
    assert np.all((out > 0) & (out < 1))  # a probability
    assert model.get_layer("tfstream_preprocessor") is not None
    if spec.startswith("wide_deep"):
        assert {"wide", "deep", "wide_plus_deep"} <= {layer.name for layer in model.layers}
    regression = build_model(spec, stats=stats, task="regression")
    assert regression.get_layer("prediction").get_config()["activation"] == "linear"


def test_module_function_gets_the_arguments_it_accepts(stats, tmp_path):
    module = tmp_path / "my_model.py"
    module.write_text(
        "import keras\n"
        "CALLS = []\n"
        "def build(width, task):\n"
        "    CALLS.append((width, task))\n"
        "    return keras.Sequential([keras.Input((width,)), keras.layers.Dense(1)])\n"
        "def not_a_model(**kwargs):\n"
        "    return 3\n"
        "def fails(width):\n"
        "    raise RuntimeError('no GPU here')\n"
    )
    model = build_model(f"{module}:build", stats=stats, task="regression")
    width = int(stats.preprocessor(max_tokens=None).output.shape[-1])
    assert model.layers[-1].dtype_policy.name == "float32"
    out = np.asarray(model(_raw(make_frame(3, features=4, strings=2, seed=1))))
    assert out.shape == (3, 1)
    assert width == 4 + 4 + 1 + 6 + 1  # 4 numbers, two one-hot columns with an OOV bucket each
    with pytest.raises(ConfigError, match="expected the function to return a keras.Model"):
        build_model(f"{module}:not_a_model", stats=stats, task="binary")
    with pytest.raises(ConfigError, match="the function raised RuntimeError: no GPU here"):
        build_model(f"{module}:fails", stats=stats, task="binary")
    with pytest.raises(ConfigError, match="has no function 'missing'"):
        build_model(f"{module}:missing", stats=stats, task="binary")


def test_module_import_errors_are_clear(stats):
    with pytest.raises(ConfigError, match="cannot import 'no_such_module_xyz' "
                                          r"\(ModuleNotFoundError"):  # fmt: skip
        build_model("no_such_module_xyz:build", stats=stats, task="binary")
    with pytest.raises(ConfigError, match="the file 'nowhere/m.py' does not exist"):
        build_model("nowhere/m.py:build", stats=stats, task="binary")
    with pytest.raises(ConfigError, match="module 'json' has no function 'build'"):
        build_model("json:build", stats=stats, task="binary")
