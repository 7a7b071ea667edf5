#!/bin/sh
# Team cache figures: push and pull of a 1,000-run sweep (10 KiB outputs each) to the local
# S3-compatible server, beside `aws s3 sync` of the same output files up and down.
# Needs scripts/slurm-test-cluster.sh start (moto on 127.0.0.1:9000) and the aws CLI.
# Usage: bench/team-cache.sh [POINTS]   (default 1000)
set -eu
cd "$(dirname "$0")/.."
[ -x /opt/swift/usr/bin/swift ] && PATH="/opt/swift/usr/bin:$PATH"
N="${1:-1000}"
curl -s -o /dev/null http://127.0.0.1:9000/moto-api/ || { echo "no S3 server on 127.0.0.1:9000: scripts/slurm-test-cluster.sh start" >&2; exit 2; }
swift build -c release --static-swift-stdlib --product repro >&2
REPRO="$(swift build -c release --static-swift-stdlib --show-bin-path)/repro"
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_ENDPOINT_URL_S3=http://127.0.0.1:9000
WORK="$(mktemp -d /tmp/repro-tc-bench.XXXXXX)"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$WORK"' EXIT
B="tc-bench-$(date +%s)"
aws --endpoint-url http://127.0.0.1:9000 s3 mb "s3://$B" >/dev/null
cd "$WORK"
git init -q -b main a && cd a && git config user.email b@example.org && git config user.name bench
mkdir sim
# 10 KiB of output per point, different for every point.
cat > sim/out.sh <<'SH'
#!/bin/sh
set -eu
i=0; while [ $i -lt 160 ]; do printf '%063d\n' "$(( $1 * 1000 + i ))"; i=$((i + 1)); done > "$REPRO_OUTDIR/data.txt"
SH
chmod +x sim/out.sh
printf 'name: tcb\ncommand: [sim/out.sh, "{params.i}"]\ncode: [sim/]\noutputs: [data.txt]\nparams: {i: 0}\nseed: 1\n' > sim.yaml
printf 'base: sim.yaml\ngrid:\n  params.i: [%s]\n' "$(seq -s, 1 "$N")" > sweep.yaml
"$REPRO" keygen --out "$WORK/key" >/dev/null
printf 'cache:\n  trusted_keys: [%s]\n  remote: {read: false}\n' "$WORK/key.pub" > .repro.yaml
"$REPRO" remote add origin "s3://$B/team" --endpoint http://127.0.0.1:9000 --default >/dev/null
git add -A && git commit -qm bench && cd .. && git clone -q a b && cd a
"$REPRO" sweep sweep.yaml --jobs 2 >/dev/null 2>&1
# Seconds a command took, or FAILED (with its exit code) when it failed.
t() { s=$(date +%s.%N); rc=0; "$@" >/dev/null 2>&1 || rc=$?; e=$(date +%s.%N); if [ $rc = 0 ]; then echo "$e - $s" | bc; else echo "FAILED (exit $rc)"; fi; }
echo "== $N runs, 10 KiB output each"
echo "repro push (signed manifests + blobs):   $(t "$REPRO" push sweep.yaml --key "$WORK/key") s"
echo "repro push again (nothing to send):      $(t "$REPRO" push sweep.yaml --key "$WORK/key") s"
cd ../b
# The clone accepts the committed remote endpoint, as a teammate would (`repro config trust`).
"$REPRO" config trust >/dev/null
echo "repro pull (fresh store, re-hashed):     $(t "$REPRO" pull sweep.yaml) s"
echo "repro pull again (nothing to fetch):     $(t "$REPRO" pull sweep.yaml) s"
cd ../a
echo "aws s3 sync up (the same $N files):      $(t aws --endpoint-url http://127.0.0.1:9000 s3 sync results "s3://$B/sync") s"
echo "aws s3 sync up again (nothing to send):  $(t aws --endpoint-url http://127.0.0.1:9000 s3 sync results "s3://$B/sync") s"
echo "aws s3 sync down (fresh folder):         $(t aws --endpoint-url http://127.0.0.1:9000 s3 sync "s3://$B/sync" "$WORK/down") s"
echo "aws s3 sync down again:                  $(t aws --endpoint-url http://127.0.0.1:9000 s3 sync "s3://$B/sync" "$WORK/down") s"
