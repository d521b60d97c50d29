"""A real Ceph RADOS Gateway (radosgw) S3 server on a throwaway cluster.

Each server is a cluster of its own: one monitor, one ``memstore`` OSD (objects
in memory), no manager, no authentication between the daemons (cephx off), pools
of size 1, and radosgw's beast frontend on a free loopback port. Everything
(config, monitor store, OSD directory, admin sockets, pid files, logs) lives in
the directory it is given; nothing reads or writes /etc/ceph or /var/lib/ceph,
so several clusters can run side by side (pytest-xdist).

The daemons come from Debian's packages (`.ci/install-stores-rgw.sh`):
ceph-mon, ceph-osd, radosgw and ceph-common (ceph, monmaptool, radosgw-admin).
A start takes 1-2 s; the daemons take about 230 MB of memory (RSS) plus the
objects stored.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from tests.servers import ACCESS_KEY, FEATURES, SECRET_KEY, S3Server, free_port

INSTALL_SCRIPT = ".ci/install-stores-rgw.sh"
PACKAGES = "ceph-mon ceph-osd radosgw ceph-common"
BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "monmaptool", "ceph")
START_TIMEOUT = 60.0
# a unix socket path must fit in sun_path (108 bytes)
MAX_SOCKET_PATH = 100
MiB = 1024 * 1024
# Ceph 16.2 (Debian bookworm): no flexible checksums at all (ChecksumAlgorithm
# and x-amz-checksum-* ignored, none returned), and no copy of an SSE-C source
# (CopyObject 501 NotImplemented, UploadPartCopy 400 InvalidArgument); SSE-C
# PutObject/GetObject and copies of plain sources to SSE-C do work
RGW_FEATURES = FEATURES - {"checksums", "sse-c", "sse-c-multipart-checksum"}
# the caller's Ceph settings stay out of the throwaway cluster
CEPH_ENV_DROP = ("CEPH_ARGS", "CEPH_CONF", "CEPH_KEYRING")

# `$name` and `$id` are expanded by Ceph itself (mon.a, osd.0, client.rgw, ...).
CONF_TEMPLATE = """\
[global]
fsid = {fsid}
mon_host = v2:127.0.0.1:{mon_port}
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
# no cephx, and plain crc framing on every connection: with "secure" as an
# option radosgw waits 5 minutes for a secure monitor session, then dies
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_mon_client_mode = crc
ms_client_mode = crc
ms_mon_cluster_mode = crc
ms_mon_service_mode = crc
ms_cluster_mode = crc
ms_service_mode = crc
# one OSD: pools of size 1, few placement groups, no manager to scale them
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_pool_default_pg_autoscale_mode = off
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
mon_max_pg_per_osd = 1000
osd_crush_chooseleaf_type = 0
# a fresh cluster settles in about a second instead of ten: quick map updates,
# and a client op that was sent before the OSD was up is resent after 0.5 s
# instead of the 5 s objecter tick (radosgw-admin's first write, now and then)
paxos_propose_interval = 0.02
paxos_min_wait = 0.01
objecter_tick_interval = 0.5
mon_data_avail_crit = 0
mon_data_avail_warn = 0
# all state in this directory
run_dir = {root}/run
admin_socket = {admin_socket}
pid_file = {root}/run/$name.pid
log_file = {root}/log/$name.log
crash_dir = {root}/crash
keyring = {root}/keyring
log_to_stderr = false
err_to_stderr = true

[mon]
mon_data = {root}/data/mon/$id

[osd]
osd_data = {root}/data/osd/$id
osd_objectstore = memstore
memstore_device_bytes = {store_bytes}
osd_max_object_size = {store_bytes}

[client]
rgw_data = {root}/data/rgw
rgw_frontends = beast endpoint=127.0.0.1:{rgw_port}
# SSE-C over plain http
rgw_crypt_require_ssl = false
rgw_enable_usage_log = false
rgw_enable_ops_log = false
rgw_dynamic_resharding = false
rgw_thread_pool_size = 64
"""


def rgw_available() -> str | None:
    """None if a RGW cluster can be started here, else how to get the daemons."""
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if missing:
        return (
            f"Ceph RGW not installed ({', '.join(missing)} missing):"
            f" run `bash {INSTALL_SCRIPT}` (apt-get install {PACKAGES})"
        )
    return None


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the test process goes away, so a
    crashed or killed pytest leaves no cluster behind. (Linux ties this to the
    thread that started the daemon: start_rgw belongs in a long-lived thread,
    as pytest's main thread is.)"""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class RgwServer(S3Server):
    """A radosgw with its monitor and OSD; stop() ends all three and removes
    the cluster's data and sockets (config and logs stay in ``root``)."""

    daemons: list[subprocess.Popen[bytes]] = field(default_factory=list)
    root: Path | None = None

    def stop(self) -> None:
        # throwaway data: no graceful shutdown (a memstore OSD would first
        # write every object it holds to its directory)
        for proc in reversed(self.daemons):
            if proc.poll() is None:
                proc.kill()
        for proc in self.daemons:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        if self.root is not None:
            for sub in ("data", "run"):
                shutil.rmtree(self.root / sub, ignore_errors=True)


