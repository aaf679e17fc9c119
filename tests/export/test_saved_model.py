"""``ts.export_saved_model``: round trip in a fresh process, signatures, versions, atomicity."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfstream as ts
from tests.export.helpers import (
    head,
    in_memory,
    raw_model,
    request_columns,
    tiny_frame,
    tiny_stats,
)
from tfstream.export import WARMUP_FILE, list_versions, read_warmup

VENV_BIN = os.path.dirname(sys.executable)


@pytest.fixture(scope="module")
def frame():
    return tiny_frame()


@pytest.fixture(scope="module")
def prep(frame):
    return tiny_stats(frame).preprocessor()


@pytest.fixture(scope="module")
def bf16_classifier(prep):
    """A binary classifier built under the mixed_bfloat16 policy (bfloat16 output)."""
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = head(int(prep.output.shape[-1]), activation="sigmoid", seed=3)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.outputs[0].dtype == "bfloat16"
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory, prep, bf16_classifier):
    base = tmp_path_factory.mktemp("models") / "clf"
    return ts.export_saved_model(bf16_classifier, base, preprocessor=prep)


_ROUND_TRIP = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf

    data = np.load(sys.argv[2])
    loaded = tf.saved_model.load(sys.argv[1])
    raw = loaded.signatures["serving_default"]
    parse = loaded.signatures["serving_tf_example"]
    names = sorted({k.split(":")[1] for k in data.files if k.startswith("in:")})
    checked = 0
    for b in sorted({k.split(":")[2] for k in data.files if k.startswith("in:")}):
        columns = {n: data[f"in:{n}:{b}"] for n in names}
        expected = data[f"expected:{b}"]
        rows = len(expected)
        examples = []
        for i in range(rows):
            feature = {}
            for n, v in columns.items():
                if v.dtype.kind == "U":
                    if v[i]:  # a missing string is left out of the Example
                        feature[n] = tf.train.Feature(
                            bytes_list=tf.train.BytesList(value=[v[i].encode()]))
                elif not np.isnan(v[i]):  # so is a missing number
                    feature[n] = tf.train.Feature(
                        float_list=tf.train.FloatList(value=[float(v[i])]))
            examples.append(tf.train.Example(
                features=tf.train.Features(feature=feature)).SerializeToString())
        outputs = [raw(**{n: tf.constant(v) for n, v in columns.items()}),
                   parse(examples=tf.constant(examples))]
        for out in outputs:
            assert sorted(out) == ["class_ids", "predictions", "probabilities"], sorted(out)
            assert out["predictions"].dtype == tf.float32
            assert out["probabilities"].dtype == tf.float32
            assert out["class_ids"].dtype == tf.int64
            p = out["predictions"].numpy()
            assert p.shape == (rows, 1), p.shape
            np.testing.assert_allclose(p, expected, atol=1e-6, rtol=0)
            np.testing.assert_allclose(
                out["probabilities"].numpy(), np.hstack([1 - expected, expected]),
                atol=1e-6, rtol=0)
            np.testing.assert_array_equal(out["class_ids"].numpy(), expected > 0.5)
            checked += rows
    assert "tfstream" not in sys.modules, "the SavedModel must load without tfstream"
    print(f"OK {checked}")
    """
)


@pytest.mark.slow  # a fresh Python process imports TensorFlow (~10 s)
def test_round_trip_in_a_fresh_process_equals_the_in_memory_model(
    tmp_path, exported, prep, bf16_classifier
):
    arrays = {}
    for size, seed in ((5, 1), (17, 2)):  # two batch sizes
        columns = request_columns(size, seed)
        expected = in_memory(bf16_classifier, columns, prep)
        assert np.isnan(columns["f0"]).any() and "" in columns["s0"].tolist()
        assert 0 < (expected > 0.5).sum() < size or size == 5  # not a constant model
        for name, values in columns.items():
            arrays[f"in:{name}:{size}"] = values.astype(str) if values.dtype == object else values
        arrays[f"expected:{size}"] = expected
    np.savez(tmp_path / "data.npz", **arrays)
    script = tmp_path / "round_trip.py"
    script.write_text(_ROUND_TRIP)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, str(script), exported, str(tmp_path / "data.npz")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,  # not the repository: tfstream is not importable by accident
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == f"OK {2 * (5 + 17)}"


def _signature_defs(text: str) -> dict[str, dict[str, dict[str, str]]]:
    """``saved_model_cli show --all`` output -> {signature: {"inputs"/"outputs": {name: dtype}}}."""
    result, current, side = {}, None, None
    for line in text.splitlines():
        if m := re.match(r"signature_def\['(.+)'\]:", line.strip()):
            current = result.setdefault(m.group(1), {"inputs": {}, "outputs": {}})
        elif "SignatureDef contains the following input" in line:
            side = "inputs"
        elif "SignatureDef contains the following output" in line:
            side = "outputs"
        elif m := re.match(r"(inputs|outputs)\['(.+)'\] tensor_info:", line.strip()):
            name = m.group(2)
        elif (m := re.match(r"dtype: (\w+)", line.strip())) and current is not None:
            current[side][name] = m.group(1)
    return result


