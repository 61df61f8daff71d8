"""A throwaway PostgreSQL server for the tests: Debian's package (``make postgres``), started in a
temporary folder and stopped at the end.

:func:`postgres_server` runs ``initdb`` into a fresh folder (a password, scram-sha-256 on TCP
127.0.0.1, no fsync), ``pg_ctl start`` on a free port with the unix socket in that folder, and
yields a :class:`Server`; the server is stopped and the folder removed afterwards. PostgreSQL
refuses to run as root: as root the commands run as the ``postgres`` user that Debian's package
creates (``runuser``), which then owns the folder.

Without the server's binaries the tests are skipped with the reason, except under CI (``CI`` set),
where they fail: CI installs the package (``.ci/run`` calls ``make postgres``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

#: The test server's user and password (a password on purpose: messages must never show it).
USER, PASSWORD = "lab", "s3cret-Pa55word"


@dataclass(frozen=True)
class Server:
    """A running test server: ``url`` connects as the owner (with the password)."""

    host: str
    port: int
    folder: Path

    def url(self, user: str = USER, password: str | None = PASSWORD, db: str = "postgres") -> str:
        """The server's URL; `password` None: without one (libpq then takes ``PGPASSWORD``)."""
        login = user if password is None else f"{user}:{password}"
        return f"postgres://{login}@{self.host}:{self.port}/{db}"

    def connect(self):
        import psycopg

        return psycopg.connect(
            host=self.host, port=self.port, user=USER, password=PASSWORD, dbname="postgres",
            autocommit=True,
        )  # fmt: skip


def bindir() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: Debian's newest /usr/lib/postgresql/N/bin, else
    the PATH's."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
    )
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _require_bindir() -> Path:
    where = bindir()
    if where is None:
        why = "no PostgreSQL server (initdb) found; `make postgres` installs Debian's package"
        if os.environ.get("CI"):
            pytest.fail(why + " (CI runs it before make test)")
        pytest.skip(why)
    return where


@contextlib.contextmanager
def postgres_server() -> Iterator[Server]:
    """Start a throwaway server; stop it and remove its folder at the end."""
    where = _require_bindir()
    folder = Path(tempfile.mkdtemp(prefix="retention-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb and postgres refuse root: Debian's postgres user runs them
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(folder)
            pytest.fail("running as root and there is no 'postgres' user to run the server")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    pwfile = folder / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if as_user:
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    data, log = folder / "data", folder / "log"
    port = _free_port()

    def run(*cmd: str) -> None:
        done = subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=120)
        if done.returncode:
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}\n{tail}")

    try:
        run(str(where / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={pwfile}",
            "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync")  # fmt: skip
        pwfile.unlink()
        opts = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(str(where / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(log), "-w", "start")
        try:
            yield Server("127.0.0.1", port, folder)
        finally:
            run(str(where / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def load_text_table(server: Server, table: str, frame: pd.DataFrame) -> str:
    """`frame` as a table of text columns (the client's own columns, nothing parsed: the mapping
    and the validation do that), loaded with COPY; returns the ``--data`` URL."""
    cols = ", ".join(f'"{c}" text' for c in frame.columns)
    with server.connect() as con, con.cursor() as cur:
        cur.execute(f'DROP TABLE IF EXISTS "{table}"')
        cur.execute(f'CREATE TABLE "{table}" ({cols})')
        names = ", ".join(f'"{c}"' for c in frame.columns)
        with cur.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
            for row in frame.astype(object).where(frame.notna(), None).itertuples(index=False):
                copy.write_row(row)
    return f"{server.url()}?table={table}"


#: The bundled orders' columns as a warehouse types them (amounts as numeric: a Decimal type).
ORDER_TYPES = {
    "order_id": "bigint", "customer_id": "bigint", "order_date": "timestamp",
    "amount": "numeric(12, 2)", "discount": "numeric(12, 2)", "items": "integer",
    "channel": "text", "returned": "boolean", "campaign_id": "text",
}  # fmt: skip


def load_typed_table(
    server: Server, table: str, frame: pd.DataFrame, types: dict[str, str] = ORDER_TYPES
) -> str:
    """`frame` (text cells, as a CSV is read) as a typed table: column -> SQL type in `types`
    (text when not named); a blank cell of a typed column becomes NULL. Loaded with COPY, which
    parses each cell as PostgreSQL does; returns the ``--data`` URL."""
    typed = {c: types.get(c, "text") for c in frame.columns}
    cols = ", ".join(f'"{c}" {t}' for c, t in typed.items())
    frame = frame.astype(object).where(frame.notna(), None)
    for c, t in typed.items():
        if t != "text":
            frame[c] = frame[c].where(frame[c].astype(str).str.strip() != "", None)
    with server.connect() as con, con.cursor() as cur:
        cur.execute(f'DROP TABLE IF EXISTS "{table}"')
        cur.execute(f'CREATE TABLE "{table}" ({cols})')
        names = ", ".join(f'"{c}"' for c in frame.columns)
        with cur.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
            for row in frame.itertuples(index=False):
                copy.write_row(row)
    return f"{server.url()}?table={table}"
