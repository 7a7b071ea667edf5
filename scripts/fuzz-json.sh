#!/bin/sh
# Fuzzes the JSON parser with libFuzzer (+ AddressSanitizer) for SECONDS (default 60), starting
# from the committed corpus in Tests/ReproKitTests/Corpus/json, which the test suite replays.
# Inputs that add coverage are merged into that folder at the end: commit them.
#   scripts/fuzz-json.sh 3600      # an hour
set -eu
cd "$(dirname "$0")/.."
[ -x /opt/swift/usr/bin/swiftc ] && PATH="/opt/swift/usr/bin:$PATH"
seconds=${1:-60}
out=.build/fuzz
mkdir -p "$out"
swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name ReproFuzz \
  fuzz/JSONParserFuzz.swift \
  Sources/ReproKit/Support/JSONParser.swift Sources/ReproKit/Support/JSONValue.swift \
  Sources/ReproKit/Support/NumberFormat.swift \
  -o "$out/fuzz-json"
corpus=Tests/ReproKitTests/Corpus/json
work="$out/json-corpus"
mkdir -p "$corpus" "$work"
"$out/fuzz-json" -max_total_time="$seconds" -max_len=4096 -timeout=5 -print_final_stats=1 "$work" "$corpus"
# Keep the committed corpus small: only inputs that add coverage.
"$out/fuzz-json" -merge=1 "$corpus" "$work" 2>&1 | tail -n 2
