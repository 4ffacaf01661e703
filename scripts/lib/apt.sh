# Shared by scripts/testbed and testenv/k8s/ctl (sourced): apt-get that waits for the apt and dpkg
# locks instead of failing on them. The sourcing script defines log MESSAGE.

# apt and dpkg locks. apt-get waits for the dpkg ones (lock-frontend, lock) with DPkg::Lock::Timeout,
# but takes lists/lock (update) and archives/lock without waiting (apt 2.6 to 3.1 at least).
readonly APT_LOCK_WAIT=600
readonly -a APT_LOCKS=(/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock
  /var/cache/apt/archives/lock)

# a process holds one of the lock files open (fuser cannot see every process, e.g. in a container)
apt_locks_held() { command -v fuser >/dev/null 2>&1 && fuser "${APT_LOCKS[@]}" >/dev/null 2>&1; }

# apt_get LOG ARG..: apt-get ARG.. (noninteractive), output appended to LOG. Waits up to
# $APT_LOCK_WAIT s in all for another apt/dpkg instead of failing on its lock: while fuser sees a
# lock held, then through DPkg::Lock::Timeout, and retries when apt-get still failed on a lock.
apt_get() {
  local out=$1 deadline=$((SECONDS + APT_LOCK_WAIT)) err rc lock lock_timeout
  shift
  local -a pats=()
  for lock in "${APT_LOCKS[@]}"; do pats+=(-e "$lock"); done
  while :; do
    if apt_locks_held; then
      log "waiting for another apt/dpkg to release its lock (up to $((deadline - SECONDS)) s)"
      while apt_locks_held && [ "$SECONDS" -lt "$deadline" ]; do sleep 2; done
    fi
    lock_timeout=$((deadline > SECONDS ? deadline - SECONDS : 1))
    rc=0
    # stdout to $out, stderr captured (and then appended to $out) to see whether a lock failed
    {
      err=$(DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$lock_timeout" "$@" 2>&1 1>&3 3>&-) ||
        rc=$?
    } 3>>"$out"
    [ -z "$err" ] || printf '%s\n' "$err" >>"$out"
    if [ "$rc" -eq 0 ] || [ "$SECONDS" -ge "$deadline" ] || ! grep -qF "${pats[@]}" <<<"$err"; then
      return "$rc"
    fi
    log "apt-get $1: another apt/dpkg holds a lock; waiting"
    sleep 5
  done
}

# apt_install LOG PKG..: apt-get update, then install PKG.. without recommends.
apt_install() {
  local out=$1
  shift
  apt_get "$out" update && apt_get "$out" install -y --no-install-recommends "$@"
}
