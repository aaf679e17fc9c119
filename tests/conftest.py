import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

# Multi-replica tests mirror over two logical CPUs; the split must precede TensorFlow's device
# initialisation, so it happens here, before any test runs. Other tests are unaffected (ops run
# on the first CPU, as before).
from tfstream.testing import split_cpu  # noqa: E402

split_cpu(2)


import uuid  # noqa: E402

import fsspec  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def memory_root():
    """A fresh directory of fsspec's ``memory://`` filesystem (global to the process):
    ``(filesystem, root)``, removed afterwards."""
    root = f"/tfstream-test-{uuid.uuid4().hex}"
    fs = fsspec.filesystem("memory")
    yield fs, root
    if fs.exists(root):
        fs.rm(root, recursive=True)
