#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for trying `snakemake --profile profiles/slurm` and
# for the test suite (tests/test_slurm.py). Debian/Ubuntu, run as root, no systemd needed.
#
#   cluster/slurm-local.sh start    install slurm-wlm + munge if missing (apt-get), start munged
#                                   (unless one already answers), slurmctld and slurmd
#   cluster/slurm-local.sh stop     cancel this cluster's jobs, stop exactly the daemons `start`
#                                   started (by their recorded pids), remove the slurm.conf it wrote
#   cluster/slurm-local.sh status   daemons, node and partition; exit 0 when up, 3 when down
#
# The cluster: one node (this machine: CPUs from `nproc`, memory from /proc/meminfo minus a
# reserve), one default partition `main`, EnforcePartLimits=ALL (a job larger than the node is
# refused at sbatch instead of pending forever), MinJobAge=300 (squeue keeps finished jobs long
# enough for `slurm-status-command: squeue`), and no accounting (no slurmdbd: sacct fails, as on
# many small clusters). Configuration, state and logs live under $STATE; /etc/slurm/slurm.conf
# is written only where none exists or where this script wrote it.
set -euo pipefail

STATE=${CLIPCONCEPTS_SLURM_STATE:-/var/lib/clipconcepts-slurm}
# Elsewhere than /etc/slurm/slurm.conf, SLURM's commands find it only with SLURM_CONF exported.
CONF=${CLIPCONCEPTS_SLURM_CONF:-/etc/slurm/slurm.conf}
export SLURM_CONF=$CONF
MARK="# written by clipconcepts cluster/slurm-local.sh"
PARTITION=main
# Memory (MB) kept back for the OS, the daemons and Snakemake itself.
RESERVE_MB=${CLIPCONCEPTS_SLURM_RESERVE_MB:-1024}

say() { echo "slurm-local: $*"; }
die() {
	echo "slurm-local: $*" >&2
	exit 1
}

# A recorded pid still running the daemon it was recorded for.
ours_alive() { # name
	local pidfile="$STATE/pids/$1" pid
	[[ -s $pidfile ]] || return 1
	pid=$(<"$pidfile")
	[[ -d /proc/$pid ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$1" ]]
}

# Pid of a running process with this name, if any (no procps needed).
pid_of() { # name
	local comm
	for comm in /proc/[0-9]*/comm; do
		if [[ $(cat "$comm" 2>/dev/null) == "$1" ]]; then
			comm=${comm#/proc/}
			echo "${comm%/comm}"
			return 0
		fi
	done
	return 1
}

installed() { command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
	command -v sbatch >/dev/null && command -v munged >/dev/null; }

install_packages() {
	installed && return 0
	[[ $EUID -eq 0 ]] || die "slurm-wlm and munge are not installed, and installing them needs root"
	command -v apt-get >/dev/null || die "slurm-wlm and munge are not installed and apt-get is absent"
	say "installing slurm-wlm and munge (apt-get)"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		slurm-wlm munge >/dev/null
	installed || die "slurm-wlm/munge installation did not provide slurmctld, slurmd, sbatch, munged"
}

munge_answers() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
	if munge_answers; then
		say "munged already running (not started by this script: left alone)"
		return 0
	fi
	[[ -s /etc/munge/munge.key ]] || {
		mungekey --create --keyfile=/etc/munge/munge.key
		chown munge:munge /etc/munge/munge.key
		chmod 0400 /etc/munge/munge.key
	}
	install -d -o munge -g munge -m 0755 /run/munge
	install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
	runuser -u munge -- /usr/sbin/munged
	for _ in $(seq 50); do
		munge_answers && break
		sleep 0.1
	done
	munge_answers || die "munged did not start (see /var/log/munge/munged.log)"
	cp /run/munge/munged.pid "$STATE/pids/munged"
}

write_conf() {
	local host cpus mem_mb
	host=$(hostname -s)
	cpus=$(nproc)
	mem_mb=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 - RESERVE_MB))
	# slurmd drains a node that reports less memory than configured: never configure more.
	local real
	real=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
	[[ -n $real && $real -lt $mem_mb ]] && mem_mb=$real
	mkdir -p "$(dirname "$CONF")" "$STATE/ctld" "$STATE/d"
	cat >"$CONF" <<EOF
$MARK on $(date -u +%FT%TZ): a single-node cluster.
# Removed again by 'cluster/slurm-local.sh stop'.
ClusterName=clipconcepts
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
# No cgroups (containers, CI machines): processes tracked by parentage, no CPU binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
# No accounting: there is no slurmdbd, so sacct fails; status checks must use squeue.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# Finished jobs stay visible to squeue for 5 minutes (the executor's squeue status checks need it).
MinJobAge=300
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Refuse at submission a job that no partition/node could ever run.
EnforcePartLimits=ALL
ReturnToService=2
SlurmdTimeout=60
InactiveLimit=0
KillWait=10
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE MaxMemPerNode=$mem_mb DefMemPerCPU=1000 State=UP
EOF
	say "wrote $CONF: node $host with $cpus CPUs and $mem_mb MB, partition $PARTITION (default)"
}

