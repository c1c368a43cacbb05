#!/usr/bin/env bash
# Runs a command (a v2m worker, typically) under memory and CPU limits in a cgroup of its own,
# removed again when the command exits. cgroup v2 where the controllers are available to us,
# else cgroup v1 (memory and cpu hierarchies), else an error that says why.
#
#   scripts/worker-cgroup.sh [--memory-max SIZE] [--cpu-quota PERCENT] [--name NAME]
#                            [--cgroup auto|v2|v1] -- COMMAND [ARG...]
#
#   --memory-max SIZE   RAM the command may use: bytes, or with K, M or G (1024-based), e.g.
#                       768M. Swap is not allowed on top, so going over means the kernel's
#                       OOM killer ends the command (v2m-rt's supervision then restarts it).
#   --cpu-quota PERCENT CPU time, in percent of one CPU: 50 = half a core, 200 = two cores.
#   --name NAME         the cgroup's name (default v2m-worker-<pid>); an existing empty group
#                       of that name is reused, one with processes in it is refused.
#   --cgroup auto|v2|v1 which hierarchy to use (default auto: v2, then v1).
#
# The command's exit status is this script's (137 when the kernel killed it). SIGTERM, SIGINT
# and SIGHUP are passed on to it. In v2m-rt's config:
#   [[workers]]
#   name = "tiny"
#   command = ["/path/to/scripts/worker-cgroup.sh", "--memory-max", "768M", "--cpu-quota",
#              "150", "--", "v2m-worker", "run"]
#
# Permissions: cgroup v2 needs a delegated subtree (a systemd user session gives one; the group
# is made next to this script's own cgroup); cgroup v1 needs root.
# V2M_CGROUP_MOUNTS and V2M_CGROUP_SELF (default /proc/self/mounts, /proc/self/cgroup) are
# read instead of the real files when set: for tests of the selection only.
set -euo pipefail

say() { printf 'worker-cgroup: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

memory=""
cpu=""
name="v2m-worker-$$"
want=auto
while [ $# -gt 0 ]; do
    case "$1" in
        --memory-max) memory="${2:?--memory-max needs a size}"; shift 2 ;;
        --cpu-quota) cpu="${2:?--cpu-quota needs a percentage}"; shift 2 ;;
        --name) name="${2:?--name needs a name}"; shift 2 ;;
        --cgroup) want="${2:?--cgroup needs auto, v2 or v1}"; shift 2 ;;
        --) shift; break ;;
        -h|--help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) die "unknown option $1 (the command goes after --; see --help)" ;;
    esac