class _Cluster:
    """The steps of a start, and what a failed start reports."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.conf = root / "ceph.conf"
        self.daemons: list[subprocess.Popen[bytes]] = []
        self.names: dict[int, str] = {}  # pid: daemon name
        self.env = {k: v for k, v in os.environ.items() if k not in CEPH_ENV_DROP}

    def run(self, *args: str, timeout: float = 30.0, conf: bool = True) -> str:
        """A one-shot Ceph tool (against this cluster's config); its stdout."""
        cmd = [args[0], "-c", str(self.conf), *args[1:]] if conf else list(args)
        try:
            done = subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                cwd=self.root,
                env=self.env,
                preexec_fn=_die_with_parent,
            )
        except subprocess.TimeoutExpired:
            self.fail(f"`{' '.join(args)}` did not finish in {timeout:.0f}s")
        if done.returncode != 0:
            self.fail(
                f"`{' '.join(args)}` exited with {done.returncode}:\n"
                + done.stderr.decode(errors="replace")[-3000:]
            )
        return done.stdout.decode(errors="replace")

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """A daemon in the foreground, as our child; output in log/NAME.out."""
        with (self.root / "log" / f"{name}.out").open("wb") as out:
            proc = subprocess.Popen(
                [args[0], "-c", str(self.conf), "-f", *args[1:]],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                env=self.env,
                preexec_fn=_die_with_parent,
            )
        self.daemons.append(proc)
        self.names[proc.pid] = name
        return proc

    def check_alive(self) -> None:
        for proc in self.daemons:
            if proc.poll() is not None:
                self.fail(f"{self.names[proc.pid]} exited with {proc.returncode}")

    def kill(self) -> None:
        for proc in reversed(self.daemons):
            if proc.poll() is None:
                proc.kill()
            proc.wait()

    def fail(self, why: str) -> NoReturn:
        self.kill()
        raise RuntimeError(f"Ceph RGW cluster in {self.root}: {why}\n{self.logs()}")

    def logs(self, lines: int = 25) -> str:
        parts = []
        for path in sorted((self.root / "log").glob("*")):
            try:
                text = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            if text:
                parts.append(f"--- {path} (last {len(text)} lines)\n" + "\n".join(text))
        return "\n".join(parts) or "(no logs)"


def _wait_for_http(port: int, cluster: _Cluster, deadline: float) -> None:
    while time.monotonic() < deadline:
        cluster.check_alive()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/")
            if conn.getresponse().status < 500:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.05)
    cluster.fail(f"radosgw not answering on port {port}")


def start_rgw(work_dir: Path, store_mib: int = 4096) -> S3Server:
    """Start a one-OSD Ceph cluster and radosgw on free loopback ports, all of
    its state in work_dir, with the user ACCESS_KEY/SECRET_KEY."""
    missing = rgw_available()
    if missing is not None:
        raise RuntimeError(missing)
    deadline = time.monotonic() + START_TIMEOUT
    root = work_dir.resolve()
    for sub in ("run", "log", "crash", "data/mon/a", "data/osd/0", "data/rgw"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    admin_socket = f"{root}/run/$name.asok"
    if len(f"{root}/run/client.admin.asok") > MAX_SOCKET_PATH:
        admin_socket = ""  # too long for a unix socket: no admin sockets
    fsid = str(uuid.uuid4())
    mon_port, rgw_port = free_port(), free_port()
    cluster = _Cluster(root)
    cluster.conf.write_text(
        CONF_TEMPLATE.format(
            fsid=fsid,
            mon_port=mon_port,
            rgw_port=rgw_port,
            root=root,
            admin_socket=admin_socket,
            store_bytes=store_mib * MiB,
        )
    )
    # the monitor
    monmap = str(root / "data" / "monmap")
    cluster.run("monmaptool", "--create", "--fsid", fsid, monmap, conf=False)
    addr = f"[v2:127.0.0.1:{mon_port}]"
    cluster.run("monmaptool", "--addv", "a", addr, monmap, conf=False)
    cluster.run("ceph-mon", "--mkfs", "-i", "a", "--monmap", monmap)
    cluster.spawn("mon.a", "ceph-mon", "-i", "a")
    # the OSD, registered with the monitor (the first request to it: this also
    # waits for the monitor to come up)
    osd_uuid = str(uuid.uuid4())
    osd_id = cluster.run("ceph", "--connect-timeout", "20", "osd", "new", osd_uuid)
    if osd_id.strip() != "0":
        cluster.fail(f"`ceph osd new` gave OSD id {osd_id.strip()!r}, not 0")
    cluster.run("ceph-osd", "-i", "0", "--mkfs", "--osd-uuid", osd_uuid)
    cluster.spawn("osd.0", "ceph-osd", "-i", "0")
    # the S3 user; this creates the realm, zone and pools, so it runs before
    # radosgw (both creating them at once can race); it waits for the OSD
    # to come up
    cluster.check_alive()
    cluster.run(
        "radosgw-admin",
        "user",
        "create",
        "--uid=test",
        "--display-name=test",
        f"--access-key={ACCESS_KEY}",
        f"--secret={SECRET_KEY}",
        timeout=max(deadline - time.monotonic(), 1.0),
    )
    proc = cluster.spawn("client.rgw", "radosgw", "-n", "client.rgw")
    _wait_for_http(rgw_port, cluster, deadline)
    server = RgwServer(
        "rgw",
        f"http://127.0.0.1:{rgw_port}",
        proc,
        supports_versioning=True,
        addressing_style="path",
        features=RGW_FEATURES,
        daemons=cluster.daemons,
        root=root,
    )
    client = server.client()
    try:
        client.list_buckets()
    except Exception as exc:
        cluster.fail(f"radosgw answers, but not to the test user: {exc}")
    finally:
        client.close()
    return server
