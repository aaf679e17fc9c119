"""A throwaway PostgreSQL server for tests and benchmarks.

``postgres_server()`` runs ``initdb`` and ``pg_ctl`` in a temporary directory and serves on a
free loopback port (TCP on 127.0.0.1, and a unix socket inside the directory), with a random
password checked by SCRAM on TCP connections, so a wrong password really fails. PostgreSQL
refuses to run as root: when the process is root, the server runs as the ``postgres`` system
user (the one Debian's ``postgresql`` package creates) and the directory is handed to it.

Example:

>>> from tfstream.testing.postgres import postgres_server
>>> with postgres_server() as url:          # doctest: +SKIP
...     import psycopg
...     with psycopg.connect(url) as conn:
...         conn.execute("select 1").fetchone()
(1,)
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator

__all__ = ["find_pg_bin", "postgres_server"]

_USER = "tfstream"
_SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",
    "max_connections": "40",
}


def find_pg_bin() -> str | None:
    """The directory holding ``pg_ctl`` (newest Debian version first, then ``PATH``), or None."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(p.split("/")[-3]) if p.split("/")[-3].isdigit() else 0,
        reverse=True,
    )
    found = shutil.which("pg_ctl")
    if found:
        candidates.append(found)
    return os.path.dirname(candidates[0]) if candidates else None


@contextlib.contextmanager
def postgres_server(*, database: str = "postgres") -> Iterator[str]:
    """Starts a PostgreSQL server for the duration of the ``with`` block.

    Yields:
        A URL ``postgresql://tfstream:<password>@127.0.0.1:<port>/<database>``.

    Raises:
        RuntimeError: no ``pg_ctl`` binary, no ``postgres`` user while running as root, or the
            server would not start (the message holds the end of its log).
    """
    bin_dir = find_pg_bin()
    if bin_dir is None:
        raise RuntimeError(
            "No PostgreSQL server binaries (pg_ctl) found in /usr/lib/postgresql/*/bin or on "
            "PATH. Install them, e.g. `apt-get install -y postgresql`."
        )
    as_root = os.geteuid() == 0
    owner = _postgres_ids() if as_root else None
    root = tempfile.mkdtemp(prefix="tfstream-pg-")
    try:
        password = secrets.token_hex(16)
        data = os.path.join(root, "data")
        pwfile = os.path.join(root, "pw")
        with open(pwfile, "w") as f:
            f.write(password + "\n")
        if owner is not None:
            os.chown(root, *owner)
            os.chown(pwfile, *owner)
        _run(
            as_root,
            [
                os.path.join(bin_dir, "initdb"),
                "-D", data, "-U", _USER, f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256", "--auth-local=trust",
                "-E", "UTF8", "--locale=C", "--no-sync",
            ],
        )  # fmt: skip
        os.remove(pwfile)
        port = _start(as_root, bin_dir, root, data)
        try:
            yield f"postgresql://{_USER}:{password}@127.0.0.1:{port}/{database}"
        finally:
            _run(
                as_root,
                [os.path.join(bin_dir, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"],
                check=False,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _start(as_root: bool, bin_dir: str, root: str, data: str, attempts: int = 5) -> int:
    """Starts the server on a free port, retrying when another process takes the port first
    (several pytest-xdist workers start servers at the same time)."""
    log = os.path.join(root, "server.log")
    for _ in range(attempts):
        port = _free_port()
        settings = {**_SERVER_SETTINGS, "port": str(port), "unix_socket_directories": root}
        options = " ".join(f"-c {k}={v}" for k, v in settings.items())
        result = _run(
            as_root,
            [os.path.join(bin_dir, "pg_ctl"), "-D", data, "-l", log, "-o", options, "-w",
             "-t", "60", "start"],
            check=False,
        )  # fmt: skip
        if result.returncode == 0:
            return port
    tail = ""
    with contextlib.suppress(OSError), open(log) as f:
        tail = f.read()[-2000:]
    raise RuntimeError(f"PostgreSQL did not start in {root}:\n{result.stderr}\n{tail}")


def _run(as_root: bool, argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
    if as_root:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    result = subprocess.run(argv, capture_output=True, text=True, cwd="/")
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def _postgres_ids() -> tuple[int, int]:
    import pwd

    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError(
            "PostgreSQL refuses to run as root, and there is no `postgres` user to run it as. "
            "Install Debian's postgresql package (it creates one) or run as another user."
        ) from None
    return entry.pw_uid, entry.pw_gid


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
