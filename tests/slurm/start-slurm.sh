#!/usr/bin/env bash
# start-slurm.sh (from shared/slurm, used by `make test`) — single-node Slurm (munged + slurmctld + slurmd) as root, no systemd.
# Uses only Debian 12 packages (installed here if missing). Idempotent: a daemon
# whose pid file in $RUN names a live process is left alone. Prints 'slurm ready'
# once `sinfo` shows the node idle; exits non-zero with a reason otherwise.
# Pid files of what THIS script started live in $RUN; stop-slurm.sh reads only those.
set -euo pipefail
die() { echo "start-slurm: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root"
RUN=/run/slurm-local LOG=/var/log/slurm
HOST=$(hostname -s) CPUS=$(nproc)
T0=$(date +%s.%N)
alive() { [ -s "$1" ] && [ "$(cat /proc/"$(cat "$1")"/comm 2>/dev/null)" = "$2" ]; }

# 1. Packages: slurm 22.05 + munge 0.5.15. Try without 'apt-get update' first.
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
   || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  inst() { apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge; }
  { inst || { apt-get update -qq && inst; }; } >/tmp/start-slurm-apt.log 2>&1 \
    || die "apt-get install slurm/munge failed; see /tmp/start-slurm-apt.log"
fi
mkdir -p "$RUN" "$LOG" /var/spool/slurmctld /var/spool/slurmd \
         /etc/munge /run/munge /var/log/munge /var/lib/munge

# 2. munged (runs as user munge). Key: 0400, owned by munge, dir not world-writable.
[ -s /etc/munge/munge.key ] || { umask 077; dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none; }
chown munge:munge /etc/munge /etc/munge/munge.key /run/munge /var/log/munge /var/lib/munge
chmod 0700 /etc/munge; chmod 0400 /etc/munge/munge.key; chmod 0755 /run/munge
munge_ok() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }
if ! munge_ok; then   # none usable (a working munged we did not start is reused, never stopped)
  rm -f /run/munge/munged.pid
  runuser -u munge -- /usr/sbin/munged --force || die "munged failed; see /var/log/munge/munged.log"
  for _ in $(seq 50); do munge_ok && break; sleep 0.1; done
  munge_ok || die "munge round-trip failed"
  cp /run/munge/munged.pid "$RUN/munged.pid"      # marks munged as ours
fi

# 3. slurm.conf: no cgroups (proctrack/linuxproc, task/none), no slurmdbd, KillWait=5.
cat > /etc/slurm/slurm.conf.new <<CONF
ClusterName=local
SlurmctldHost=${HOST}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=${LOG}/jobcomp.log
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=${RUN}/slurmctld.pid
SlurmdPidFile=${RUN}/slurmd.pid
SlurmctldLogFile=${LOG}/slurmctld.log
SlurmdLogFile=${LOG}/slurmd.log
# finished jobs stay visible to 'scontrol show job' for MinJobAge seconds
MinJobAge=600
# scancel: SIGCONT+SIGTERM, then SIGKILL after KillWait seconds
KillWait=5
ReturnToService=2
NodeName=${HOST} NodeAddr=127.0.0.1 CPUs=${CPUS} State=UNKNOWN
PartitionName=debug Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP
CONF
if cmp -s /etc/slurm/slurm.conf.new /etc/slurm/slurm.conf; then
  rm /etc/slurm/slurm.conf.new
else
  mv /etc/slurm/slurm.conf.new /etc/slurm/slurm.conf
  if alive "$RUN/slurmctld.pid" slurmctld; then
    scontrol reconfigure || die "slurm.conf changed; run stop-slurm.sh and retry"
  fi
fi

# 4. Daemons fork and write the pid files named in slurm.conf.
# A pid file whose process is gone means an unclean stop (kill -9, machine restart):
# its saved state would resurrect dead jobs as RUNNING, so start with -c (clear state).
if ! alive "$RUN/slurmctld.pid" slurmctld; then
  CLEAR=; [ -e "$RUN/slurmctld.pid" ] && { CLEAR=-c; echo "start-slurm: unclean previous stop, clearing slurmctld state"; }
  slurmctld $CLEAR || die "slurmctld failed; see $LOG/slurmctld.log"
fi
alive "$RUN/slurmd.pid" slurmd       || slurmd    || die "slurmd failed; see $LOG/slurmd.log"

# 5. Wait for the node (resume it once if an unclean stop left it down/drained).
resumed=0
for i in $(seq 120); do
  STATE=$(sinfo -h -n "$HOST" -o %T 2>/dev/null || true)
  case "$STATE" in
    idle|mixed|allocated|completing)
      # after a restart sinfo says idle from saved state before slurmd registers:
      # run a real one-task step to prove munge + slurmctld + slurmd end to end
      if [ "$STATE" = idle ] && ! timeout 30 srun --quiet -N1 -n1 -t 1 -J ready-probe true; then
        die "node idle but 'srun true' failed; see $LOG/*.log"; fi
      awk -v a="$T0" -v b="$(date +%s.%N)" -v h="$HOST" -v s="$STATE" 'BEGIN{printf "start-slurm: node %s %s after %.1fs\n", h, s, b-a}'
      echo "slurm ready"; exit 0;;
    down*|drain*) if [ $resumed = 0 ] && [ "$i" -gt 6 ]; then
        scontrol update NodeName="$HOST" State=RESUME || true; resumed=1; fi;;
  esac
  sleep 0.5
done
die "node not idle after 60s (state='${STATE:-no answer}'); see $LOG/*.log"
