"""What the benchmarks share: a PostgreSQL schema of their own, a temporary
app configuration (development certificates, no broker), gunicorn started
on a free port, HTTP/1.1 written by hand for the load generators, and CPU
time read from /proc.

Benchmarks print figures as ratios to floors measured in the same run, so
a busy machine slows both sides alike; each prints the machine's load too.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from wallet.apple.certs import write_dev_chain

# wsgi.py and the tests' support package live in the checkout; processes start there.
ROOT = Path(__file__).resolve().parent.parent
PASS_TYPE = "pass.bench.walletclubs"
TEAM = "BENCHTEAM1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its reaped children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / CLK_TCK


def tree_cpu(pid: int) -> float:
    total = cpu_seconds(pid)
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            total += tree_cpu(int(child))
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def backend_cpu(url: str, application_name: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving connections
    named ``application_name`` (the server runs on this machine)."""
    engine = create_engine(url.split("?")[0], isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
                                {"name": application_name}).scalars().all()
    finally:
        engine.dispose()
    found = {}
    for pid in pids:
        try:
            found[pid] = cpu_seconds(pid)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return found


def application_name(url: str) -> str:
    return url.rsplit("application_name=", 1)[1].split("&")[0]


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def machine() -> str:
    """The cores and the load average while the bench ran: others share them."""
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return f"{os.cpu_count()} cores, load average {load}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """The URL of a schema of our own, dropped afterwards: the bench never
    touches other data."""
    schema = f"bench_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in url else "?"
        # Named, so the bench can find its own server processes and read their CPU.
        yield f"{url}{sep}options=-csearch_path%3D{schema}&application_name={schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def app_environment(root: Path, database_url: str, **extra: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The configuration of an app under bench (for create_app) and the same
    as environment variables (for gunicorn and workers)."""
    certs = root / "certs"
    if not certs.exists():
        write_dev_chain(certs, pass_type_identifier=PASS_TYPE, team_identifier=TEAM)
    settings = {
        "DATABASE_URL": database_url, "INSTANCE_PATH": str(root / "instance"), "CERTS_DIR": str(root / "no-certs"),
        "DEV_CERTS_DIR": str(certs), "PASS_TYPE_IDENTIFIER": PASS_TYPE, "TEAM_IDENTIFIER": TEAM,
        "SECRET_KEY": "bench", "PUBLIC_BASE_URL": "https://bench.test", "API_RATE_LIMIT": "100000000 per minute",
        "APPLE_AUTH_FAILURE_LIMIT": "100000000 per minute", **extra,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env.update(settings, EMBEDDED_WORKER="0")
    env.pop("BROKER_URL", None)
    config: dict[str, Any] = {**settings, "EMBEDDED_WORKER": False, "BROKER_URL": None}
    return config, env


def start_gunicorn(env: dict[str, str], workers: int, app: str = "wsgi:app",
                   extra_path: str | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """gunicorn (sync workers) on a free port; returns the process and its base URL."""
    port = free_port()
    if extra_path:
        env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [extra_path, env.get("PYTHONPATH")]))}
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "-w", str(workers), "-b", f"127.0.0.1:{port}",
         "--log-level", "warning", "--backlog", "2048", app],
        cwd=ROOT, env=env,
    )
    return process, f"http://127.0.0.1:{port}"


def address_of(base: str) -> tuple[str, int]:
    """Host and port of a base URL such as start_gunicorn's."""
    host, port = base.removeprefix("http://").split(":")
    return host, int(port)


def http_request(method: str, address: tuple[str, int], path: str, headers: dict[str, str],
                 body: bytes = b"") -> bytes:
    """The bytes of an HTTP/1.1 request to ``address`` as the benches' clients send it."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {address[0]}:{address[1]}",
             *(f"{name}: {value}" for name, value in headers.items())]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def answer_of(buffer: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    """Status, headers (names in lower case) and body of an HTTP/1.1 answer."""
    head, _, body = buffer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def exchange(address: tuple[str, int], request: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    """One request on a connection of its own, its answer read to the
    connection's close (gunicorn's sync workers close each connection after
    its answer). A load generator shares the cores it measures: http.client
    (its header parsing goes through the email package) spent 0.26 to
    0.30 ms of CPU a request to the bare app, this 0.16 to 0.17 ms."""
    received = bytearray()
    with socket.create_connection(address, timeout=60) as sock:
        sock.sendall(request)
        while chunk := sock.recv(65536):
            received += chunk
    status, headers, body = answer_of(bytes(received))
    if b"content-length" in headers and int(headers[b"content-length"]) != len(body):
        raise RuntimeError(f"an answer of {len(body)} bytes where Content-Length said {headers[b'content-length']!r}")
    return status, headers, body


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