start_daemon() { # name
	local name=$1
	if ours_alive "$name"; then
		return 0
	fi
	rm -f "$STATE/$name.pid"
	"/usr/sbin/$name"
	for _ in $(seq 100); do
		[[ -s $STATE/$name.pid ]] && [[ -d /proc/$(<"$STATE/$name.pid") ]] && break
		sleep 0.1
	done
	[[ -s $STATE/$name.pid ]] || die "$name did not start (see $STATE/$name.log)"
	cp "$STATE/$name.pid" "$STATE/pids/$name"
}

node_state() { sinfo -h -N -o %T 2>/dev/null | head -1; }

start() {
	[[ $EUID -eq 0 ]] || die "needs root (slurmd starts jobs as their users; munged needs /run/munge)"
	install_packages
	if [[ -e $CONF ]] && ! grep -qF "$MARK" "$CONF"; then
		die "$CONF exists and was not written by this script: a cluster is configured here already"
	fi
	if ours_alive slurmctld && ours_alive slurmd; then
		say "already running"
		status
		return 0
	fi
	for other in slurmctld slurmd; do
		if pid_of "$other" >/dev/null && ! ours_alive "$other"; then
			die "a $other not started by this script is running (pid $(pid_of "$other"))"
		fi
	done
	mkdir -p "$STATE/pids"
	start_munge
	ours_alive slurmctld || write_conf
	start_daemon slurmctld
	start_daemon slurmd
	local state=""
	for _ in $(seq 60); do
		state=$(node_state)
		[[ $state == idle* || $state == mixed* || $state == allocated* ]] && break
		if [[ $state == down* || $state == drain* ]]; then
			scontrol update nodename="$(hostname -s)" state=resume 2>/dev/null || true
		fi
		sleep 0.5
	done
	[[ $state == idle* || $state == mixed* || $state == allocated* ]] ||
		die "node not ready (state '${state:-none}'; see $STATE/slurmctld.log and $STATE/slurmd.log)"
	say "up: partition $PARTITION, node $(hostname -s) $state"
}

stop_pid() { # name
	local name=$1 pid
	ours_alive "$name" || {
		rm -f "$STATE/pids/$name"
		return 0
	}
	pid=$(<"$STATE/pids/$name")
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 100); do
		[[ -d /proc/$pid ]] || break
		sleep 0.1
	done
	[[ -d /proc/$pid ]] && kill -KILL "$pid" 2>/dev/null || true
	rm -f "$STATE/pids/$name"
	say "stopped $name (pid $pid)"
}

stop() {
	if ours_alive slurmctld; then
		# Jobs of this cluster only: it is ours, and nothing else submits to it.
		local ids
		ids=$(squeue -h -o %i 2>/dev/null || true)
		[[ -n $ids ]] && scancel $ids 2>/dev/null || true
	fi
	stop_pid slurmd
	stop_pid slurmctld
	stop_pid munged
	if [[ -e $CONF ]] && grep -qF "$MARK" "$CONF"; then
		rm -f "$CONF"
		say "removed $CONF"
	fi
}

status() {
	local up=0
	for name in munged slurmctld slurmd; do
		if ours_alive "$name"; then
			say "$name running (pid $(<"$STATE/pids/$name")), started by this script"
		elif pid_of "$name" >/dev/null; then
			say "$name running (pid $(pid_of "$name")), not started by this script"
		else
			say "$name not running"
		fi
	done
	if ours_alive slurmctld && ours_alive slurmd; then
		sinfo -N -o "%N %P %T %c %m" 2>/dev/null || true
		up=1
	fi
	[[ $up -eq 1 ]] && return 0 || return 3
}

case ${1:-} in
start) start ;;
stop) stop ;;
status) status ;;
*)
	echo "usage: $0 start|stop|status" >&2
	exit 2
	;;
esac
