#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for repro's tests and for trying the slurm
# and slurm-rest backends: installs munge and SLURM from Debian's packages, writes
# /etc/slurm/slurm.conf (JWT auth for the REST API), starts munged, slurmctld, slurmd and
# slurmrestd (127.0.0.1:6820), and an S3-compatible server (moto, 127.0.0.1:9000), creates the
# unprivileged user `reprotest` that remote jobs run as, and waits until a probe job has run.
#
#   scripts/slurm-test-cluster.sh start|stop|status
#
# Debian 12, as root (sudo is used otherwise), no systemd needed. Idempotent.
# Knobs: SLURM_OVERSUBSCRIBE (jobs per CPU, default 8), SLURM_MIN_JOB_AGE (seconds finished
# jobs stay visible to squeue/scontrol, default 300), SLURM_WAIT (seconds, default 60),
# SLURM_REST_ADDR (default 127.0.0.1:6820), S3_TEST_PORT (default 9000).
set -euo pipefail

if [ "$(id -u)" != 0 ]; then exec sudo -E "$0" "$@"; fi

RUNDIR=/run/repro-slurm
CONF=/etc/slurm/slurm.conf
STATEDIR=/var/lib/slurm/slurmctld
SPOOLDIR=/var/lib/slurm/slurmd
LOGDIR=/var/log/slurm
NODE=$(hostname -s)
OVERSUBSCRIBE=${SLURM_OVERSUBSCRIBE:-8}
MIN_JOB_AGE=${SLURM_MIN_JOB_AGE:-300}
WAIT=${SLURM_WAIT:-60}
REST_ADDR=${SLURM_REST_ADDR:-127.0.0.1:6820}
S3_PORT=${S3_TEST_PORT:-9000}
JWT_KEY=$STATEDIR/jwt_hs256.key
REST_USER=slurmrest   # slurmrestd refuses to run as root or as SlurmUser
JOB_USER=reprotest    # remote jobs run as this user, who cannot read the submitter's files
log() { echo "[slurm-test-cluster] $*" >&2; }

alive() { # alive PIDFILE NAME: the pid in PIDFILE is a live NAME process (not a zombie)
  local pid
  [ -s "$1" ] || return 1
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] && [ "$(ps -o stat= -p "$pid" | cut -c1)" != Z ]
}

install_packages() {
  local missing="" p
  for p in munge slurm-wlm slurmctld slurmd slurm-client slurmrestd slurm-wlm-jwt-plugin; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
  done
  [ -z "$missing" ] && return 0
  log "installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  # shellcheck disable=SC2086
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/tmp/repro-slurm-apt.log 2>&1 \
    || { cat /tmp/repro-slurm-apt.log >&2; exit 1; }
}

write_config() {
  mkdir -p "$RUNDIR" /run/munge "$STATEDIR" "$SPOOLDIR" "$LOGDIR"
  chown munge:munge /run/munge
  chown slurm:slurm "$STATEDIR" "$LOGDIR"
  if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile=/etc/munge/munge.key --force
    chown munge:munge /etc/munge/munge.key
    chmod 0600 /etc/munge/munge.key
  fi
  [ -s "$JWT_KEY" ] || dd if=/dev/urandom of="$JWT_KEY" bs=32 count=1 status=none
  chown slurm:slurm "$JWT_KEY"
  chmod 0600 "$JWT_KEY"
  id "$REST_USER" >/dev/null 2>&1 || useradd -r -M -d /nonexistent -s /usr/sbin/nologin "$REST_USER"
  id "$JOB_USER" >/dev/null 2>&1 || useradd -m -s /bin/sh "$JOB_USER"
  local mem cpus tmp
  mem=$(free -m | awk '/^Mem:/{print $2}')
  mem=$(( mem > 2048 ? mem - 1024 : mem / 2 ))
  cpus=$(nproc)
  tmp=$(mktemp)
  # batch_sched_delay=0 and OverSubscribe make a 2-core test node start jobs at once rather
  # than two every few seconds; jobcomp/filetxt keeps every finished job's state.
  cat > "$tmp" <<CONF
# written by repro's scripts/slurm-test-cluster.sh
ClusterName=repro-test
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=$JWT_KEY
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmdSpoolDir=$SPOOLDIR
StateSaveLocation=$STATEDIR
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/filetxt
JobCompLoc=$LOGDIR/jobcomp.log
MinJobAge=$MIN_JOB_AGE
MaxArraySize=1001
# A 10,000-point sweep goes in as array tasks, each a job: above the default limit of 10,000
# with the suite's other jobs still remembered for MinJobAge.
MaxJobCount=50000
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:$OVERSUBSCRIBE
CONF
  if ! cmp -s "$tmp" "$CONF"; then install -m 0644 "$tmp" "$CONF"; CONF_CHANGED=1; fi
  rm -f "$tmp"
}

