#!/bin/sh
# Runs the whole test suite: real git repositories, real SQLite stores, real subprocesses, and a
# real single-node SLURM cluster (started here by scripts/slurm-test-cluster.sh; needs root or
# sudo). REPRO_SKIP_SLURM=1 skips starting it (the SLURM tests then skip, saying why); in CI
# (CI=true) a missing cluster is a failure.
set -eu
cd "$(dirname "$0")/.."
[ -x /opt/swift/usr/bin/swift ] && PATH="/opt/swift/usr/bin:$PATH"
./scripts/deps.sh --test
if [ "${REPRO_SKIP_SLURM:-0}" != 1 ]; then
  ./scripts/slurm-test-cluster.sh start
fi
if [ "${CI:-}" = true ]; then
  REPRO_REQUIRE_TEST_ENV=1
  export REPRO_REQUIRE_TEST_ENV
fi
swift build --build-tests
swift test --skip-build
