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

from tfstream.testing.postgres import find_pg_bin  # noqa: E402


@pytest.fixture
def memory_root():
    """A fresh directory of fsspec's ``memory://`` filesystem (global to the process):
    ``(filesystem, root)``, removed afterwards."""
    root = f"/tfstream-test-{uuid.uuid4().hex}"
    fs = fsspec.filesystem("memory")
    yield fs, root
    if fs.exists(root):
        fs.rm(root, recursive=True)


def pytest_collection_modifyitems(config, items):
    if find_pg_bin() is not None:
        return
    skip = pytest.mark.skip(
        reason="no PostgreSQL server binaries (pg_ctl) in /usr/lib/postgresql/*/bin or on PATH; "
        "install them with `apt-get install -y postgresql`"
    )
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def postgres_url():
    """The URL (with its password) of a PostgreSQL server that lives for the test session
    (started at the first test that asks for it)."""
    from tfstream.testing.postgres import postgres_server

    with postgres_server() as url:
        yield url
