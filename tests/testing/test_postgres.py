"""``postgres_server``: a real server that checks passwords, runs beside another one, and leaves
nothing behind."""

import os

import pytest

from tfstream.testing.postgres import find_pg_bin, postgres_server

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        find_pg_bin() is None,
        reason="no PostgreSQL server binaries (pg_ctl); `apt-get install -y postgresql`",
    ),
]


def test_two_servers_side_by_side_check_passwords_and_clean_up():
    psycopg = pytest.importorskip("psycopg")
    roots = []
    with postgres_server() as first, postgres_server() as second:
        assert first.rsplit(":", 1)[1] != second.rsplit(":", 1)[1]  # ports differ
        for url in (first, second):
            with psycopg.connect(url) as conn:
                assert conn.execute("select 40 + 2").fetchone() == (42,)
                data = conn.execute("show data_directory").fetchone()[0]
                roots.append(os.path.dirname(data))
                assert os.path.isdir(roots[-1])
            password = url.split(":")[2].split("@")[0]
            with pytest.raises(psycopg.OperationalError, match="password authentication"):
                psycopg.connect(url.replace(password, "wrong"), connect_timeout=5)
    assert len(set(roots)) == 2 and not any(os.path.exists(r) for r in roots)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(first, connect_timeout=2)  # stopped
