"""TF Serving REST bodies answered by ``tfstream.export.serving.predict``, and their errors."""

from __future__ import annotations

import base64
import json
import os

import numpy as np
import pytest
import tensorflow as tf

import tfstream as ts
from tests.export.helpers import in_memory, raw_model, request_columns, tiny_frame, tiny_stats
from tfstream.export import ServingError, load, predict
from tfstream.export.serving import resolve_version_dir
from tfstream.export.warmup import warmup_columns

NAMES = ("f0", "f1", "f2", "s0", "s1")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    prep = tiny_stats(tiny_frame()).preprocessor()
    base = tmp_path_factory.mktemp("serving")
    regression = raw_model(prep, seed=7)
    classifier = raw_model(prep, activation="sigmoid", seed=8)
    return {
        "regression": (regression, load(ts.export_saved_model(regression, base / "reg"))),
        "classifier": (classifier, load(ts.export_saved_model(classifier, base / "clf"))),
        "base": str(base / "reg"),
    }


def _rows(columns):
    return [
        {n: (v[i] if isinstance(v[i], str) else float(v[i])) for n, v in columns.items()}
        for i in range(len(columns["f0"]))
    ]


def test_row_and_columnar_formats_with_one_output(models):
    model, loaded = models["regression"]
    columns = request_columns(4, seed=11)
    expected = in_memory(model, columns)  # [4, 1]
    rows = predict(loaded, {"instances": _rows(columns)})
    assert list(rows) == ["predictions"] and len(rows["predictions"]) == 4
    np.testing.assert_allclose(np.array(rows["predictions"]), expected, atol=1e-6, rtol=0)
    value = rows["predictions"][0][0]
    assert repr(value) == str(np.float32(value))  # float32 printed at its shortest
    body = {"inputs": {n: [r[n] for r in _rows(columns)] for n in NAMES}}
    columnar = predict(loaded, json.dumps(body))  # JSON text works too, NaN literals included
    assert "NaN" in json.dumps(body)
    assert columnar == {"outputs": rows["predictions"]}


def test_row_and_columnar_formats_with_several_outputs(models):
    model, loaded = models["classifier"]
    columns = request_columns(3, seed=12)
    p = in_memory(model, columns)
    rows = predict(loaded, {"signature_name": "serving_default", "instances": _rows(columns)})
    assert [list(r) for r in rows["predictions"]] == [
        ["predictions", "probabilities", "class_ids"]  # a fixed order
    ] * 3
    for i, row in enumerate(rows["predictions"]):
        np.testing.assert_allclose(row["predictions"], p[i], atol=1e-6)
        np.testing.assert_allclose(row["probabilities"], [1 - p[i, 0], p[i, 0]], atol=1e-6)
        assert row["class_ids"] == [int(p[i, 0] > 0.5)]
    inputs = {n: v.tolist() for n, v in columns.items()}  # object arrays give str
    columnar = predict(loaded, {"inputs": inputs})
    outputs = columnar["outputs"]
    assert sorted(outputs) == ["class_ids", "predictions", "probabilities"]
    assert outputs["predictions"] == [r["predictions"] for r in rows["predictions"]]
    assert np.array(outputs["probabilities"]).shape == (3, 2)


def test_tf_example_signature_with_b64_strings(models):
    model, loaded = models["regression"]
    columns = request_columns(3, seed=13)
    examples = []
    for i in range(3):
        feature = {
            n: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v[i].encode()]))
            if v.dtype == object
            else tf.train.Feature(float_list=tf.train.FloatList(value=[v[i]]))
            for n, v in columns.items()
            if v.dtype == object or not np.isnan(v[i])
        }
        serialized = tf.train.Example(features=tf.train.Features(feature=feature))
        examples.append({"b64": base64.b64encode(serialized.SerializeToString()).decode()})
    answer = predict(loaded, {"signature_name": "serving_tf_example", "instances": examples})
    np.testing.assert_allclose(answer["predictions"], in_memory(model, columns), atol=1e-6)


def test_a_base_directory_serves_its_highest_version(models, tmp_path):
    assert resolve_version_dir(models["base"]) == os.path.join(models["base"], "1")
    with pytest.raises(ServingError, match="Could not find a SavedModel"):
        resolve_version_dir(tmp_path)


ROW = {"f0": 1.0, "f1": 2.0, "f2": 3.0, "s0": "red", "s1": "dog"}


@pytest.mark.parametrize(
    "body, message",
    [
        ('{"instances": [', "JSON Parse error"),
        ("[1, 2]", "is not of expected type: object"),
        ({"instance": [ROW]}, "Missing 'inputs' or 'instances' key"),
        ({"instances": [ROW], "inputs": {}}, "both 'instances' and 'inputs'"),
        ({"instances": [ROW], "signature_name": "nope"}, 'signature name: "nope" not found'),
        ({"instances": [{**ROW, "f9": 1.0}]}, "does not have named input: f9"),
        ({"instances": [ROW, {k: v for k, v in ROW.items() if k != "s1"}]}, "missing 's1'"),
        ({"instances": [{**ROW, "f0": "1.5"}]}, 'Value: "1.5" Type: String is not of expected'),
        ({"instances": [{**ROW, "s0": 3}]}, "Type: Number is not of expected type: string"),
        ({"instances": [{**ROW, "f1": None}]}, "Type: Null is not of expected type: float"),
        ({"instances": [{**ROW, "f1": True}]}, "Type: Bool is not of expected type: float"),
        ({"instances": [{**ROW, "f2": [1.0, 2.0]}]}, "expects [None]"),
        ({"instances": []}, "non-empty list"),
        ({"inputs": {**{k: [v] for k, v in ROW.items()}, "f0": [1.0, 2.0]}}, "batch sizes"),
        ({"inputs": {"f0": [1.0]}}, "Missing named input"),
        ({"instances": [{"b64": "!!"}], "signature_name": "serving_tf_example"}, "base64"),
        ({"instances": [1.5], "signature_name": "serving_tf_example"}, "Type: Number"),
        (
            {"instances": ["not an example"], "signature_name": "serving_tf_example"},
            "Could not parse example input",
        ),
    ],
)
def test_bad_requests_get_tf_serving_error_bodies(models, body, message):
    _, loaded = models["regression"]
    with pytest.raises(ServingError) as caught:
        predict(loaded, body)
    error = caught.value.body()
    assert list(error) == ["error"] and message in error["error"], error
    json.dumps(error)  # a valid JSON body


def test_serialized_example_that_does_not_parse_is_an_error_body(models):
    _, loaded = models["regression"]
    with pytest.raises(ServingError, match="(?i)could not parse|parse"):
        predict(loaded, {"signature_name": "serving_tf_example", "instances": [{"b64": "AAAA"}]})


def test_warmup_columns_from_rows_and_frames():
    features = {"a": "float32", "b": "string", "c": "int64"}
    rows = [{"a": 1.5, "b": "x", "c": 2}, {"a": float("nan"), "b": "", "c": 3}]
    columns = warmup_columns(features, rows)
    assert columns["a"].dtype == np.float32 and columns["c"].tolist() == [2, 3]
    assert columns["b"].tolist() == ["x", ""]
    assert warmup_columns(features, {"a": [1.0], "b": ["y"], "c": [1]})["b"].tolist() == ["y"]
    with pytest.raises(ValueError, match=r"lack features the signature takes: \['c'\]"):
        warmup_columns(features, [{"a": 1.0, "b": "x"}])
    synthetic = warmup_columns(features)
    assert synthetic["a"].tolist() == [0.0] and synthetic["b"].tolist() == [""]
