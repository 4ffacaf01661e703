# shellcheck shell=bash
# The MKE 3 node profile of scripts/testbed (sourced by it): turns running hosts h1..hN into MKE 3
# nodes made of real parts. Design and figures: docs/testbed.md, "MKE 3 node profile".
#
#   * Debian's Docker engine (docker.io 20.10, containerd, runc; in the base root) started by
#     Debian's own SysV script /etc/init.d/docker with the flags this VM needs (no bridge, no
#     iptables, vfs storage, oom-score-adjust 0), and started again at every boot of the host;
#   * a real swarm: h1 inits, h2..hM join as managers, the rest as workers;
#   * images imported under MKE 3's names (nothing can be pulled here): mirantis/ucp-etcd holds
#     Debian's etcd and etcdctl, the others ucp-standin (crates/k0s-double), which holds the
#     ports the component holds; ucp-kubelet registers the host's Node with an API server when
#     its kubeconfig is in the ucp-node-certs volume;
#   * the ucp-* containers with MKE 3's names, labels, restart policy, volumes and ports;
#   * ucp-kv on the managers: an etcd cluster of M members with TLS (client and peer certificate
#     auth) from a CA made here, mounted at /etc/docker/ssl in the container, as ferry's etcdctl
#     calls expect.
#
# Needs: the testbed up with N >= M hosts, and the ucp-standin binary (--standin FILE or
# $FERRY_TESTBED_UCP_STANDIN).

readonly MKE3_DEFAULT_VERSION=3.7.15
readonly MKE3_DOCKER_OPTS="--bridge=none --iptables=false --ip-masq=false --storage-driver=vfs --oom-score-adjust=0"
readonly MKE3_ETCD_TOKEN=ucp-kv-testbed

# every host command goes through nsenter (the console), not SSH: the profile is the machine's
# own set-up of the hosts, not something ferry is meant to see
mke3_on() {
  local i=$1 init
  shift
  init=$(init_pid "$i") || die "h$i is not running"
  # 9>&- : the daemons started here (dockerd) must not inherit the testbed's lock
  nsenter -t "$init" -m -u -i -n -p -r -w -- /usr/bin/env -i PATH="$HOST_PATH" \
    HOME=/root LANG=C.UTF-8 "$@" 9>&-
}

# the libraries a binary needs (ldd of this machine: the base is the same Debian release)
mke3_libs_of() {
  ldd "$1" 2>/dev/null | grep -o '/[^ ]*' | sort -u || true
}