done
[ $# -gt 0 ] || die "no command given (see --help)"
[ -n "$memory$cpu" ] || die "nothing to limit: give --memory-max and/or --cpu-quota"
case "$want" in auto|v2|v1) ;; *) die "--cgroup must be auto, v2 or v1, not '$want'" ;; esac
case "$name" in ''|*/*|.|..) die "--name must be a plain name, not '$name'" ;; esac

# SIZE → bytes.
memory_bytes=""
if [ -n "$memory" ]; then
    case "$memory" in
        *[kK]) n=${memory%[kK]}; mult=1024 ;;
        *[mM]) n=${memory%[mM]}; mult=$((1024 * 1024)) ;;
        *[gG]) n=${memory%[gG]}; mult=$((1024 * 1024 * 1024)) ;;
        *) n=$memory; mult=1 ;;
    esac
    [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -gt 0 ] ||
        die "--memory-max: '$memory' is not a size (bytes, or a number with K, M or G)"
    memory_bytes=$((n * mult))
    [ "$memory_bytes" -ge $((16 * 1024 * 1024)) ] ||
        die "--memory-max: $memory is below 16M; no worker runs in that"
fi
period=100000
quota=""
if [ -n "$cpu" ]; then
    [[ "$cpu" =~ ^[0-9]+$ ]] && [ "$cpu" -ge 1 ] ||
        die "--cpu-quota: '$cpu' is not a whole percentage of one CPU (1 or more)"
    quota=$((cpu * period / 100))
fi

mounts=${V2M_CGROUP_MOUNTS:-/proc/self/mounts}
self=${V2M_CGROUP_SELF:-/proc/self/cgroup}
needed=()
[ -n "$memory_bytes" ] && needed+=(memory)
[ -n "$quota" ] && needed+=(cpu)

# Why each hierarchy could not be used, for the final error.
why_v2=""
why_v1=""

# The groups made (the command joins each), so that cleanup removes exactly those.
groups=()

# --- cgroup v2 -------------------------------------------------------------------------------
# The group goes under the nearest ancestor of our own cgroup (or the root, when we are in it)
# that we may write and that offers the controllers; v2 forbids enabling controllers in a
# group that holds processes itself, which rules out our own group unless it is the root.
try_v2() {
    local mnt own dir parent c
    mnt=$(awk '$3 == "cgroup2" { print $2; exit }' "$mounts")
    [ -n "$mnt" ] || { why_v2="no cgroup2 file system is mounted"; return 1; }
    own=$(sed -n 's/^0:://p' "$self" | head -n 1)
    [ -n "$own" ] || { why_v2="this process has no cgroup v2 path in $self"; return 1; }
    dir="$mnt${own%/}"
    if [ "${own%/}" = "" ]; then
        parent="$mnt"
    else
        parent=$(dirname "$dir")
    fi
    while :; do
        local ok=1
        for c in "${needed[@]}"; do
            grep -qw "$c" "$parent/cgroup.controllers" 2>/dev/null || ok=0
        done
        if [ "$ok" = 1 ] && [ -w "$parent/cgroup.subtree_control" ]; then
            for c in "${needed[@]}"; do
                grep -qw "$c" "$parent/cgroup.subtree_control" ||
                    echo "+$c" >"$parent/cgroup.subtree_control" 2>/dev/null || ok=0
            done
            if [ "$ok" = 1 ]; then
                make_v2 "$parent"
                return
            fi
        fi
        [ "$parent" = "$mnt" ] && break
        parent=$(dirname "$parent")
    done
    why_v2="cgroup v2 at $mnt: no group above $dir both offers ${needed[*]} and lets this user enable them (controllers at the top: '$(cat "$mnt/cgroup.controllers" 2>/dev/null)'; on a systemd machine run under a user session, which delegates them)"
    return 1
}

make_v2() {
    local g="$1/$name"
    new_group "$g"
    if [ -n "$memory_bytes" ]; then
        echo "$memory_bytes" >"$g/memory.max"
        [ -e "$g/memory.swap.max" ] && echo 0 >"$g/memory.swap.max"
    fi
    [ -n "$quota" ] && echo "$quota $period" >"$g/cpu.max"
    say "cgroup v2 $g: memory.max=$(cat "$g/memory.max" 2>/dev/null || echo -) cpu.max='$(cat "$g/cpu.max" 2>/dev/null || echo -)'"
}

# --- cgroup v1 -------------------------------------------------------------------------------
# One group per hierarchy (memory; cpu, often mounted together with cpuacct), each under our
# own group in that hierarchy.
v1_dir() { # controller → "<mount><own path>" or nothing
    local c="$1" mnt own
    mnt=$(awk -v c="$c" '$3 == "cgroup" { n = split($4, o, ","); for (i = 1; i <= n; i++) if (o[i] == c) { print $2; exit } }' "$mounts")
    [ -n "$mnt" ] || return 0
    own=$(awk -F: -v c="$c" '{ n = split($2, o, ","); for (i = 1; i <= n; i++) if (o[i] == c) { print $3; exit } }' "$self")
    echo "$mnt${own%/}"
}

try_v1() {
    local c d
    for c in "${needed[@]}"; do
        d=$(v1_dir "$c")
        [ -n "$d" ] || { why_v1="no cgroup v1 '$c' hierarchy is mounted"; return 1; }
        [ -w "$d" ] || { why_v1="cgroup v1 '$c' group $d is not writable by uid $(id -u) (v1 needs root)"; return 1; }
    done
    if [ -n "$memory_bytes" ]; then
        d="$(v1_dir memory)/$name"
        new_group "$d"
        echo "$memory_bytes" >"$d/memory.limit_in_bytes"
        # No swap on top, where swap accounting exists.
        [ -e "$d/memory.memsw.limit_in_bytes" ] &&
            echo "$memory_bytes" >"$d/memory.memsw.limit_in_bytes" 2>/dev/null || true
        say "cgroup v1 $d: memory.limit_in_bytes=$(cat "$d/memory.limit_in_bytes")"
    fi
    if [ -n "$quota" ]; then
        d="$(v1_dir cpu)/$name"
        new_group "$d"
        echo "$period" >"$d/cpu.cfs_period_us"
        echo "$quota" >"$d/cpu.cfs_quota_us"
        say "cgroup v1 $d: cpu.cfs_quota_us=$(cat "$d/cpu.cfs_quota_us") cpu.cfs_period_us=$(cat "$d/cpu.cfs_period_us")"
    fi
}

# Creates the group and records it. A group of that name that is empty (left by a run that was
# killed) is replaced; one in use is refused.
new_group() {
    local g="$1"
    if [ -d "$g" ]; then
        if [ -n "$(cat "$g/cgroup.procs" 2>/dev/null)" ]; then
            cleanup
            die "$g exists and has processes in it: is another worker running as '$name'?"
        fi
        rmdir "$g" 2>/dev/null || { cleanup; die "cannot replace the stale group $g"; }
    fi
    mkdir "$g" 2>/dev/null || { cleanup; die "cannot create $g"; }
    groups+=("$g")
}

oom_kills() { # the kernel's count of OOM kills in our memory group, 0 if unknown
    local g
    for g in "${groups[@]}"; do
        if [ -e "$g/memory.events" ]; then
            awk '$1 == "oom_kill" { print $2; exit }' "$g/memory.events"
            return
        elif [ -e "$g/memory.oom_control" ]; then
            awk '$1 == "oom_kill" { print $2; exit }' "$g/memory.oom_control"
            return
        fi
    done
    echo 0
}

cleanup() {
    local g pid left i
    for ((i = ${#groups[@]} - 1; i >= 0; i--)); do
        g=${groups[$i]}
        [ -d "$g" ] || continue
        # Whatever the command left behind goes with the group.
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            left=$(cat "$g/cgroup.procs" 2>/dev/null || true)
            [ -z "$left" ] && break
            if [ -e "$g/cgroup.kill" ]; then
                echo 1 >"$g/cgroup.kill" 2>/dev/null || true
            else
                for pid in $left; do kill -KILL "$pid" 2>/dev/null || true; done
            fi
            sleep 0.1
        done
        rmdir "$g" 2>/dev/null || say "could not remove $g (still in use?)"
    done
}

case "$want" in
    v2) try_v2 || die "cannot use cgroup v2: $why_v2" ;;
    v1) try_v1 || die "cannot use cgroup v1: $why_v1" ;;
    auto)
        if ! try_v2; then
            try_v1 || die "cannot limit ${needed[*]}: $why_v2; and $why_v1"
        fi
        ;;
esac

# The command joins the groups in a subshell before it becomes the command, so only it (and
# its children) are limited, not this script, which stays outside to clean up.
(
    for g in "${groups[@]}"; do
        echo "$BASHPID" >"$g/cgroup.procs"
    done
    exec "$@"
) &
child=$!
trap 'kill -TERM "$child" 2>/dev/null || true' TERM
trap 'kill -INT "$child" 2>/dev/null || true' INT
trap 'kill -HUP "$child" 2>/dev/null || true' HUP
rc=0
while :; do
    # (stderr: bash would report a killed command as a job; this script says it better.)
    wait "$child" 2>/dev/null && rc=0 || rc=$?
    kill -0 "$child" 2>/dev/null || break
done
kills=$(oom_kills)
if [ "${kills:-0}" -gt 0 ]; then
    say "the kernel killed '$1' for going over --memory-max $memory (out of memory; exit $rc)"
fi
cleanup
exit "$rc"
