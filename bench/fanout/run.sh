#!/usr/bin/env bash
# SSH fan-out benchmark: one command on every testbed host through ferry (cold, and warm over
# open connections), parallel-ssh, Ansible (ansible-core, forks = N) and a plain ssh loop, all in
# the same run, on N testbed hosts. Prints a Markdown table with ratios (the format of
# docs/benchmarks.md, section "SSH fan-out").
#
#   sudo bench/fanout/run.sh [N...]          # default: 10 50
#
# Needs root (the testbed). Installs what is missing: pssh (parallel-ssh) with apt, ansible-core
# from PyPI into a venv under $FERRY_BENCH_STATE (default /var/lib/ferry-bench). Brings the
# testbed up with N hosts for each N and leaves it as it found it (down unless it was up).
#
# Every tool uses the same ssh settings: the testbed's ssh_config (key, known_hosts with strict
# checking, curve25519-sha256 key exchange), user root. Cold runs open new connections every
# time (ControlMaster=no for Ansible). ferry's warm figure is one round on connections already
# open inside the process, timed in the process (10 rounds, median).
#
# Cold runs are interleaved across the tools (bench/fanout/measure.py), so that load from other
# processes on a shared machine falls on all of them alike.
#
# Environment: RUNS_10 / RUNS_50 (runs per tool, default 10 / 10), WARMUP (default 1).
set -euo pipefail

root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
[ "$(id -u)" = 0 ] || { echo "bench/fanout/run.sh: needs root (the SSH testbed)" >&2; exit 2; }

sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10 50)
state=${FERRY_BENCH_STATE:-/var/lib/ferry-bench}
out=${FERRY_BENCH_OUT:-$root/target/bench-fanout}
mkdir -p "$state" "$out"

# --- peers ---------------------------------------------------------------------------------
# apt and dpkg locks. apt-get waits for the dpkg ones (lock-frontend, lock) with DPkg::Lock::Timeout,
# but takes lists/lock (update) and archives/lock without waiting (apt 2.6 to 3.1 at least).
apt_lock_wait=600
apt_locks=(/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock
  /var/cache/apt/archives/lock)

# a process holds one of the lock files open (fuser cannot see every process, e.g. in a container)
apt_locks_held() { command -v fuser >/dev/null 2>&1 && fuser "${apt_locks[@]}" >/dev/null 2>&1; }

# apt_get ARG..: apt-get ARG.. (noninteractive). Waits up to $apt_lock_wait s in all for another
# apt/dpkg instead of failing on its lock: while fuser sees a lock held, then through
# DPkg::Lock::Timeout, and retries when apt-get still failed on a lock.
apt_get() {
  local deadline=$((SECONDS + apt_lock_wait)) err rc lock lock_timeout
  local -a pats=()
  for lock in "${apt_locks[@]}"; do pats+=(-e "$lock"); done
  while :; do
    if apt_locks_held; then
      echo "== waiting for another apt/dpkg to release its lock (up to $((deadline - SECONDS)) s)" >&2
      while apt_locks_held && [ "$SECONDS" -lt "$deadline" ]; do sleep 2; done
    fi
    lock_timeout=$((deadline > SECONDS ? deadline - SECONDS : 1))
    rc=0
    # stdout passes through, stderr is captured (and then printed) to see whether a lock failed
    {
      err=$(DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$lock_timeout" "$@" 2>&1 1>&3 3>&-) ||
        rc=$?
    } 3>&1
    [ -z "$err" ] || printf '%s\n' "$err" >&2
    if [ "$rc" -eq 0 ] || [ "$SECONDS" -ge "$deadline" ] || ! grep -qF "${pats[@]}" <<<"$err"; then
      return "$rc"
    fi
    echo "== apt-get $1: another apt/dpkg holds a lock; waiting" >&2
    sleep 5
  done
}

missing=()
command -v parallel-ssh >/dev/null || missing+=(pssh)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]} (apt)" >&2
  apt_get update -qq
  apt_get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -x "$state/venv/bin/ansible" ]; then
  echo "== installing ansible-core (PyPI) into $state/venv" >&2
  python3 -m venv "$state/venv"
  "$state/venv/bin/pip" install -q ansible-core
fi
ansible_version=$("$state/venv/bin/ansible" --version 2>&1 | sed -n 1p)
pssh_version=$(parallel-ssh --version 2>&1 | sed -n 1p)

# --- ferry ---------------------------------------------------------------------------------
echo "== building ferry's fan-out program (release)" >&2
cargo build -q --release -p ferry-ssh-exec --example fanout
fanout=${CARGO_TARGET_DIR:-$root/target}/release/examples/fanout

was_up=0
if scripts/testbed status >/dev/null 2>&1; then was_up=$(cat .testbed/count 2>/dev/null || echo 0); fi

