#!/bin/sh
# Runs the whole test suite: real git repositories, real SQLite stores, real subprocesses.
set -eu
cd "$(dirname "$0")/.."
[ -x /opt/swift/usr/bin/swift ] && PATH="/opt/swift/usr/bin:$PATH"
./scripts/deps.sh
swift build --build-tests
swift test --skip-build
