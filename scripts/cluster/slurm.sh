#!/usr/bin/env bash
# A one-node Slurm cluster (munged + slurmctld + slurmd) whose config, key,
# sockets, state, spool, logs and pid files all live under DIR, so it needs
# no systemd and nothing in /etc or /run. Run as root.
#
#   scripts/cluster/slurm.sh start DIR   # prints `export SLURM_CONF=...` on stdout
#   scripts/cluster/slurm.sh status DIR
#   scripts/cluster/slurm.sh stop DIR    # cancels all jobs, stops the daemons
#
# Use: eval "$(scripts/cluster/slurm.sh start "$DIR")"
set -euo pipefail

usage() { echo "usage: $0 start|stop|status DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
cmd=$1
dir=$(realpath -m "$2")
# slurm.conf values cannot hold whitespace.
[[ $dir != *[[:space:]]* ]] || { echo "DIR must not contain whitespace: $dir" >&2; exit 2; }
conf=$dir/slurm.conf
export SLURM_CONF=$conf
node=$(hostname -s)

log() { echo "slurm.sh: $*" >&2; }

# pid from a pid file, if that process is still the daemon we started
# (checking the name guards against a recycled pid).
live_pid() {
  local pid
  pid=$(cat "$dir/run/$1.pid" 2>/dev/null) || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$1" ]] && echo "$pid"
}

stop_daemon() {
  local pid
  pid=$(live_pid "$1") || return 0
  kill -TERM "$pid"
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  log "$1 ($pid) ignored SIGTERM for 10s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

fail() {
  log "$*"
  local f
  for f in "$dir"/log/*.log; do
    [[ -f $f ]] && { echo "--- tail $f" >&2; tail -n 20 "$f" >&2; }
  done
  exit 1
}

free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 20000))
    ss -Hltn "sport = :$port" | grep -q . || { echo "$port"; return; }
  done
}

write_conf() {
  local cpus mem
  cpus=$(nproc)
  # slurmd drains a node whose RealMemory exceeds what it detects; stay 5% below.
  mem=$(( $(free -m | awk '/^Mem:/ {print $2}') * 95 / 100 ))
  cat >"$conf" <<EOF
ClusterName=repro
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
# munged runs from DIR too; clients find its socket through this file.
# cred_expire is also how long a requeued job waits before it may start
# again (default 120s).
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket.2,cred_expire=10
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups: linuxproc tracks jobs by process tree, which works in containers.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# Per-CPU allocation so several 1-CPU tasks share the node.
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
# Schedule pending jobs (array throttles, released dependencies) within
# seconds instead of the default 60s/30s loops.
SchedulerParameters=sched_interval=2,bf_interval=1
# Finished jobs stay visible to scontrol show job for a minute.
MinJobAge=60
# Every array task counts against MaxJobCount (default 10000): room for a
# 10,000-run sweep (bench/cluster-submit.sh) next to other jobs, as a
# cluster's own configuration would have.
MaxJobCount=50000
KillWait=2
JobRequeue=1
ReturnToService=2
SlurmdTimeout=30
InactiveLimit=0
# The default /bin/mail is not installed; silences an error per job.
MailProg=/bin/true
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
  if ! command -v slurmctld >/dev/null || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    log "installing slurm-wlm and munge"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >&2
  fi
  mkdir -p "$dir"/{munge,state,spool,run,log,out}

  if ! live_pid munged >/dev/null; then
    [[ -f $dir/munge/munge.key ]] || {
      head -c 1024 /dev/urandom >"$dir/munge/munge.key"
      chmod 0400 "$dir/munge/munge.key"
    }
    # Default paths are under /etc, /run and /var; point every one into DIR.
    # --force: munged otherwise refuses a socket that not every user can
    # reach (any 0700 parent, e.g. mktemp -d or /root); all clients are root.
    munged --force --socket="$dir/munge/munge.socket.2" --key-file="$dir/munge/munge.key" \
      --pid-file="$dir/run/munged.pid" --seed-file="$dir/munge/munged.seed" \
      --log-file="$dir/log/munged.log" || fail "munged failed to start"
  fi
  munge -n -S "$dir/munge/munge.socket.2" | unmunge -S "$dir/munge/munge.socket.2" >/dev/null ||
    fail "munge credential round trip failed"

  if ! live_pid slurmctld >/dev/null; then
    # Ports are picked afresh while the cluster is down; jobs in state/ survive.
    live_pid slurmd >/dev/null || write_conf
    # The daemons fork into the background and write their own pid files.
    slurmctld -f "$conf" || fail "slurmctld failed to start"
  fi
  live_pid slurmd >/dev/null || slurmd -f "$conf" -N "$node" || fail "slurmd failed to start"

  local state=
  for _ in $(seq 60); do
    state=$(sinfo -h -N -n "$node" -o %T 2>/dev/null || true)
    [[ $state =~ ^(idle|mixed|allocated|completing)$ ]] && break
    sleep 1
  done
  [[ $state =~ ^(idle|mixed|allocated|completing)$ ]] ||
    fail "node $node not ready after 60s (state: '${state:-no answer}')"
  log "node $node is $state"
  echo "export SLURM_CONF=$conf"
}

stop() {
  # slurmstepd and the jobs outlive slurmd, so cancel every job while the
  # controller is still up and wait for them to end.
  if live_pid slurmctld >/dev/null && squeue -h >/dev/null 2>&1; then
    scancel --user=root 2>/dev/null || true
    for _ in $(seq 30); do
      [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break
      sleep 1
    done
  fi
  stop_daemon slurmd
  stop_daemon slurmctld
  stop_daemon munged
  log "stopped"
}

status() {
  local d rc=0
  for d in munged slurmctld slurmd; do
    if live_pid "$d" >/dev/null; then echo "$d running"; else echo "$d stopped"; rc=3; fi
  done
  ((rc == 0)) && sinfo
  return "$rc"
}

case $cmd in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) usage ;;
esac
