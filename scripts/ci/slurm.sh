#!/usr/bin/env bash
# A throw-away single-node SLURM on this host for tests/test_slurm.py (issue #18): Debian's
# slurm-wlm and munge, slurmctld and slurmd on this host as plain daemons (CI has no systemd),
# one node = this host, one partition. Idempotent: a second call with the daemons up and the
# node idle only checks them.
#
# Everything lives under $GBSEARCH_SLURM_DIR (default /tmp/gbsearch-slurm); /etc/slurm is not
# touched, so clients need SLURM_CONF, which $DIR/env holds for the test (and for you:
# `set -a; . /tmp/gbsearch-slurm/env; set +a; sinfo`). When SLURM cannot be had (not root and
# not installed, or the daemons do not come up), $DIR/unavailable holds the reason, the script
# warns and exits 0, and the SLURM tests skip with that reason. `--stop` stops slurmd and
# slurmctld again (munged is left running).
set -euo pipefail
DIR=${GBSEARCH_SLURM_DIR:-/tmp/gbsearch-slurm}
CONF=$DIR/slurm.conf
PARTITION=gbsearch

unavailable() {
  # (Not root: $DIR may not be writable; the tests then skip for want of $DIR/env.)
  { mkdir -p "$DIR" && printf '%s\n' "$1" >"$DIR/unavailable" && rm -f "$DIR/env"; } 2>/dev/null || true
  echo "warning: no SLURM for tests/test_slurm.py (they will skip): $1" >&2
  exit 0
}

install_packages() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && return
  # The packages' postinst scripts would start munged/slurmd through invoke-rc.d with the
  # stock configuration; a policy-rc.d that says "no" keeps the daemons ours to start.
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT       # also when apt-get fails
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
  if [[ $made_policy == 1 ]]; then rm -f "$policy"; trap - EXIT; fi
  command -v slurmctld >/dev/null || unavailable "slurm-wlm installed but no slurmctld on PATH"
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    return
  fi
  local key=/etc/munge/munge.key
  if [[ ! -s $key ]]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of="$key" bs=1024 count=1 status=none
  fi
  chown munge:munge "$key" && chmod 400 "$key"
  # munged insists on its own user owning its socket, log and state directories.
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  runuser -u munge -- /usr/sbin/munged || unavailable "munged does not start: $(tail -n 3 /var/log/munge/munged.log 2>/dev/null)"
  for _ in $(seq 50); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return
    sleep 0.1
  done
  unavailable "munged started but munge -n | unmunge fails: $(tail -n 3 /var/log/munge/munged.log 2>/dev/null)"
}

write_conf() {
  # One node = this host with its cores and 90% of its memory (slurmd drains a node that
  # reports less than RealMemory), reached on 127.0.0.1 (CI hosts need not resolve their own
  # name); no cgroups, no accounting; ReturnToService=2 brings the node back up by itself
  # after slurmd restarts.
  local host cpus mem
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
  mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
  cat >"$CONF.new" <<EOF
# Written by scripts/ci/slurm.sh: a throw-away single-node SLURM for tests/test_slurm.py.
ClusterName=gbsearch
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
MailProg=/bin/true
# A cancelled job gets SIGTERM, then SIGKILL this many seconds later (default 30).
KillWait=5
MinJobAge=300
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  if cmp -s "$CONF.new" "$CONF"; then
    rm "$CONF.new"
    return 1          # unchanged
  fi
  mv "$CONF.new" "$CONF"
}

running() {   # running PIDFILE: the daemon of that pid file is alive
  [[ -s $1 ]] && kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null   # (the file goes as the daemon exits)
}

stop_daemons() {
  for pidfile in "$DIR/slurmd.pid" "$DIR/slurmctld.pid"; do
    if running "$pidfile"; then
      kill "$(cat "$pidfile")"
      for _ in $(seq 50); do running "$pidfile" || break; sleep 0.1; done
    fi
  done
}

start_slurm() {
  export SLURM_CONF=$CONF
  running "$DIR/slurmctld.pid" || slurmctld -f "$CONF" \
    || unavailable "slurmctld does not start: $(tail -n 5 "$DIR/log/slurmctld.log" 2>/dev/null)"
  running "$DIR/slurmd.pid" || slurmd -f "$CONF" \
    || unavailable "slurmd does not start: $(tail -n 5 "$DIR/log/slurmd.log" 2>/dev/null)"
}

wait_idle() {
  local state=""
  for _ in $(seq 120); do
    state=$(SLURM_CONF=$CONF sinfo -h -N -p "$PARTITION" -o %T 2>/dev/null | head -n 1 || true)
    # "idle", or "mixed"/"allocated" when a previous test's jobs are still ending.
    case $state in idle | mixed | allocated) return ;; esac
    sleep 0.5
  done
  unavailable "node not idle after 60 s (state '${state:-none}'); slurmctld.log: $(tail -n 3 "$DIR/log/slurmctld.log" 2>/dev/null); slurmd.log: $(tail -n 3 "$DIR/log/slurmd.log" 2>/dev/null)"
}

if [[ ${1:-} == --stop ]]; then
  stop_daemons
  rm -f "$DIR/env"
  exit 0
fi
if [[ $(id -u) != 0 ]]; then
  if [[ -s $DIR/env ]] && SLURM_CONF=$CONF sinfo -h >/dev/null 2>&1; then
    exit 0            # up already (started by root)
  fi
  unavailable "need root to apt-get install slurm-wlm and munge and to start munged, slurmctld and slurmd"
fi
mkdir -p "$DIR"
rm -f "$DIR/unavailable"
install_packages
start_munge
if write_conf; then
  stop_daemons        # a new or changed configuration: start afresh with it
fi
start_slurm
wait_idle
cat >"$DIR/env" <<EOF
SLURM_CONF=$CONF
GBSEARCH_SLURM_PARTITION=$PARTITION
GBSEARCH_SLURM_CPUS=$(nproc)
EOF
echo "SLURM $(slurmd -V | awk '{print $2}') up: partition $PARTITION on $(hostname -s), $(nproc) CPUs; SLURM_CONF=$CONF (see $DIR/env)"
