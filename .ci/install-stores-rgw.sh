#!/usr/bin/env bash
# Install Ceph's monitor, OSD and RADOS Gateway from Debian's packages, for
# tests/stores/rgw.py (which runs a throwaway cluster of its own in a temp dir:
# nothing here is configured or started). Idempotent: returns at once when the
# binaries are there.
#
#   packages: ceph-mon ceph-osd radosgw ceph-common (Debian bookworm: Ceph 16.2)
#   binaries: ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph
set -euo pipefail

PACKAGES=(ceph-mon ceph-osd radosgw ceph-common)
BINARIES=(ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph)

missing=0
for bin in "${BINARIES[@]}"; do
    command -v "$bin" >/dev/null 2>&1 || missing=1
done
if [[ $missing == 0 ]]; then
    exit 0
fi

sudo=()
if [[ $(id -u) != 0 ]]; then
    sudo=(sudo)
fi

log="$(mktemp)"
policy=/usr/sbin/policy-rc.d
made_policy=0
cleanup() {
    if [[ $made_policy == 1 ]]; then
        "${sudo[@]}" rm -f "$policy"
    fi
    rm -f "$log"
}
trap cleanup EXIT
fail() {
    echo "install-stores-rgw: $1 failed; last lines of its output:" >&2
    tail -n 40 "$log" >&2
    exit 1
}

# The packages' maintainer scripts start no daemon while they install: a
# policy-rc.d that denies every start (unless the machine has one already).
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    made_policy=1
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >"$log" 2>&1 || fail "apt-get update"
"${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Use-Pty=0 "${PACKAGES[@]}" >>"$log" 2>&1 || fail "apt-get install"

# On a machine run by systemd the packages enable ceph.target and ceph-crash:
# the tests start their own daemons, so none of the system's runs at boot.
if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
    "${sudo[@]}" systemctl disable --now ceph.target ceph-mon.target \
        ceph-osd.target ceph-radosgw.target ceph-crash.service >>"$log" 2>&1 || true
fi

for bin in "${BINARIES[@]}"; do
    command -v "$bin" >/dev/null 2>&1 || fail "finding $bin after the install"
done
