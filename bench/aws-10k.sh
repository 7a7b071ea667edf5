#!/bin/sh
# What a 10,000-point sweep costs AWS Batch's API: requests at submission, the time to submit,
# and DescribeJobs/ListJobs calls a minute while the array waits for capacity. Against the
# contract server (fixtures/contract/aws_batch_server.py --hold: children stay RUNNABLE) and
# the S3 test server; the sweep is interrupted after a minute of polling (its jobs terminated).
# Needs scripts/slurm-test-cluster.sh start (moto on 127.0.0.1:9000) and botocore.
# Usage: bench/aws-10k.sh [POINTS] [SECONDS]   (default 10000 60)
set -eu
cd "$(dirname "$0")/.."
[ -x /opt/swift/usr/bin/swift ] && PATH="/opt/swift/usr/bin:$PATH"
N="${1:-10000}"
WATCH="${2:-60}"
ROOT="$PWD"
swift build -c release --static-swift-stdlib --product repro >&2
REPRO="$(swift build -c release --static-swift-stdlib --show-bin-path)/repro"
export AWS_ACCESS_KEY_ID=AKIDREPROTEST AWS_SECRET_ACCESS_KEY=reprotestsecret AWS_REGION=us-east-1
WORK="$(mktemp -d /tmp/repro-aws10k.XXXXXX)"
python3 fixtures/contract/aws_batch_server.py --hold --port-file "$WORK/port" >/dev/null 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
while [ ! -s "$WORK/port" ]; do sleep 0.1; done
PORT=$(cat "$WORK/port")
B="aws10k-$(date +%s)"
aws --endpoint-url http://127.0.0.1:9000 s3 mb "s3://$B" >/dev/null
cd "$WORK"
git init -q -b main r && cd r && git config user.email b@example.org && git config user.name bench
printf 'name: aws10k\ncommand: [true]\nparams: {i: 0}\nseed: 1\n' > point.yaml
printf 'base: point.yaml\ngrid:\n  params.i: [%s]\n' "$(seq -s, 1 "$N")" > sweep.yaml
git add -A && git commit -qm bench
# Endpoints in the clone's own (uncommitted) config: a committed one would need `repro config trust`.
mkdir -p .repro
cat > .repro/config.yaml <<YAML
backends:
  aws:
    type: aws-batch
    job_queue: repro-queue
    job_definition: repro-jobdef:1
    staging: s3://$B/staging
    endpoint: http://127.0.0.1:9000
    batch_endpoint: http://127.0.0.1:$PORT
    poll_interval: 2s
YAML
REPRO_TRACE=1 "$REPRO" sweep sweep.yaml --backend aws > "$WORK/out" 2> "$WORK/err" &
P=$!
while ! grep -q "submitted" "$WORK/err" 2>/dev/null; do sleep 0.5; kill -0 $P 2>/dev/null || { cat "$WORK/err"; exit 1; }; done
count() { curl -s "http://127.0.0.1:$PORT/_test/requests" | python3 -c "import sys, json; r = json.load(sys.stdin)['requests']; print(sum(1 for x in r if x['action'] == sys.argv[1]))" "$1"; }
D0=$(count describejobs); L0=$(count listjobs)
sleep "$WATCH"
D1=$(count describejobs); L1=$(count listjobs)
kill -INT $P; wait $P || true
echo "== $N points, one array job (children held RUNNABLE)"
grep "submitted" "$WORK/err" | head -1
grep -E "HTTP requests so far" "$WORK/err" | head -1
echo "SubmitJob calls: $(count submitjob)"
echo "while waiting, over ${WATCH} s: DescribeJobs $((D1 - D0)), ListJobs $((L1 - L0)) ($(( (D1 - D0) * 60 / WATCH )) DescribeJobs a minute)"
echo "TerminateJob calls after Ctrl-C: $(count terminatejob)"