@pytest.mark.slow  # a fresh Python process imports TensorFlow (~10 s)
def test_saved_model_cli_lists_both_signatures(exported):
    proc = subprocess.run(
        [os.path.join(VENV_BIN, "saved_model_cli"), "show", "--all", "--dir", exported],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    defs = _signature_defs(proc.stdout)
    outputs = {"class_ids": "DT_INT64", "predictions": "DT_FLOAT", "probabilities": "DT_FLOAT"}
    assert defs["serving_default"] == {
        "inputs": {"f0": "DT_FLOAT", "f1": "DT_FLOAT", "f2": "DT_FLOAT",
                   "s0": "DT_STRING", "s1": "DT_STRING"},
        "outputs": outputs,
    }  # fmt: skip
    assert defs["serving_tf_example"] == {"inputs": {"examples": "DT_STRING"}, "outputs": outputs}


def test_warmup_requests_run_against_their_signatures(exported, prep, bf16_classifier):
    logs = read_warmup(os.path.join(exported, WARMUP_FILE))
    assert [log.predict_log.request.model_spec.signature_name for log in logs] == [
        "serving_default",
        "serving_tf_example",
    ]
    loaded = tf.saved_model.load(exported)
    answers = []
    for log in logs:
        request = log.predict_log.request
        signature = loaded.signatures[request.model_spec.signature_name]
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        answers.append(signature(**{k: tf.constant(v) for k, v in inputs.items()}))
    raw = {k: tf.make_ndarray(v) for k, v in logs[0].predict_log.request.inputs.items()}
    assert sorted(raw) == ["f0", "f1", "f2", "s0", "s1"]
    assert all(len(v) == 1 for v in raw.values())  # the default: one synthetic row
    expected = in_memory(bf16_classifier, {k: v.astype(object) if v.dtype.kind in "SO" else v
                                           for k, v in raw.items()}, prep)  # fmt: skip
    for answer in answers:
        np.testing.assert_allclose(answer["predictions"].numpy(), expected, atol=1e-6, rtol=0)


def test_warmup_rows_from_a_source(tmp_path, frame, prep):
    model = raw_model(prep, seed=1)
    source = ts.from_pandas(frame, label="label")
    path = ts.export_saved_model(
        model, tmp_path, features=source, warmup=source, options=ts.ExportOptions(warmup_rows=4)
    )
    signature = tf.saved_model.load(path).signatures["serving_default"]
    assert sorted(signature.structured_input_signature[1]) == ["f0", "f1", "f2", "s0", "s1"]
    logs = read_warmup(os.path.join(path, WARMUP_FILE))
    f1 = tf.make_ndarray(logs[0].predict_log.request.inputs["f1"])
    np.testing.assert_array_equal(f1, frame["f1"].to_numpy(np.float32)[:4])
    loaded = tf.saved_model.load(path)
    request = logs[1].predict_log.request  # the same rows as tf.train.Example
    out = loaded.signatures["serving_tf_example"](
        examples=tf.constant(tf.make_ndarray(request.inputs["examples"]))
    )
    columns = {n: frame[n].to_numpy()[:4] for n in ("f0", "f1", "f2", "s0", "s1")}
    columns = {n: v.astype(np.float32) if v.dtype.kind == "f" else v for n, v in columns.items()}
    np.testing.assert_allclose(out["predictions"].numpy(), in_memory(model, columns), atol=1e-6)


def test_versions_next_explicit_refused_and_keep(tmp_path, prep):
    model = raw_model(prep, seed=2)  # a regression model taking the raw dict itself
    base = tmp_path / "m"
    assert ts.export_saved_model(model, base) == os.path.join(str(base), "1")
    assert ts.export_saved_model(model, base, version=5).endswith(os.sep + "5")
    assert ts.export_saved_model(model, base).endswith(os.sep + "6")  # highest + 1
    with pytest.raises(FileExistsError, match="Version 5 exists already"):
        ts.export_saved_model(model, base, version=5)
    assert list_versions(base) == [1, 5, 6]
    stale, fresh = base / ".tmp-8-999999999", base / ".tmp-9-999999999"  # no such process
    for leftover in (stale, fresh):
        (leftover / "variables").mkdir(parents=True)
    os.utime(stale, (1e9, 1e9))  # a killed export's leftover, long ago
    assert ts.export_saved_model(model, base, keep=2).endswith(os.sep + "7")
    assert not stale.exists() and fresh.exists()  # a recent one may be another host's export
    shutil.rmtree(fresh)
    assert sorted(os.listdir(base)) == ["6", "7"]  # no temporary or deleted leftovers
    assert ts.export_saved_model(model, base, version=3, keep=1).endswith(os.sep + "3")
    assert sorted(os.listdir(base)) == ["3"]  # the new version always stays
    loaded = tf.saved_model.load(os.path.join(str(base), "3"))
    assert list(loaded.signatures["serving_default"].structured_outputs) == ["predictions"]
    for bad, error in (({"version": 0}, ValueError), ({"keep": "2"}, TypeError)):
        with pytest.raises(error, match="must be a positive int"):
            ts.export_saved_model(model, base, **bad)


def test_multiclass_and_explicit_features(tmp_path, frame, prep):
    model = raw_model(prep, units=3, activation="softmax", seed=4)
    features = {"f0": "float32", "f1": "float32", "f2": "float64", "s0": "string", "s1": "string"}
    path = ts.export_saved_model(model, tmp_path, features=features)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    specs = serve.structured_input_signature[1]
    assert {n: s.dtype for n, s in specs.items()}["f2"] == tf.float64  # as declared
    columns = request_columns(6, seed=5)
    out = serve(**{n: tf.constant(v.astype(np.float64) if n == "f2" else v)
                   for n, v in columns.items()})  # fmt: skip
    expected = in_memory(model, columns)
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-6, rtol=0)
    np.testing.assert_array_equal(out["class_ids"].numpy()[:, 0], expected.argmax(-1))