cleanup() {
  if [ "$was_up" = 0 ]; then
    scripts/testbed down >/dev/null 2>&1 || true
  else
    scripts/testbed up "$was_up" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

results=()
for n in "${sizes[@]}"; do
  echo "== testbed with $n hosts" >&2
  scripts/testbed up "$n" >/dev/null
  tb=$(cd .testbed && pwd)
  cfg=$tb/ssh_config
  work=$out/n$n
  rm -rf "$work" && mkdir -p "$work"
  # Inputs of every tool, all for user root with the testbed key and known_hosts.
  : >"$work/hosts.txt"
  echo "hosts:" >"$work/hosts.yaml"
  {
    echo "[all]"
  } >"$work/inventory.ini"
  for ((i = 1; i <= n; i++)); do
    a=10.123.1.$i
    echo "$a" >>"$work/hosts.txt"
    printf '  - address: %s\n    user: root\n    keyPath: %s\n' "$a" "$tb/id_ed25519" >>"$work/hosts.yaml"
    echo "$a" >>"$work/inventory.ini"
  done
  cat >>"$work/inventory.ini" <<EOF
[all:vars]
ansible_user=root
ansible_python_interpreter=/usr/bin/python3
ansible_ssh_common_args=-F $cfg -o ControlMaster=no
EOF
  cat >"$work/loop.sh" <<EOF
#!/usr/bin/env bash
# plain ssh loop: one ssh per host in the background, then wait for each.
pids=()
while read -r h; do ssh -F $cfg -n root@"\$h" "\$@" >/dev/null & pids+=(\$!); done <$work/hosts.txt
rc=0; for p in "\${pids[@]}"; do wait "\$p" || rc=1; done; exit \$rc
EOF
  chmod +x "$work/loop.sh"
  printf '[defaults]\n' >"$work/ansible.cfg"
  runs=$([ "$n" -ge 50 ] && echo "${RUNS_50:-10}" || echo "${RUNS_10:-10}")
  export ANSIBLE_PIPELINING=True ANSIBLE_HOST_KEY_CHECKING=True ANSIBLE_SSH_ARGS="-o ControlMaster=no" \
    ANSIBLE_LOCAL_TEMP="$work/ansible-tmp" ANSIBLE_CONFIG="$work/ansible.cfg" ANSIBLE_NOCOLOR=1

  for c in "true" "cat /etc/os-release"; do
    tag=$([ "$c" = true ] && echo true || echo os-release)
    echo "== N=$n: $c" >&2
    python3 bench/fanout/measure.py --warmup "${WARMUP:-1}" --runs "$runs" --out "$work/$tag.json" \
      "ferry=$fanout --hosts-path $work/hosts.yaml --ssh-config $cfg --known-hosts $tb/known_hosts --cmd '$c'" \
      "parallel-ssh=parallel-ssh -p $n -t 60 -h $work/hosts.txt -l root -x '-F $cfg' '$c'" \
      "ansible=$state/venv/bin/ansible all -i $work/inventory.ini -f $n -m command -a '$c'" \
      "ssh-loop=$work/loop.sh $c"
    # ferry warm: rounds over open connections, timed in the process.
    "$fanout" --hosts-path "$work/hosts.yaml" --ssh-config "$cfg" --known-hosts "$tb/known_hosts" \
      --cmd "$c" --warm-rounds 10 >"$work/$tag.warm.json"
    results+=("$n $tag $work")
  done
done

python3 - "$ansible_version" "$pssh_version" "${results[@]}" <<'PY'
import json, sys
ansible, pssh = sys.argv[1], sys.argv[2]
rows = []
for arg in sys.argv[3:]:
    n, tag, work = arg.split(" ", 2)
    r = {x["command"]: x for x in json.load(open(f"{work}/{tag}.json"))["results"]}
    w = json.load(open(f"{work}/{tag}.warm.json"))
    rows.append((int(n), tag, r, w))
cmd = {"true": "`true`", "os-release": "`cat /etc/os-release`"}
print(f"Peers: parallel-ssh {pssh}; {ansible}; OpenSSH {__import__('subprocess').run(['ssh','-V'],capture_output=True,text=True).stderr.split(',')[0]}.")
print()
print("| N | command | ferry cold | parallel-ssh | Ansible | ssh loop | ferry / parallel-ssh | ferry / Ansible | ferry warm round (ms) |")
print("|---|---|---|---|---|---|---|---|---|")
def cell(x):
    return f"{x['min']:.2f} / {x['median']:.2f}"
for n, tag, r, w in rows:
    f, p, a, l = r["ferry"], r["parallel-ssh"], r["ansible"], r["ssh-loop"]
    print(f"| {n} | {cmd[tag]} | {cell(f)} | {cell(p)} | {cell(a)} | {cell(l)} | "
          f"{f['median']/p['median']:.2f} | {f['median']/a['median']:.2f} | "
          f"{w['warm_min_ms']:.0f} / {w['warm_median_ms']:.0f} |")
print()
print("Cold columns: wall seconds per run, min / median, runs interleaved across tools (measure.py). Ratios: medians.")
print("ferry warm: one round on open connections inside the process, ms, min / median of 10.")
for n, tag, r, w in rows:
    for name, x in r.items():
        if x.get("failures"):
            print(f"- N={n} {tag}: {name} failed {x['failures']} run(s) (some host did not answer); those runs are not in the times")
for n, tag, r, w in rows:
    print(f"- N={n} {tag}: ferry in-process phases (ms): connect {w['connect_ms']:.0f}, first round {w['first_round_ms']:.0f}, close {w['close_ms']:.0f}, total {w['total_ms']:.0f}")
PY
