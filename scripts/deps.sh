#!/bin/sh
# Installs the system packages repro builds and tests with (Debian 12), only if any is missing.
# Used by quickstart.sh, test.sh and .ci/run, so all three agree on what "installed" means.
set -eu
PKGS="libgit2-dev libssl-dev libsqlite3-dev libcurl4-openssl-dev zlib1g-dev pkg-config git sqlite3 python3 hyperfine openssl time"
# `deps.sh --test`: also what only the tests need (headless Chromium for the report's browser test).
[ "${1:-}" = "--test" ] && PKGS="$PKGS chromium"
missing=""
for p in $PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "repro: installing$missing" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
# The PROV-JSON tests parse exports back with the W3C `prov` package (PyPI).
if ! python3 -c 'import prov' >/dev/null 2>&1; then
  echo "repro: installing the prov package (PyPI) for the PROV-JSON tests" >&2
  python3 -m pip install -q prov >&2 || echo "repro: warning: could not install prov; PROV tests will fail" >&2
fi
# The remote-execution tests use moto's S3-compatible server and botocore's SigV4 signer as a
# reference (PyPI); only `--test` needs them.
if [ "${1:-}" = "--test" ] && ! python3 -c 'import moto.server, botocore, flask' >/dev/null 2>&1; then
  echo "repro: installing moto[server] (PyPI) for the object-storage tests" >&2
  python3 -m pip install -q 'moto[server]' >&2 || echo "repro: warning: could not install moto; S3 tests will fail" >&2
fi
# The slurmrestd contract tests check request and answer bodies against the pydantic models
# pyslurmutils generates from SchedMD's OpenAPI description, per API version.
if [ "${1:-}" = "--test" ] && ! python3 -c 'import importlib.util, pydantic; assert importlib.util.find_spec("pyslurmutils")' >/dev/null 2>&1; then
  echo "repro: installing pyslurmutils 1.7.0 and pydantic (PyPI) for the slurmrestd model checks" >&2
  python3 -m pip install -q 'pydantic>=2' >&2 && python3 -m pip install -q --no-deps 'pyslurmutils==1.7.0' >&2 \
    || echo "repro: warning: could not install pyslurmutils; slurmrestd model tests will fail" >&2
fi
# The Azure contract server checks SAS URLs with the azure-storage-blob SDK's own signer.
if [ "${1:-}" = "--test" ] && ! python3 -c 'import azure.storage.blob' >/dev/null 2>&1; then
  echo "repro: installing azure-storage-blob (PyPI) for the Azure contract tests" >&2
  python3 -m pip install -q azure-storage-blob >&2 || echo "repro: warning: could not install azure-storage-blob; Azure tests will fail" >&2
fi
if ! command -v swift >/dev/null 2>&1; then
  if [ -x /opt/swift/usr/bin/swift ]; then
    echo "repro: add /opt/swift/usr/bin to PATH" >&2
  else
    echo "repro: Swift 6.2 or newer is needed: see https://www.swift.org/install/linux/ (Debian 12)" >&2
  fi
  exit 1
fi
