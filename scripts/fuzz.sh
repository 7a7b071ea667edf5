#!/bin/sh
# Fuzzes one of repro's parsers with libFuzzer (+ AddressSanitizer) for SECONDS (default 60),
# starting from the committed corpus in Tests/ReproKitTests/Corpus/TARGET, which the test suite
# replays. Inputs that add coverage are merged into that folder at the end: commit them.
#   scripts/fuzz.sh json 3600      # the JSON parser (records, manifests, task files), an hour
#   scripts/fuzz.sh tar 3600       # Tar.extract (outputs.tar and code.tar from a bucket), an hour
#   scripts/fuzz.sh record 3600    # the run-record decoder and self-check (pulled manifests), an hour
set -eu
cd "$(dirname "$0")/.."
[ -x /opt/swift/usr/bin/swiftc ] && PATH="/opt/swift/usr/bin:$PATH"
target=${1:?usage: scripts/fuzz.sh json|tar [SECONDS]}
seconds=${2:-60}
out=.build/fuzz
mkdir -p "$out"
S=Sources/ReproSupport
case "$target" in
  json) sources="fuzz/JSONParserFuzz.swift $S/JSONParser.swift $S/JSONValue.swift $S/NumberFormat.swift"; maxlen=4096 ;;
  tar) sources="fuzz/TarFuzz.swift $S/Tar.swift $S/FileIO.swift $S/ReproError.swift"; maxlen=16384 ;;
  record)
    # The run-record decoder and its self-check, as a pulled manifest's record goes through them;
    # SHA-256 comes from swift-crypto, linked from the package's debug build.
    K=Sources/ReproKit
    sources="fuzz/RecordFuzz.swift fuzz/RecordFuzzStubs.swift $K/TeamCache/RunRecord+JSON.swift Sources/ReproStore/RunRecord.swift Sources/ReproStore/RecordParts.swift Sources/ReproStore/InterpreterInfo.swift Sources/ReproStore/KeyDigest.swift
      $K/Identity/RecordIntegrity.swift $K/Identity/CacheKey.swift $S/SafePath.swift $S/Terminal.swift
      $S/JSONParser.swift $S/JSONValue.swift $S/NumberFormat.swift $S/ReproError.swift $S/Hashing.swift $S/Clock.swift
      $S/CanonicalWriter.swift $S/FileIO.swift $S/FileWalk.swift Sources/ReproExecution/OutputCollector.swift Sources/ReproStore/CacheState.swift"
    swift build --product repro >/dev/null
    B=.build/debug
    sources="$sources -I $B/Modules $(find $B/Crypto.build $B/CryptoBoringWrapper.build $B/CCryptoBoringSSL.build $B/CCryptoBoringSSLShims.build -name '*.o' | tr '\n' ' ')"
    maxlen=16384 ;;
  *) echo "scripts/fuzz.sh: unknown target '$target' (json, tar or record)" >&2; exit 2 ;;
esac
# The files are compiled as one module: imports of repro's own modules are dropped.
src="$out/src-$target"; rm -rf "$src"; mkdir -p "$src"
flat=""
for f in $sources; do
  case "$f" in
    *.swift) sed '/^import Repro/d' "$f" > "$src/$(basename "$f")"; flat="$flat $src/$(basename "$f")" ;;
    *) flat="$flat $f" ;;
  esac
done
sources=$flat
# shellcheck disable=SC2086
swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name ReproFuzz -package-name repro -I Sources/CReproSys $sources -o "$out/fuzz-$target"
corpus=Tests/ReproKitTests/Corpus/$target
work="$out/$target-corpus"
mkdir -p "$corpus" "$work"
"$out/fuzz-$target" -max_total_time="$seconds" -max_len="$maxlen" -timeout=5 -print_final_stats=1 -artifact_prefix="$out/" "$work" "$corpus"
# Keep the committed corpus small: only inputs that add coverage.
"$out/fuzz-$target" -merge=1 "$corpus" "$work" 2>&1 | tail -n 2
