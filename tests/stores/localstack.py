"""A real LocalStack S3 server, run in host mode as a throwaway process.

LocalStack is a large Python application with its own pinned dependency set,
so it lives in a venv of its own (Python 3.13) that
`.ci/install-stores-localstack.sh` creates; `BULKCOPY_LOCALSTACK_PYTHON` points
at that venv's interpreter (default `~/.cache/bulkcopy/localstack-venv/bin/python`).

Each server keeps all of its state (filesystem root, temp files, certificate,
log) in the directory it is given, listens on loopback only and persists
nothing, so several can run side by side (pytest-xdist).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.servers import (
    ACCESS_KEY,
    FEATURES,
    REGION,
    SECRET_KEY,
    S3Server,
    free_port,
)

ENV_PYTHON = "BULKCOPY_LOCALSTACK_PYTHON"
DEFAULT_PYTHON = Path("~/.cache/bulkcopy/localstack-venv/bin/python")
INSTALL_SCRIPT = ".ci/install-stores-localstack.sh"
# the certificate the install script leaves at the venv's root
CERT_NAME = "server.test.pem"
# the prebuilt service catalog index (saves ~4 s of every start), at the venv's root
STATIC_DIR = "localstack-static"
START_TIMEOUT = 120.0
STOP_GRACE = 2.0


@dataclass
class LocalStackServer(S3Server):
    """LocalStack's graceful shutdown takes 1-3 s, and waits for clients'
    keep-alive connections to close; it persists nothing anyway. So: SIGTERM,
    a short grace, then SIGKILL for its whole process group."""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(STOP_GRACE)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def localstack_python() -> str | None:
    """The interpreter of the LocalStack venv, or None if it is not there."""
    raw = os.environ.get(ENV_PYTHON, "").strip()
    path = Path(raw).expanduser() if raw else DEFAULT_PYTHON.expanduser()
    if path.is_file() and os.access(path, os.X_OK):
        return str(path)
    return None


def localstack_available() -> str | None:
    """None if LocalStack can be started, else a message saying how to get it."""
    python = localstack_python()
    if python is None:
        where = os.environ.get(ENV_PYTHON) or str(DEFAULT_PYTHON)
        return (
            f"LocalStack venv not found at {where}: run `bash {INSTALL_SCRIPT}`"
            f" (or set {ENV_PYTHON} to a Python with localstack-core)"
        )
    venv = Path(python).parent.parent
    if not (venv / CERT_NAME).is_file() and shutil.which("openssl") is None:
        return f"no {venv / CERT_NAME} and no openssl: run `bash {INSTALL_SCRIPT}`"
    return None


def _certificate(venv: Path, target: Path) -> None:
    """LocalStack's own certificate generation fails with the pyOpenSSL it
    pulls in, so it gets a ready-made one (key and certificate in one PEM)."""
    made = venv / CERT_NAME
    if made.is_file():
        shutil.copyfile(made, target)
        return
    key, crt = target.with_suffix(".key.tmp"), target.with_suffix(".crt.tmp")
    args = ["openssl", "req", "-x509", "-nodes", "-days", "3650", "-newkey", "ec"]
    args += ["-pkeyopt", "ec_paramgen_curve:prime256v1", "-subj", "/CN=localhost"]
    subprocess.run(
        [*args, "-keyout", str(key), "-out", str(crt)],
        check=True,
        capture_output=True,
    )
    target.write_bytes(key.read_bytes() + crt.read_bytes())
    key.unlink()
    crt.unlink()


def _link_static_libs(venv: Path, fs_root: Path) -> None:
    """Point LocalStack's static libs dir at the catalog index the install
    script built (it is only read); without it each start builds its own."""
    static = fs_root / "usr" / "lib" / "localstack"
    static.mkdir(parents=True, exist_ok=True)
    for prebuilt in (venv / STATIC_DIR).glob("service-catalog-*.dill"):
        (static / prebuilt.name).symlink_to(prebuilt)


def _log_tail(log_path: Path, lines: int = 40) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _s3_state(port: int) -> str | None:
    """The s3 entry of LocalStack's health endpoint, or None if it won't answer."""
    url = f"http://127.0.0.1:{port}/_localstack/health"
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            body = json.loads(resp.read())
    except (OSError, ValueError):
        return None
    state = body.get("services", {}).get("s3")
    return state if isinstance(state, str) else None


def start_localstack(work_dir: Path) -> S3Server:
    """Start LocalStack (S3 only) on a free loopback port; state in work_dir."""
    missing = localstack_available()
    if missing is not None:
        raise RuntimeError(missing)
    python = localstack_python()
    assert python is not None
    work_dir = work_dir.resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    for sub in ("fs", "tmp", "home"):
        (work_dir / sub).mkdir(exist_ok=True)
    venv = Path(python).parent.parent
    cert = work_dir / CERT_NAME
    _certificate(venv, cert)
    _link_static_libs(venv, work_dir / "fs")

    port = free_port()
    env = {
        # a clean environment: nothing of the caller's LOCALSTACK_*, DEBUG, ...
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work_dir / "home"),
        "LANG": "C.UTF-8",
        "TMPDIR": str(work_dir / "tmp"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        # host mode even inside a container: all directories under FILESYSTEM_ROOT
        # (in "docker" mode it would use the shared /var/lib/localstack)
        "OVERRIDE_IN_DOCKER": "0",
        "FILESYSTEM_ROOT": str(work_dir / "fs"),
        "PERSISTENCE": "0",
        "SERVICES": "s3",
        "EAGER_SERVICE_LOADING": "1",
        # hypercorn binds exactly GATEWAY_LISTEN (loopback only)
        "GATEWAY_SERVER": "hypercorn",
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "CUSTOM_SSL_CERT_PATH": str(cert),
        # no network: no certificate download, no DNS server, no analytics
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "DNS_ADDRESS": "0",
        "DISABLE_EVENTS": "1",
        "LS_LOG": "info",
    }
    log_path = work_dir / "localstack.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [python, "-m", "localstack.runtime.main"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=work_dir,
            start_new_session=True,  # its own process group, for stop()
        )
    server = LocalStackServer(
        "localstack",
        f"http://127.0.0.1:{port}",
        proc,
        supports_versioning=True,
        addressing_style="path",
        # an SSE-C multipart upload comes out without its checksum
        features=FEATURES - {"sse-c-multipart-checksum"},
    )
    deadline = time.monotonic() + START_TIMEOUT
    state: str | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"localstack exited with {proc.returncode}; log {log_path}:\n"
                + _log_tail(log_path)
            )
        state = _s3_state(port)
        if state in ("available", "running"):
            client = server.client()
            try:
                client.list_buckets()
            except Exception:  # not serving S3 yet
                pass
            else:
                return server
            finally:
                client.close()  # an open keep-alive connection delays its shutdown
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(
        f"localstack S3 not ready on port {port} after {START_TIMEOUT:.0f}s"
        f" (s3 state {state!r}); log {log_path}:\n" + _log_tail(log_path)
    )
