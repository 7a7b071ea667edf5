#!/bin/sh
# The benchmark harness: release build, then the figures the issues set targets for.
#   cache hit end to end (target <= 15 ms, beside /bin/true)
#   miss overhead over running the command directly (target <= 15 ms)
#   SHA-256 of an input streamed from disk vs `openssl dgst -sha256` (target >= 0.9x)
#   a hit with a 1 GiB input (stat cache: milliseconds, not a full read)
# Medians from hyperfine. Usage: bench/run.sh [--quick]
set -eu
cd "$(dirname "$0")/.."
[ -x /opt/swift/usr/bin/swift ] && PATH="/opt/swift/usr/bin:$PATH"
RUNS=30
[ "${1:-}" = "--quick" ] && RUNS=10
swift build -c release --static-swift-stdlib --product repro >&2
swift build -c release --static-swift-stdlib --product repro-bench >&2
BIN="$(swift build -c release --static-swift-stdlib --show-bin-path)"
REPRO="$BIN/repro"

WORK="$(mktemp -d /tmp/repro-bench.XXXXXX)"
RES="$(mktemp -d /tmp/repro-bench-results.XXXXXX)"  # outside the repo: a new file there is dirt
trap 'rm -rf "$WORK" "$RES"' EXIT
cd "$WORK"
git init -q -b main . && git config user.email b@example.org && git config user.name bench
cat > true.yaml <<'YAML'
name: bench-true
command: [/bin/true]
seed: 1
solver: {rtol: 1e-6, atol: 1e-9}
YAML
head -c 268435456 /dev/urandom > input-256m.bin
head -c 1073741824 /dev/zero > input-1g.bin
cat > big.yaml <<'YAML'
name: bench-big-input
command: [/bin/true]
inputs: [input-1g.bin]
seed: 1
YAML
echo "*.bin" > .gitignore  # data is an input, not code
git add .gitignore true.yaml big.yaml && git commit -qm bench
"$REPRO" run true.yaml >/dev/null
sleep 2  # inputs older than 2 s are trusted from the stat cache (racy-git guard)
"$REPRO" run big.yaml >/dev/null

median() { # hyperfine JSON -> one line per command with its median
  python3 - "$1" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print("  %-60s median %8.2f ms  (min %.2f, max %.2f)" % (r["command"][-60:], r["median"] * 1000, r["min"] * 1000, r["max"] * 1000))
PY
}

echo "== cache hit vs a bare /bin/true"
hyperfine -N -w 5 -r "$RUNS" --export-json "$RES/hit.json" "/bin/true" "$REPRO run true.yaml" >/dev/null 2>&1
median "$RES/hit.json"
echo "== miss (--no-cache) vs running the command directly"
hyperfine -N -w 3 -r "$RUNS" --export-json "$RES/miss.json" "/bin/true" "$REPRO run --no-cache true.yaml" >/dev/null 2>&1
median "$RES/miss.json"
echo "== hit with a 1 GiB input (stat cache)"
hyperfine -N -w 3 -r "$RUNS" --export-json "$RES/big.json" "$REPRO run big.yaml" >/dev/null 2>&1
median "$RES/big.json"
echo "== SHA-256 of a 256 MiB file from disk (page cache warm)"
hyperfine -N -w 1 -r 5 --export-json "$RES/sha.json" "openssl dgst -sha256 input-256m.bin" >/dev/null 2>&1
median "$RES/sha.json"
"$BIN/repro-bench" sha256 input-256m.bin

if curl -s -o /dev/null http://127.0.0.1:9000/moto-api/; then
  echo "== S3 throughput, 256 MiB, to the local S3-compatible server (scripts/slurm-test-cluster.sh) beside aws s3 cp"
  export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_ENDPOINT_URL_S3=http://127.0.0.1:9000
  "$BIN/repro-bench" s3 input-256m.bin repro-bench
  hyperfine -w 1 -r 3 --export-json "$RES/awsup.json" \
    "aws --endpoint-url http://127.0.0.1:9000 s3 cp --quiet input-256m.bin s3://repro-bench/bench/aws" >/dev/null 2>&1
  median "$RES/awsup.json"
  hyperfine -w 1 -r 3 --export-json "$RES/awsdown.json" \
    "aws --endpoint-url http://127.0.0.1:9000 s3 cp --quiet s3://repro-bench/bench/aws $RES/aws.back" >/dev/null 2>&1
  median "$RES/awsdown.json"
else
  echo "== S3 throughput skipped: no S3-compatible server on 127.0.0.1:9000 (scripts/slurm-test-cluster.sh start)"
fi

echo "== git hook time with 10,000 cache entries (target <= 100 ms)"
PATH="$BIN:$PATH"; export PATH
"$REPRO" hooks install >/dev/null
"$BIN/repro-bench" populate "$WORK/.repro" 10000 100
git commit -q --allow-empty -m "another commit"
# Steady state: a commit that changes nothing the entries depend on.
hyperfine -N -w 3 -r "$RUNS" --export-json "$RES/hook.json" "sh .git/hooks/post-commit" >/dev/null 2>&1
median "$RES/hook.json"
# Worst case: every entry changes state (10,000 rows rewritten in one transaction).
hyperfine -w 1 -r 10 --export-json "$RES/flip.json" \
  --prepare "sqlite3 .repro/store.sqlite 'DELETE FROM code_states'" \
  "sh .git/hooks/post-commit 2>/dev/null" >/dev/null 2>&1