def test_bad_arguments(tmp_path, prep):
    plain = head(int(prep.output.shape[-1]))
    with pytest.raises(TypeError, match="taking a dict of named raw features"):
        ts.export_saved_model(plain, tmp_path)
    with pytest.raises(ValueError, match=r"lacks inputs the model needs: \['s1'\]"):
        ts.export_saved_model(plain, tmp_path, preprocessor=prep,
                              features={"f0": "float32", "f1": "float32", "f2": "float32",
                                        "s0": "string"})  # fmt: skip
    with pytest.raises(ValueError, match="`task` must be one of"):
        ts.export_saved_model(plain, tmp_path, preprocessor=prep, task="ranking")
    with pytest.raises(ValueError, match="local directory"):
        ts.export_saved_model(plain, "gs://bucket/models", preprocessor=prep)
    assert os.listdir(tmp_path) == []


def test_a_polling_reader_never_sees_an_incomplete_version(tmp_path, prep):
    model = raw_model(prep, seed=6)
    base = str(tmp_path / "polled")
    os.makedirs(base)
    stop, seen, incomplete = threading.Event(), set(), []

    def poll():
        while True:
            stopping = stop.is_set()  # a last full pass starts after the exports are done
            for name in os.listdir(base):
                if not name.isdigit():
                    continue
                version = os.path.join(base, name)
                variables = os.path.join(version, "variables")
                files = os.listdir(variables) if os.path.isdir(variables) else []
                complete = (
                    os.path.isfile(os.path.join(version, "saved_model.pb"))
                    and "variables.index" in files
                    and any(f.startswith("variables.data-") for f in files)
                )
                (seen.add if complete else incomplete.append)(name)
            if stopping:
                return

    reader = threading.Thread(target=poll, daemon=True)
    reader.start()
    try:
        for _ in range(3):
            ts.export_saved_model(model, base, options=ts.ExportOptions(fsync=False))
    finally:
        stop.set()
        reader.join()
    assert incomplete == []
    assert seen == {"1", "2", "3"}  # the reader did see every version once complete


def test_a_model_with_batch_by_one_inputs_takes_batch_vectors(tmp_path):
    inputs = {n: keras.Input(shape=(1,), dtype="float32", name=n) for n in ("a", "b")}
    keras.utils.set_random_seed(9)
    x = keras.layers.Concatenate()([inputs["a"], inputs["b"]])
    model = keras.Model(inputs, keras.layers.Dense(2)(x))  # linear: regression, 2 outputs
    serve = tf.saved_model.load(ts.export_saved_model(model, tmp_path)).signatures[
        "serving_default"
    ]
    assert {n: s.shape.as_list() for n, s in serve.structured_input_signature[1].items()} == {
        "a": [None],
        "b": [None],
    }
    a, b = np.arange(4, dtype=np.float32), np.linspace(-1, 1, 4, dtype=np.float32)
    expected = np.asarray(model({"a": a[:, None], "b": b[:, None]}))
    out = serve(a=tf.constant(a), b=tf.constant(b))
    assert sorted(out) == ["predictions"]
    np.testing.assert_allclose(out["predictions"].numpy(), expected, atol=1e-6, rtol=0)
