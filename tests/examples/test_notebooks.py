"""The notebooks of ``examples/notebooks``: committed without outputs, Colab-ready (the first
code cell installs tfstream in Colab), and executed end to end with nbclient on small data (the
``TFSTREAM_NOTEBOOK_*`` environment variables the notebooks read)."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "examples" / "notebooks").glob("*.ipynb"))
SMALL = {
    "TFSTREAM_NOTEBOOK_ROWS": "4000",
    "TFSTREAM_NOTEBOOK_EPOCHS": "2",
    "TFSTREAM_NOTEBOOK_BATCH": "128",
    "TFSTREAM_NOTEBOOK_BLOCKS": "2",
    "TFSTREAM_NOTEBOOK_WIDTH": "64",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "CUDA_VISIBLE_DEVICES": "",
}


def _read(path):
    import nbformat

    return nbformat.read(path, as_version=4)


def test_there_are_notebooks():
    assert {p.name for p in NOTEBOOKS} >= {"quickstart.ipynb", "large_model.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    import nbformat

    nb = _read(path)
    nbformat.validate(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}, cell {index} has outputs: strip them"
            assert cell.execution_count is None, f"{path.name}, cell {index}: execution count"
    assert "widgets" not in nb.metadata, f"{path.name}: widget state in the metadata"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_installs_tfstream_in_colab(path):
    first = next(c for c in _read(path).cells if c.cell_type == "code")
    assert '"google.colab" in sys.modules' in first.source
    assert "%pip install" in first.source


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    for key, value in SMALL.items():
        monkeypatch.setenv(key, value)  # the kernel inherits this process's environment
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebooks' tempfile.mkdtemp() data
    nb = _read(path)
    # kernel "python3" (ipykernel): jupyter_client runs its "python" as sys.executable, so
    # the kernel runs in this virtualenv. A failing cell raises CellExecutionError.
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    text = "".join(
        output.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert "validation accuracy" in text, text[-3000:]
