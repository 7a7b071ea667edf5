#!/bin/sh
# One command for a fresh Debian 12 machine: install what repro needs, build it (release,
# static Swift stdlib for a fast start), and run the example simulation twice: a miss that
# computes and records it, then a cache hit, then its provenance record.
set -eu
cd "$(dirname "$0")/.."
[ -x /opt/swift/usr/bin/swift ] && PATH="/opt/swift/usr/bin:$PATH"
./scripts/deps.sh
echo "== building repro (release)" >&2
swift build -c release --static-swift-stdlib --product repro >&2
REPRO="$(swift build -c release --static-swift-stdlib --show-bin-path)/repro"
echo "== first run: computes and records" >&2
"$REPRO" run fixtures/dna-repair/sim.yaml
echo "== second run: same identity, served from the store" >&2
"$REPRO" run fixtures/dna-repair/sim.yaml
echo "== the provenance record" >&2
"$REPRO" show
echo "== repro is at $REPRO" >&2
