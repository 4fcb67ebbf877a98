# shellcheck shell=bash
# Generic helpers for the project's scripts: messages, quoting, processes,
# ports and mounts. Sourced, never run; every function is side-effect free
# unless its name says otherwise (stop_pid, unmount_under).

# --- Messages -----------------------------------------------------------------

say() { printf '%s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# show_log_tail FILE [LINES]: print the end of a log file, indented.
show_log_tail() {
  local file=$1 lines=${2:-25}
  [[ -f $file ]] || return 0
  say "--- last $lines lines of $file ---"
  tail -n "$lines" "$file" | sed 's/^/    /' >&2
  say "---"
}

# --- Quoting ------------------------------------------------------------------

# sh_quote VALUE: VALUE in single quotes, safe for eval in sh and bash.
sh_quote() {
  local q="'\\''"
  printf "'%s'" "${1//\'/$q}"
}

# random_alnum N: N random letters and digits.
random_alnum() {
  local n=$1 out=''
  while ((${#out} < n)); do
    out+=$(head -c 64 /dev/urandom | LC_ALL=C tr -dc 'A-Za-z0-9')
  done
  printf '%s' "${out:0:n}"
}

# --- Debian packages ----------------------------------------------------------

# package_version NAME: the installed version of Debian package NAME, or nothing.
package_version() {
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]] || return 0
  dpkg-query -W -f='${Version}' "$1" 2>/dev/null
}

# package_meets SPEC: SPEC (NAME, or NAME>=VERSION) is installed, at VERSION or newer.
package_meets() {
  local name=${1%%>=*} min have
  have=$(package_version "$name")
  [[ -n $have ]] || return 1
  [[ $1 == *'>='* ]] || return 0
  min=${1#*>=}
  dpkg --compare-versions "$have" ge "$min"
}

# rust_floor: the rust-version berth's Cargo.toml declares, the oldest Rust that builds it.
rust_floor() {
  local manifest v
  manifest=$(dirname "${BASH_SOURCE[0]}")/../../Cargo.toml
  v=$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' "$manifest" | head -n 1)
  [[ -n $v ]] || die "$manifest declares no rust-version"
  printf '%s' "$v"
}

# The lock every apt_ensure takes, so that two of the project's scripts running at once
# (the demo starts the test bed and the build side by side) take turns instead of failing
# on apt's own lock. Under /run: only root can create files there.
APT_LOCK=/run/berth-apt.lock

# package_candidate NAME: the version apt would install for NAME, or nothing.
package_candidate() {
  apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p' | grep -v '^(none)$' || true
}

# spec_problem SPEC OFFERED: what is wrong with SPEC (NAME, or NAME>=VERSION), given the
# version the package lists offer, in words: "NAME: 1.2 installed, 1.3 or newer needed".
spec_problem() {
  local name=${1%%>=*} found offered=$2
  found=$(package_version "$name")
  if [[ $1 != *'>='* ]]; then
    printf '%s: not installed, the package lists offer %s' "$name" "${offered:-none}"
  elif [[ -n $found ]]; then
    printf '%s: %s installed, %s or newer needed' "$name" "$found" "${1#*>=}"
  else
    printf '%s: not installed, the package lists offer %s, %s or newer needed' \
      "$name" "${offered:-none}" "${1#*>=}"
  fi
}

# apt_ensure LOG SPEC...: make sure every Debian package SPEC (NAME, or NAME>=VERSION)
# is installed at the version it needs. When one is not, the package lists are refreshed
# first (a machine's lists may be months old: installing from them picks old versions
# even when the mirror has new ones), and what they offer is checked before anything is
# installed: a machine whose suites have no version new enough is told so at once (what
# it has, what is needed, what to run; APT_HINT, when set, says where the packages come
# from) rather than after installing one too old. Then the packages are installed or
# upgraded, and every SPEC is checked again.
apt_ensure() {
  local log=$1 spec needed=() pkgs=() offered problems=()
  shift
  for spec in "$@"; do package_meets "$spec" || needed+=("$spec"); done
  ((${#needed[@]})) || return 0
  for spec in "${needed[@]}"; do pkgs+=("${spec%%>=*}"); done
  ((EUID == 0)) || die "Debian packages missing or too old: ${needed[*]}; run as root, or: sudo apt-get update && sudo apt-get install -y ${pkgs[*]}"
  say "installing Debian packages: ${needed[*]}"
  mkdir -p "$(dirname "$log")"
  {
    flock -w 900 9 || die "another apt-get held $APT_LOCK for 15 minutes"
    if ! DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$log" 2>&1; then
      show_log_tail "$log" 10
      warn "apt-get update failed (above); installing from the package lists as they are"
    fi
    for spec in "${needed[@]}"; do
      offered=$(package_candidate "${spec%%>=*}")
      if [[ -z $offered ]] ||
        { [[ $spec == *'>='* ]] && ! dpkg --compare-versions "$offered" ge "${spec#*>=}"; }; then
        problems+=("$(spec_problem "$spec" "$offered")")
      fi
    done
    if ((${#problems[@]} == 0)) &&
      ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 "${pkgs[@]}" >>"$log" 2>&1; then
      show_log_tail "$log" 15
      die "could not install ${pkgs[*]}. Check the mirrors in /etc/apt/sources.list.d/, then run: apt-get update && apt-get install -y ${pkgs[*]}"
    fi
  } 9>"$APT_LOCK"
  if ((${#problems[@]} == 0)); then
    pkgs=()
    for spec in "${needed[@]}"; do
      package_meets "$spec" && continue
      pkgs+=("${spec%%>=*}")
      problems+=("$(spec_problem "$spec" "$(package_candidate "${spec%%>=*}")")")
    done
    ((${#problems[@]} == 0)) && return 0
  fi
  offered=$(printf '%s; ' "${problems[@]}")
  die "after apt-get update, ${offered%; }. ${APT_HINT:-The package lists offer no newer version (apt-cache policy ${pkgs[*]} shows what each suite has): add a suite that has one to /etc/apt/sources.list.d/}, then run: apt-get update && apt-get install -y ${pkgs[*]}"
}

# --- Machines -----------------------------------------------------------------

# host_arch: this machine's architecture as berth's binaries are named (x86_64, aarch64).
host_arch() {
  local m
  m=$(uname -m)
  case $m in
    x86_64 | aarch64) printf '%s' "$m" ;;
    arm64) printf 'aarch64' ;;
    *) die "berth's binaries are built for x86_64 and aarch64; this machine is $m" ;;
  esac
}

# --- Processes ----------------------------------------------------------------

# read_pid FILE: the pid stored in FILE, or nothing.
read_pid() {
  local pid=''
  if [[ -f $1 ]]; then read -r pid <"$1" 2>/dev/null || true; fi
  [[ $pid =~ ^[0-9]+$ ]] && printf '%s' "$pid"
  return 0
}

# pid_has_arg PID ARG: process PID is alive and ARG is one of its argv words.
pid_has_arg() {
  local pid=$1 arg=$2
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$arg"
}

# live_pid FILE ARG: print the pid in FILE if that process is alive and has
# ARG on its command line (so a recycled pid is never mistaken for ours).
live_pid() {
  local pid
  pid=$(read_pid "$1")
  pid_has_arg "$pid" "$2" && printf '%s' "$pid"
  return 0
}

# stop_pid PID ARG NAME [TIMEOUT]: SIGTERM, wait up to TIMEOUT s, then SIGKILL.
# Does nothing unless PID still is the process we mean (ARG in its argv).
stop_pid() {
  local pid=$1 arg=$2 name=$3 timeout=${4:-20}
  pid_has_arg "$pid" "$arg" || return 0
  say "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || return 0
  if ! wait_until "$timeout" pid_gone "$pid"; then
    warn "$name (pid $pid) ignored SIGTERM for ${timeout}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_until 10 pid_gone "$pid" || die "$name (pid $pid) survived SIGKILL"
  fi
}

# kill_children PID: SIGKILL the direct children of PID.
kill_children() {
  local child
  for child in $(ps -o pid= --ppid "$1"); do
    say "killing pid $child ($(tr '\0' ' ' <"/proc/$child/cmdline" 2>/dev/null | cut -c1-60)), child of $1"
    kill -KILL "$child" 2>/dev/null || true
  done
}

pid_gone() { [[ ! -e /proc/$1 ]] || [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) == Z ]]; }

# wait_until TIMEOUT CMD...: poll CMD every 0.2 s until it succeeds (0) or
# TIMEOUT seconds have passed (1).
wait_until() {
  local timeout=$1 deadline
  shift
  deadline=$((SECONDS + timeout))
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# --- Ports --------------------------------------------------------------------

# port_listeners PORT: the `ss` lines of TCP listeners on PORT (any address).
port_listeners() {
  ss -Hltnp "( sport = :$1 )" 2>/dev/null
}

# port_owned_by PORT PID: PID is among the processes listening on PORT.
port_owned_by() {
  port_listeners "$1" | grep -q "pid=$2,"
}

# --- Mounts -------------------------------------------------------------------

# mounts_under DIR: mount points at or below DIR, deepest first.
mounts_under() {
  local dir=${1%/}
  findmnt -rn -o TARGET 2>/dev/null |
    awk -v d="$dir" 'index($0, d "/") == 1 || $0 == d' | sort -r
}

# unmount_under DIR: unmount everything mounted at or below DIR (and only there).
unmount_under() {
  local m
  while read -r m; do
    [[ -n $m ]] || continue
    say "unmounting leftover mount $m"
    umount "$m" 2>/dev/null || umount -l "$m" || warn "could not unmount $m"
  done < <(mounts_under "$1")
}