start() {
  CONF_CHANGED=0
  install_packages
  write_config
  if ! alive /run/munge/munged.pid munged; then
    runuser -u munge -- /usr/sbin/munged --force
    log "munged started"
  fi
  for _ in $(seq 1 50); do munge -n </dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  if alive /run/slurmctld.pid slurmctld && [ "$CONF_CHANGED" = 1 ]; then
    # Auth plugins load only when slurmctld starts: a changed config means a restart.
    stop_daemon /run/slurmctld.pid slurmctld
    stop_daemon /run/slurmd.pid slurmd
  fi
  if ! alive /run/slurmctld.pid slurmctld; then
    slurmctld
    log "slurmctld started"
  fi
  for _ in $(seq 1 100); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.1; done
  if ! alive /run/slurmd.pid slurmd; then
    slurmd
    log "slurmd started"
  fi
  local state=""
  for _ in $(seq 1 $(( WAIT * 5 ))); do
    state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null || true)
    case "$state" in
      idle|mixed|allocated) break ;;
      *drain*|down) scontrol update nodename="$NODE" state=resume 2>/dev/null || true ;;
    esac
    sleep 0.2
  done
  case "$state" in idle|mixed|allocated) ;; *) log "node $NODE not ready (state '$state'); see $LOGDIR"; exit 1 ;; esac
  # slurmctld's first scheduling pass comes a few seconds after it starts: prove a job runs.
  local job ps=""
  job=$(sbatch --parsable -J repro-probe -o /dev/null -e /dev/null --chdir=/ --wrap true)
  for _ in $(seq 1 $(( WAIT * 5 ))); do
    ps=$(squeue -h --states=all -j "$job" -o %T 2>/dev/null || true)
    [ "$ps" = COMPLETED ] && break
    sleep 0.2
  done
  [ "$ps" = COMPLETED ] || { log "probe job $job did not complete (state '$ps')"; exit 1; }
  start_rest
  start_s3
  log "cluster ready: node $NODE $state, probe job $job completed; REST on $REST_ADDR, S3 on 127.0.0.1:$S3_PORT"
}

stop_daemon() { # stop_daemon PIDFILE NAME
  alive "$1" "$2" || return 0
  local pid
  pid=$(cat "$1"); kill -TERM "$pid"
  for _ in $(seq 1 150); do alive "$1" "$2" || break; sleep 0.1; done
  alive "$1" "$2" && kill -KILL "$pid"
  log "$2 stopped"
}

start_rest() {
  if ! alive "$RUNDIR/slurmrestd.pid" slurmrestd; then
    # SLURM_JWT=daemon: slurmrestd passes each caller's token on to slurmctld.
    SLURM_JWT=daemon setsid slurmrestd -u "$REST_USER" -a rest_auth/jwt -s openapi/v0.0.38 "$REST_ADDR" \
      >>"$LOGDIR/slurmrestd.log" 2>&1 </dev/null &
    echo $! > "$RUNDIR/slurmrestd.pid"
    log "slurmrestd started on $REST_ADDR"
  fi
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/${REST_ADDR%:*}/${REST_ADDR##*:}") 2>/dev/null && return 0; sleep 0.1; done
  log "slurmrestd does not answer on $REST_ADDR; see $LOGDIR/slurmrestd.log"; exit 1
}

start_s3() {
  if ! python3 -c 'import moto.server' >/dev/null 2>&1; then
    log "installing moto[server] (PyPI) for the S3-compatible test server"
    python3 -m pip install -q 'moto[server]' >&2
  fi
  if ! alive "$RUNDIR/s3.pid" python3 && ! alive "$RUNDIR/s3.pid" moto_server; then
    setsid python3 -m moto.server -H 127.0.0.1 -p "$S3_PORT" >>"$LOGDIR/s3.log" 2>&1 </dev/null &
    echo $! > "$RUNDIR/s3.pid"
    log "S3-compatible server (moto) started on 127.0.0.1:$S3_PORT"
  fi
  for _ in $(seq 1 150); do curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/moto-api/" && return 0; sleep 0.1; done
  log "the S3 server does not answer on 127.0.0.1:$S3_PORT; see $LOGDIR/s3.log"; exit 1
}

stop() {
  if scontrol ping 2>/dev/null | grep -q UP; then
    local ids
    ids=$(squeue -h -t PENDING,RUNNING,SUSPENDED,CONFIGURING -o %i 2>/dev/null | tr '\n' ' ')
    # Job steps outlive slurmd: cancel them before stopping the daemons.
    # shellcheck disable=SC2086
    [ -n "${ids// }" ] && scancel $ids
    for _ in $(seq 1 100); do squeue -h -t RUNNING,COMPLETING -o %i 2>/dev/null | grep -q . || break; sleep 0.1; done
  fi
  stop_daemon "$RUNDIR/slurmrestd.pid" slurmrestd
  stop_daemon "$RUNDIR/s3.pid" python3
  local pf name pid
  for pair in /run/slurmd.pid:slurmd /run/slurmctld.pid:slurmctld /run/munge/munged.pid:munged; do
    pf=${pair%%:*}; name=${pair##*:}
    alive "$pf" "$name" || continue
    pid=$(cat "$pf"); kill -TERM "$pid"
    for _ in $(seq 1 150); do alive "$pf" "$name" || break; sleep 0.1; done
    alive "$pf" "$name" && kill -KILL "$pid"
    log "$name stopped"
  done
}

status() {
  local ok=0
  alive /run/munge/munged.pid munged && echo "munged: running" || { echo "munged: stopped"; ok=1; }
  alive /run/slurmctld.pid slurmctld && echo "slurmctld: running" || { echo "slurmctld: stopped"; ok=1; }
  alive /run/slurmd.pid slurmd && echo "slurmd: running" || { echo "slurmd: stopped"; ok=1; }
  alive "$RUNDIR/slurmrestd.pid" slurmrestd && echo "slurmrestd: running on $REST_ADDR" || { echo "slurmrestd: stopped"; ok=1; }
  alive "$RUNDIR/s3.pid" python3 && echo "S3 (moto): running on 127.0.0.1:$S3_PORT" || { echo "S3 (moto): stopped"; ok=1; }
  [ "$ok" = 0 ] && sinfo -h -o 'partition %P: %a, %D node(s) %T' 2>/dev/null
  return $ok
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
