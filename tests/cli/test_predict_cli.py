"""``tfstream predict``: TF Serving REST bodies from a file or stdin, answers and error bodies."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

import tfstream as ts
from tests.export.helpers import in_memory, raw_model, request_columns, tiny_frame, tiny_stats
from tfstream.cli import main
from tfstream.cli.predict import predict_request


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    prep = tiny_stats(tiny_frame()).preprocessor()
    model = raw_model(prep, seed=31)
    base = tmp_path_factory.mktemp("predict") / "reg"
    return model, ts.export_saved_model(model, base), str(base)


def _instances(columns):
    return [{n: (v[i] if isinstance(v[i], str) else float(v[i])) for n, v in columns.items()}
            for i in range(len(columns["f0"]))]  # fmt: skip


def test_predict_a_request_file_and_stdin(capsys, tmp_path, monkeypatch, exported):
    model, path, base = exported
    columns = request_columns(4, seed=32)
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"instances": _instances(columns)}))  # NaN literals included
    assert main(["predict", path, "--json", str(request)]) == 0
    response = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(response["predictions"], in_memory(model, columns), atol=1e-6)
    body = json.dumps({"inputs": {n: v.tolist() for n, v in columns.items()}})
    monkeypatch.setattr("sys.stdin", io.StringIO(body))
    assert main(["predict", base, "--json", "-"]) == 0  # a base dir: its highest version
    assert json.loads(capsys.readouterr().out) == {"outputs": response["predictions"]}
    assert predict_request(path, {"instances": _instances(columns)}) == response


@pytest.mark.parametrize(
    "body, match",
    [
        ('{"instances": [{"f0": 1.0,}', "JSON Parse error"),
        ('{"instances": [{"nope": 1.0}]}', "does not have named input: nope"),
        ('{"inputs": {"f0": ["a"], "f1": [1], "f2": [1], "s0": ["x"], "s1": ["y"]}}',
         'JSON Value: "a" Type: String is not of expected type: float'),
        ('{"instances": [{"f0": 1, "f1": 1, "f2": 1, "s0": 2, "s1": "y"}]}',
         "Type: Number is not of expected type: string"),
    ],
)  # fmt: skip
def test_bad_requests_print_an_error_body_and_exit_2(capsys, tmp_path, exported, body, match):
    _, path, _ = exported
    request = tmp_path / "request.json"
    request.write_text(body)
    assert main(["predict", path, "--json", str(request)]) == 2
    captured = capsys.readouterr()
    error = json.loads(captured.out)
    assert list(error) == ["error"] and match in error["error"], error
    assert "Traceback" not in captured.out + captured.err


def test_missing_savedmodel_or_request(capsys, tmp_path, exported):
    _, path, _ = exported
    request = tmp_path / "request.json"
    request.write_text("{}")
    assert main(["predict", str(tmp_path / "nothing"), "--json", str(request)]) == 2
    assert "Could not find a SavedModel" in json.loads(capsys.readouterr().out)["error"]
    assert main(["predict", path, "--json", str(tmp_path / "absent.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tfstream predict: error: cannot read the request") and "absent" in err