# a root file system for `docker import`, as a tar in OUT: the ucp-standin binary STANDIN (may
# be empty) and the given binaries of the base root, with their libraries
mke3_rootfs_tar() {
  local out=$1 standin=$2 d f l
  shift 2
  d=$(mktemp -d)
  mkdir -p "$d/bin" "$d/tmp" "$d/data" "$d/etc/certs" "$d/etc/docker/ssl"
  chmod 1777 "$d/tmp"
  if [ -n "$standin" ]; then
    cp "$standin" "$d/bin/ucp-standin"
    strip "$d/bin/ucp-standin" 2>/dev/null || true
  fi
  for f in "$@"; do cp "$BASE$f" "$d/bin/"; done
  for f in "$d"/bin/*; do
    for l in $(mke3_libs_of "$f"); do
      mkdir -p "$d${l%/*}"
      # the host's copy when the base has it (what the hosts run), else the machine's
      if [ -e "$BASE$l" ]; then cp -L "$BASE$l" "$d$l"; else cp -L "$l" "$d$l"; fi
    done
  done
  tar -C "$d" -cf "$out" .
  rm -rf "$d"
}

# CA, one certificate per manager (server and client use, as MKE 3's node certificates)
mke3_certs() {
  local dir=$1 m=$2 i
  mkdir -p "$dir"
  if [ ! -f "$dir/ca.pem" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
      -subj "/CN=ferry testbed MKE 3 CA" -keyout "$dir/ca-key.pem" -out "$dir/ca.pem" 2>/dev/null
  fi
  for ((i = 1; i <= m; i++)); do
    [ -f "$dir/h$i-cert.pem" ] && continue
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=h$i" \
      -keyout "$dir/h$i-key.pem" -out "$dir/h$i.csr" 2>/dev/null
    openssl x509 -req -in "$dir/h$i.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" \
      -CAcreateserial -days 3650 -out "$dir/h$i-cert.pem" -extfile <(printf '%s\n' \
        "subjectAltName=DNS:h$i,DNS:localhost,IP:$NET.1.$i,IP:127.0.0.1" \
        "extendedKeyUsage=serverAuth,clientAuth" "keyUsage=digitalSignature,keyEncipherment") \
      2>/dev/null
    rm -f "$dir/h$i.csr"
  done
}

# docker with the labels every MKE 3 container carries
mke3_labels() {
  printf -- '--label\0com.docker.ucp.version=%s\0--label\0com.docker.ucp.InstanceID=%s\0' "$1" "$2"
}

# engine, images and volumes of one host (runs in the background, one per host)
mke3_host_engine() {
  local i=$1 dir=$2 version=$3 manager=$4 t
  mke3_on "$i" bash -c "
    set -e
    mkdir -p /etc/ferry-testbed
    printf 'DOCKER_OPTS=\"%s\"\n' '$MKE3_DOCKER_OPTS' >/etc/default/docker
    printf '#!/bin/sh\n# ferry testbed: what the machine starts at boot (MKE 3 node profile)\n/etc/init.d/docker start\n' >/etc/ferry-testbed/boot
    chmod 0755 /etc/ferry-testbed/boot
    /etc/init.d/docker status >/dev/null 2>&1 || /etc/init.d/docker start >/dev/null
    for t in \$(seq 300); do docker info >/dev/null 2>&1 && break; sleep 0.1; done
    docker info >/dev/null" </dev/null
  mke3_on "$i" docker import -c 'ENV PATH=/bin' - "mirantis/ucp-etcd:$version" <"$dir/etcd.tar" >/dev/null
  for t in ucp-agent ucp-controller ucp-auth-store ucp-hyperkube; do
    mke3_on "$i" docker import -c 'ENV PATH=/bin' -c 'ENTRYPOINT ["/bin/ucp-standin"]' - \
      "mirantis/$t:$version" <"$dir/standin.tar" >/dev/null
  done
  mke3_on "$i" docker volume create ucp-node-certs >/dev/null
  mke3_on "$i" install -m 0644 /dev/stdin /var/lib/docker/volumes/ucp-node-certs/_data/ca.pem <"$dir/ca.pem"
  if [ "$manager" = 1 ]; then
    mke3_on "$i" docker volume create ucp-kv-certs >/dev/null
    mke3_on "$i" docker volume create ucp-auth-store-data >/dev/null
    local v=/var/lib/docker/volumes/ucp-kv-certs/_data
    mke3_on "$i" install -m 0644 /dev/stdin "$v/ca.pem" <"$dir/ca.pem"
    mke3_on "$i" install -m 0644 /dev/stdin "$v/cert.pem" <"$dir/h$i-cert.pem"
    mke3_on "$i" install -m 0600 /dev/stdin "$v/key.pem" <"$dir/h$i-key.pem"
    mke3_on "$i" install -m 0644 /dev/stdin /var/lib/docker/volumes/ucp-node-certs/_data/cert.pem <"$dir/h$i-cert.pem"
    mke3_on "$i" install -m 0600 /dev/stdin /var/lib/docker/volumes/ucp-node-certs/_data/key.pem <"$dir/h$i-key.pem"
    printf 'auth-store-h%s\n' "$i" | mke3_on "$i" install -m 0600 /dev/stdin /var/lib/docker/volumes/ucp-auth-store-data/_data/rethinkdb
  fi
}

# runs a ucp-* container as MKE 3 does; "$@" is its command
mke3_run() {
  local i=$1 name=$2 image=$3 version=$4 volumes=$5
  shift 5
  local -a args=(run -d --name "$name" --network host --restart unless-stopped)
  local v
  mapfile -d '' -t labels < <(mke3_labels "$version" "h$i-$name")
  args+=("${labels[@]}")
  for v in $volumes; do args+=(-v "$v"); done
  mke3_on "$i" docker "${args[@]}" "mirantis/$image:$version" "$@" >/dev/null
}

# `testbed mke3 M [--version V] [--standin FILE]`
cmd_mke3() {
  local m=${1:-} version=$MKE3_DEFAULT_VERSION standin=${FERRY_TESTBED_UCP_STANDIN:-} n i
  shift || true
  while [ "$#" -gt 0 ]; do
    case $1 in
      --version) version=${2:?--version needs a value}; shift 2 ;;
      --standin) standin=${2:?--standin needs a file}; shift 2 ;;
      *) die "mke3: unknown argument '$1'" ;;
    esac
  done
  n=$(host_count)
  [ "$n" -gt 0 ] || die "mke3: the testbed is not up (state dir $STATE)"
  if ! [[ $m =~ ^[1-9][0-9]*$ ]] || [ "$m" -gt "$n" ]; then
    die "usage: testbed mke3 MANAGERS [--version V] [--standin FILE] (1 <= MANAGERS <= $n hosts)"
  fi
  [ -n "$standin" ] || die "mke3: no ucp-standin binary: pass --standin FILE or set FERRY_TESTBED_UCP_STANDIN (cargo build -p ferry-k0s-double --bin ucp-standin)"
  [ -x "$standin" ] || die "mke3: $standin is not an executable file"
  [ -x "$BASE/usr/bin/etcd" ] && [ -x "$BASE/usr/sbin/dockerd" ] ||
    die "mke3: the base root $BASE has no Docker engine or etcd (rebuild it: testbed down, then up)"
  for ((i = 1; i <= n; i++)); do
    if [ -f "$STATE/hosts/h$i/base" ] && [ ! -x "$(host_root "$i")/usr/sbin/dockerd" ]; then
      die "mke3: h$i was reimaged to $(host_root "$i"), which has no Docker engine (a fresh OS);" \
        "\`scripts/testbed reimage h$i $BASE\` makes it a base host again"
    fi
  done
  command -v openssl >/dev/null || die "mke3: openssl is needed on this machine"
  take_lock
  local dir=$STATE/mke3 started=$SECONDS
  mkdir -p "$dir"
  mke3_certs "$dir" "$m"
  mke3_rootfs_tar "$dir/etcd.tar" "" /usr/bin/etcd /usr/bin/etcdctl /bin/sh /bin/rm /bin/ls /bin/cat
  mke3_rootfs_tar "$dir/standin.tar" "$standin"

  # engines, images and volumes, all hosts at once
  local -a pids=()
  for ((i = 1; i <= n; i++)); do
    mke3_host_engine "$i" "$dir" "$version" "$([ "$i" -le "$m" ] && echo 1 || echo 0)" &
    pids+=($!)
  done
  local bad=0
  for i in "${pids[@]}"; do wait "$i" || bad=1; done
  [ "$bad" = 0 ] || die "mke3: starting the Docker engines failed (each host's log: /var/log/docker.log)"
  log "mke3: Docker engines up on h1..h$n ($((SECONDS - started)) s)"

  # the swarm
  local state
  state=$(mke3_on 1 docker info --format '{{.Swarm.LocalNodeState}}')
  if [ "$state" != active ]; then
    mke3_on 1 docker swarm init --advertise-addr "$NET.1.1" >/dev/null
  fi
  local mtok wtok
  mtok=$(mke3_on 1 docker swarm join-token -q manager)
  wtok=$(mke3_on 1 docker swarm join-token -q worker)
  for ((i = 2; i <= n; i++)); do
    state=$(mke3_on "$i" docker info --format '{{.Swarm.LocalNodeState}}')
    [ "$state" = active ] && continue
    if [ "$i" -le "$m" ]; then
      mke3_on "$i" docker swarm join --token "$mtok" --advertise-addr "$NET.1.$i" "$NET.1.1:2377" >/dev/null
    else
      mke3_on "$i" docker swarm join --token "$wtok" --advertise-addr "$NET.1.$i" "$NET.1.1:2377" >/dev/null
    fi
  done
  log "mke3: swarm of $m managers and $((n - m)) workers ($((SECONDS - started)) s)"

  # ucp-kv: one etcd member per manager
  local cluster="" ssl=/etc/docker/ssl
  for ((i = 1; i <= m; i++)); do cluster+="${cluster:+,}h$i=https://$NET.1.$i:12380"; done
  for ((i = 1; i <= m; i++)); do
    mke3_on "$i" docker container inspect ucp-kv >/dev/null 2>&1 && continue
    mke3_run "$i" ucp-kv ucp-etcd "$version" "ucp-kv:/data ucp-kv-certs:$ssl:ro" \
      etcd --name "h$i" --data-dir /data/datav3 \
      --listen-client-urls "https://0.0.0.0:12379" --advertise-client-urls "https://$NET.1.$i:12379" \
      --listen-peer-urls "https://0.0.0.0:12380" --initial-advertise-peer-urls "https://$NET.1.$i:12380" \
      --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "$MKE3_ETCD_TOKEN" \
      --cert-file "$ssl/cert.pem" --key-file "$ssl/key.pem" --trusted-ca-file "$ssl/ca.pem" --client-cert-auth \
      --peer-cert-file "$ssl/cert.pem" --peer-key-file "$ssl/key.pem" --peer-trusted-ca-file "$ssl/ca.pem" \
      --peer-client-cert-auth
  done
  local t ok=0
  for ((t = 0; t < 300; t++)); do
    if mke3_on 1 docker exec ucp-kv etcdctl --endpoints=https://127.0.0.1:12379 --cacert=$ssl/ca.pem \
      --cert=$ssl/cert.pem --key=$ssl/key.pem endpoint health --cluster >/dev/null 2>&1; then
      ok=1
      break
    fi
    sleep 0.2
  done
  [ "$ok" = 1 ] || die "mke3: ucp-kv's etcd cluster is not healthy after 60 s (docker logs ucp-kv on h1)"
  log "mke3: ucp-kv etcd cluster of $m members healthy ($((SECONDS - started)) s)"

  # the other ucp-* containers, with the ports MKE 3 holds
  pids=()
  for ((i = 1; i <= n; i++)); do
    (
      run_missing() {
        local name=$1
        mke3_on "$i" docker container inspect "$name" >/dev/null 2>&1 && return 0
        mke3_run "$i" "$@"
      }
      role=worker
      if [ "$i" -le "$m" ]; then role=manager; fi
      run_missing ucp-agent ucp-agent "$version" "" hold
      run_missing ucp-kubelet ucp-hyperkube "$version" "ucp-node-certs:/etc/certs" \
        kubelet --kubeconfig /etc/certs/kubeconfig --node-name "h$i" --role "$role" 10250
      if [ "$role" = manager ]; then
        run_missing ucp-proxy ucp-agent "$version" "ucp-node-certs:/etc/certs" hold 443 6443 12376
        run_missing ucp-controller ucp-controller "$version" "ucp-node-certs:/etc/certs" hold 12381 12382
        run_missing ucp-auth-store ucp-auth-store "$version" "ucp-auth-store-data:/var/data" hold 12383 12384
        run_missing ucp-kube-apiserver ucp-hyperkube "$version" "ucp-node-certs:/etc/certs" hold 12388
      else
        run_missing ucp-proxy ucp-agent "$version" "ucp-node-certs:/etc/certs" hold 12376
      fi
    ) &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || bad=1; done
  [ "$bad" = 0 ] || die "mke3: starting the ucp-* containers failed"
  printf '%s %s\n' "$m" "$version" >"$STATE/mke3/profile"
  log "mke3: MKE $version on h1..h$n ($m managers) in $((SECONDS - started)) s"
}
