"""Fixtures of the source tests: one real PostgreSQL server per test process (pytest-xdist
workers each start their own, on their own free port and temporary directory)."""

import pytest

from tfstream.testing.postgres import find_pg_bin


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
    """The URL (with its password) of a PostgreSQL server that lives for the test session."""
    from tfstream.testing.postgres import postgres_server

    with postgres_server() as url:
        yield url
