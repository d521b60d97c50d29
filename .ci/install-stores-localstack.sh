#!/usr/bin/env bash
# Install LocalStack (run in host mode, S3 only, by tests/stores/localstack.py)
# into a venv of its own, outside the repo. Idempotent: a second run with
# nothing changed returns at once.
#
#   venv:   $BULKCOPY_LOCALSTACK_PYTHON's venv, default ~/.cache/bulkcopy/localstack-venv
#   also:   <venv>/server.test.pem         certificate (LocalStack's own generation
#                                          fails with the pyOpenSSL it pulls in)
#           <venv>/localstack-static/*.dill prebuilt service catalog index (saves
#                                          ~4 s of every server start)
set -euo pipefail

LOCALSTACK_VERSION=4.14.0
# localstack-core[base-runtime] is enough for S3 (the [runtime] extra adds moto,
# awscli, a JVM bridge, ... for other services: 3x the install time, same S3).
# Everything it pulled in, at the versions checked with it, so CI is reproducible;
# cbor2<6 (LocalStack imports cbor2._decoder) and service_identity are needed.
CONSTRAINTS="
annotated-types==0.8.0
asn1crypto==1.5.1
attrs==26.1.0
awscrt==0.38.1
boto3==1.42.54
botocore==1.42.54
cachetools==8.0.3
cbor2==5.9.0
certifi==2026.10.19.post1
cffi==2.1.1
charset-normalizer==3.5.3
click==8.5.1
constantly==23.10.4
cryptography==50.0.2
dill==0.3.6
dnslib==0.9.26
dnspython==2.9.2
docker==7.2.0
h11==0.16.0
h2==4.4.1
hpack==4.2.0
Hypercorn==0.18.0
hyperframe==6.1.0
hyperlink==21.0.0
idna==3.21
Incremental==24.11.0
isodate==0.7.2
jmespath==1.1.0
jsonpatch==1.48
jsonpointer==3.12
jsonschema==4.26.0
jsonschema-path==0.4.6
jsonschema-specifications==2025.9.1
lazy-object-proxy==1.13.0
localstack-twisted==26.4.0
markdown-it-py==4.3.0
MarkupSafe==3.0.4
mdurl==0.1.2
more-itertools==11.2.1
openapi-core==0.23.1
openapi-schema-validator==0.8.1
openapi-spec-validator==0.8.5
packaging==26.4
pathable==0.5.0
plux==1.16.0
priority==1.3.0
psutil==7.2.2
pycparser==3.12
pydantic==2.14.4
pydantic-settings==2.16.3
pydantic_core==2.50.5
Pygments==2.21.0
pyOpenSSL==26.4.0
python-dateutil==2.9.0.post0
python-dotenv==1.2.4
PyYAML==6.0.4
readerwriterlock==1.0.10
referencing==0.37.0
requests==2.34.2
requests-aws4auth==1.4.0
rfc3339-validator==0.1.4
rich==15.0.0
rolo==0.8.9
rpds-py==2026.9.1
s3transfer==0.16.1
semver==3.2.0
service-identity==26.1.0
six==1.17.0
typing-inspection==0.4.5
typing_extensions==4.16.0
urllib3==2.8.0
Werkzeug==3.1.9
wsproto==1.3.2
xmltodict==1.0.4
zope.interface==8.7
"
REQUIREMENTS="localstack-core[base-runtime]==$LOCALSTACK_VERSION cbor2<6 service_identity"

target_python="${BULKCOPY_LOCALSTACK_PYTHON:-$HOME/.cache/bulkcopy/localstack-venv/bin/python}"
venv="$(dirname "$(dirname "$target_python")")"
stamp="$venv/.bulkcopy-localstack-stamp"
want_stamp="$(printf '%s\n%s\n' "$REQUIREMENTS" "$CONSTRAINTS" | sha256sum | cut -d' ' -f1)"

if [[ -x "$target_python" && -f "$stamp" && "$(cat "$stamp")" == "$want_stamp" \
      && -s "$venv/server.test.pem" ]] \
   && compgen -G "$venv/localstack-static/service-catalog-*.dill" >/dev/null; then
    exit 0
fi

# LocalStack wants Python >= 3.10; 3.13 is the one it was checked with.
base_python=""
for minor in 13 12 11 10; do
    for cand in /root/.pyenv/versions/3."$minor"*/bin/python3."$minor" \
                "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3."$minor"*/bin/python3."$minor" \
                "$(command -v python3."$minor" || true)"; do
        if [[ -n "$cand" && -x "$cand" ]]; then
            base_python="$cand"
            break 2
        fi
    done
done
if [[ -z "$base_python" ]]; then
    echo "install-stores-localstack: no python3.10+ found (wanted python3.13)" >&2
    exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log="$work/install.log"
fail() {
    echo "install-stores-localstack: $1 failed; last lines of its log:" >&2
    tail -n 40 "$log" >&2
    exit 1
}

mkdir -p "$(dirname "$venv")"
"$base_python" -m venv --clear "$venv" >"$log" 2>&1 || fail "python -m venv"
[[ -x "$target_python" ]] || {
    echo "install-stores-localstack: $target_python not made by the venv" >&2
    exit 1
}
printf '%s\n' "$CONSTRAINTS" >"$work/constraints.txt"
# shellcheck disable=SC2086  # REQUIREMENTS is a list of words
PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install --quiet \
    --constraint "$work/constraints.txt" $REQUIREMENTS >>"$log" 2>&1 \
    || fail "pip install"

# certificate: key and certificate in one PEM, as LocalStack stores its own
"$venv/bin/python" - "$venv/server.test.pem" >>"$log" 2>&1 <<'EOF' || fail "certificate"
import datetime
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (
    x509.CertificateBuilder()
    .subject_name(name)
    .issuer_name(name)
    .public_key(key.public_key())
    .serial_number(x509.random_serial_number())
    .not_valid_before(now - datetime.timedelta(days=1))
    .not_valid_after(now + datetime.timedelta(days=3650))
    .add_extension(
        x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.DNSName("localhost.localstack.cloud")]
        ),
        critical=False,
    )
    .sign(key, hashes.SHA256())
)
pem = key.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.TraditionalOpenSSL,
    serialization.NoEncryption(),
) + cert.public_bytes(serialization.Encoding.PEM)
tmp = sys.argv[1] + ".tmp"
with open(tmp, "wb") as f:
    f.write(pem)
os.replace(tmp, sys.argv[1])
EOF

# service catalog index, as LocalStack's Docker image ships it in its static libs
mkdir -p "$venv/localstack-static"
rm -f "$venv"/localstack-static/service-catalog-*.dill
OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT="$work/fs" "$venv/bin/python" - \
    "$venv/localstack-static" >>"$log" 2>&1 <<'EOF' || fail "service catalog"
import os
import sys

from localstack.aws.spec import _get_catalog_filename, build_service_index_cache

out = os.path.join(sys.argv[1], _get_catalog_filename())
build_service_index_cache(out + ".tmp")
os.replace(out + ".tmp", out)
EOF

echo "$want_stamp" >"$stamp"