median "$RES/flip.json"

echo "== sweeps"
SW="$(mktemp -d /tmp/repro-bench-sweep.XXXXXX)"
trap 'rm -rf "$WORK" "$RES" "$SW"' EXIT
cd "$SW"
git init -q -b main . && git config user.email b@example.org && git config user.name bench
printf 'name: bench-point\ncommand: [true]\nparams: {i: 0}\nseed: 1\n' > point.yaml
python3 -c 'print("base: point.yaml\ngrid: {params.i: [%s]}" % ", ".join(map(str, range(1000))))' > sweep1k.yaml
python3 -c 'print("base: point.yaml\ngrid: {params.i: [%s]}" % ", ".join(map(str, range(10000))))' > sweep10k.yaml
git add . && git commit -qm sweeps
CORES=$(nproc)
"$REPRO" sweep sweep1k.yaml >/dev/null 2>&1
echo "-- re-running a fully cached 1,000-point sweep (target <= 0.5 s)"
hyperfine -N -w 2 -r 10 --export-json "$RES/cached.json" "$REPRO sweep sweep1k.yaml" >/dev/null 2>&1
median "$RES/cached.json"
echo "-- 10,000 trivial points on the local backend vs xargs -P $CORES (target <= 1.3x)"
seq 10000 > "$RES/seq"
hyperfine -w 1 -r 3 --export-json "$RES/10k.json" \
  --prepare "rm -rf .repro results" \
  "xargs -P $CORES -n 1 true < $RES/seq" "$REPRO sweep sweep10k.yaml --jobs $CORES >/dev/null 2>&1" >/dev/null 2>&1
median "$RES/10k.json"
echo "-- repro report of the 10,000-point sweep (target < 2 s and < 20 MB)"
"$REPRO" sweep sweep10k.yaml --jobs "$CORES" >/dev/null 2>&1
hyperfine -N -w 1 -r 5 --export-json "$RES/report.json" "$REPRO report sweep10k.yaml --out $RES/report10k.html" >/dev/null 2>&1
median "$RES/report.json"
echo "  size: $(stat -c %s "$RES/report10k.html") bytes"
echo "-- a 400-byte YAML alias bomb is refused (target < 50 ms, < 50 MB)"
python3 - > bomb.yaml <<'PY'
print("name: bomb\ncommand: [true]\nparams:\n  a: &a [" + ",".join(['"lol"'] * 9) + "]")
for p, c in zip("abcdefgh", "bcdefghi"):
    print("  %s: &%s [%s]" % (c, c, ",".join(["*" + p] * 9)))
PY
/usr/bin/time -f "  %e s, max RSS %M KB (exit 2 expected)" "$REPRO" why bomb.yaml 2>&1 >/dev/null | tail -1
if scontrol ping 2>/dev/null | grep -q UP; then
  echo "-- a 1,000-point sweep on SLURM (job arrays) beside the local backend"
  rm -rf .repro results
  /usr/bin/time -f "  slurm: %e s total" "$REPRO" sweep sweep1k.yaml --backend slurm 2>&1 >/dev/null | grep -E "submitted|total"
  rm -rf .repro results
  /usr/bin/time -f "  local: %e s total" "$REPRO" sweep sweep1k.yaml --jobs "$CORES" 2>&1 >/dev/null | grep -E "total"
else
  echo "-- SLURM sweep skipped: no cluster answers (scripts/slurm-test-cluster.sh start)"
fi
if curl -s -o /dev/null http://127.0.0.1:6820/openapi/v3 && curl -s -o /dev/null http://127.0.0.1:9000/moto-api/; then
  echo "-- a 200-point sweep over slurmrestd, staged through S3: staging overhead per task"
  rm -rf .repro results
  python3 -c 'print("base: point.yaml\ngrid: {params.i: [%s]}" % ", ".join(map(str, range(200))))' > sweep200.yaml
  B="repro-bench-$(date +%s)"
  curl -s -X PUT --aws-sigv4 aws:amz:us-east-1:s3 --user bench:bench "http://127.0.0.1:9000/$B" >/dev/null
  printf 'backends:\n  cloud:\n    type: slurm-rest\n    url: http://127.0.0.1:6820\n    user: reprotest\n    token_env: SLURM_JWT\n    staging: s3://%s/staging\n    endpoint: http://127.0.0.1:9000\n    repro_path: %s\n    poll_interval: 0.5s\n' "$B" "$REPRO" > .repro.yaml
  git add sweep200.yaml .repro.yaml && git commit -qm cloud
  SLURM_JWT=$(scontrol token username=reprotest lifespan=3600 | cut -d= -f2) AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench \
    /usr/bin/time -f "  cloud: %e s total" "$REPRO" sweep sweep200.yaml --backend cloud 2>&1 >/dev/null | grep -E "submitted|total" \
    | sed -E 's/submitted 200 run\(s\) in ([0-9.]+) s/staged and submitted 200 tasks in \1 s/'
else
  echo "-- cloud sweep skipped: slurmrestd or S3 not running (scripts/slurm-test-cluster.sh start)"
fi
