#!/usr/bin/env bash
# A two-node FastOverlay lab in network namespaces, on real (veth) interfaces.
#
#   pod p11 10.244.1.2 ─┐                                        ┌─ pod p21 10.244.2.2
#   pod p12 10.244.1.3 ─┤ node n1 ── underlay veth ── node n2    ├─ pod p22 10.244.2.3
#                         172.31.77.1/24          172.31.77.2/24
#
# Modes (what forwards on each node):
#   kernel       both nodes as flannel leaves them: bridge cbr0 holding the gateway 10.244.N.1/24, ip_forward=1,
#                flannel.1 (VXLAN VNI 1, port 8472, nolearning) with flannel's route, neighbour and FDB entries.
#   fastoverlay  both nodes run `fastoverlay run --config nodeN.json`; pod veths are plain (no bridge, no IP on the
#                host ends); the node kernel keeps only the underlay address, which FastOverlay's UDP socket uses.
#   mixed        node1 FastOverlay, node2 kernel flannel-style: the interop case.
#
# With LAB_CLIENT=1 the underlay is a bridge instead of one veth pair, with a client outside the cluster on it:
#
#   node n1 172.31.77.1 ── $P-f1 ┐
#   node n2 172.31.77.2 ── $P-f2 ├─ bridge $P-br in the fabric namespace $P-f
#   client c 172.31.77.100 ─ $P-fc ┘     (client route: 172.31.200.0/24, the LoadBalancer IPs, via 172.31.77.1)
#
# so that NodePorts and LoadBalancer IPs can be reached from a host that is neither a node nor a pod.
#
# Every name carries a per-run prefix (LAB_PREFIX, default fo<pid>), so parallel labs and leftovers of a killed one
# never collide, and `down` removes exactly what carries the prefix: namespaces (and with them every veth), links
# left in the root namespace, every process inside the lab's namespaces, and the state directory.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: lab.sh up MODE [--no-start]   MODE = kernel | fastoverlay | mixed; prints LAB_PREFIX=... first
       lab.sh down                   remove the lab named by LAB_PREFIX (or the only lab there is)
       lab.sh status                 list labs, their namespaces, addresses and FastOverlay processes
       lab.sh exec NAME CMD...       run CMD in namespace NAME = n1 | n2 | p11 | p12 | p21 | p22 (and f | c with LAB_CLIENT=1)
       lab.sh start N | stop N       start / stop (SIGTERM, final counters to the log) FastOverlay on node N
       lab.sh env                    print the lab's names and paths as shell variables
environment:
  LAB_PREFIX          run prefix, [a-z][a-z0-9]{1,9}; default fo<pid of this script>
  LAB_STATE_ROOT      where state directories go (default /tmp); each lab uses $LAB_STATE_ROOT/fastoverlay-lab.<prefix>
  FASTOVERLAY_DLL     fastoverlay.dll to run (default src/FastOverlay.Cli/bin/Release/net10.0/fastoverlay.dll)
  LAB_READY_TIMEOUT   seconds to wait for `ready` from each FastOverlay process (default 60)
  LAB_OFFLOADS        default: every veth keeps the offloads Linux gives it (TSO, GSO, checksum offload), as
                      Kubernetes leaves pods; off: ethtool -K rx/tx/tso/gso/gro off on every veth (the old lab)
  LAB_UNDERLAY_USO    off: tx-udp-segmentation off on the underlay veths, so UDP GSO sends are cut before the
                      "wire" as for a NIC without USO (the lab tests use it for their captures); default: as Linux gives it
  LAB_RUN_FLAGS       extra flags for `fastoverlay run` on both nodes (e.g. "--workers 1 --idle-spin-us 0")
  LAB_HOST            1: each FastOverlay node gets a host port (Node.HostInterface fohost-fo; its peer fohost in the
                      node's stack holds 10.244.N.0/32 and routes 10.244.0.0/16 and 10.96.0.0/12 through it), ip_forward on and
                      flannel's ip-masq rule in an nftables table: the node reaches pods, pods reach the node and beyond
  LAB_CLIENT          1: the underlay is a bridge in a fabric namespace (<prefix>-f) joining the nodes and a client
                      namespace (<prefix>-c, 172.31.77.100/24, eth0) outside the cluster, with a route for the
                      LoadBalancer IPs 172.31.200.0/24 via node1 (172.31.77.1); default 0: one veth pair, no client
--no-start writes the FastOverlay config files but starts nothing: start them by hand (see the printed commands).
EOF
}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
STATE_ROOT=${LAB_STATE_ROOT:-/tmp}
DLL=${FASTOVERLAY_DLL:-$REPO/src/FastOverlay.Cli/bin/Release/net10.0/fastoverlay.dll}
READY_TIMEOUT=${LAB_READY_TIMEOUT:-60}

NETWORK=10.244.0.0/16
SERVICE_NET=10.96.0.0/12   # Kubernetes' default service CIDR: the lab's ClusterIPs
UNDERLAY_NET=172.31.77
PORT=8472
VNI=1
MTU=1450   # underlay 1500 - 50 bytes of VXLAN (RFC 7348); flannel's FLANNEL_MTU
CLIENT_IP=$UNDERLAY_NET.100
LB_NET=172.31.200.0/24     # where the client finds LoadBalancer IPs: behind node1, as a cloud LB would forward them

die() { echo "lab.sh: $*" >&2; exit 1; }

state_dir() { echo "$STATE_ROOT/fastoverlay-lab.$1"; }

# The prefix `down`, `status`, `exec`... act on: LAB_PREFIX, else the only lab whose state directory exists.
resolve_prefix() {
  if [ -n "${LAB_PREFIX:-}" ]; then P=$LAB_PREFIX; return; fi
  local dirs=("$STATE_ROOT"/fastoverlay-lab.*)
  [ -e "${dirs[0]}" ] || die "no lab found in $STATE_ROOT (set LAB_PREFIX)"
  [ ${#dirs[@]} -eq 1 ] || die "several labs (${dirs[*]##*/fastoverlay-lab.}); set LAB_PREFIX"
  P=${dirs[0]##*/fastoverlay-lab.}
}

check_prefix() {
  [[ $P =~ ^[a-z][a-z0-9]{1,9}$ ]] || die "LAB_PREFIX '$P' must match [a-z][a-z0-9]{1,9} (interface names stay <= 15 chars)"
}

# Names, all derived from the prefix. Interfaces are created directly inside their namespaces, and still carry the
# prefix so a capture or a leftover says whose it is. Longest: <prefix 10>-v11 = 14 characters.
names() {
  S=$(state_dir "$P")
  NS_N1=$P-n1; NS_N2=$P-n2
  U1=$P-u1; U2=$P-u2
  NS_F=$P-f; NS_C=$P-c; BR=$P-br   # LAB_CLIENT=1 only: the fabric (bridge) and the client outside the cluster
}
has_client() { [ -f "$S/client" ]; }
ns_node() { echo "$P-n$1"; }
ns_pod() { echo "$P-p$1$2"; }          # node, pod index
veth_host() { echo "$P-v$1$2"; }       # host end of pod veth, in the node namespace
pod_ip() { echo "10.244.$1.$(( $2 + 1 ))"; }
pod_mac() { printf '0a:58:0a:f4:%02x:%02x\n' "$1" $(( $2 + 1 )); }   # CNI style: 0a:58 + the IPv4 address
vtep_mac() { printf '0a:58:0a:f4:%02x:00\n' "$1"; }
public_ip() { echo "$UNDERLAY_NET.$1"; }
other() { echo $(( 3 - $1 )); }
node_mode() {   # what runs on node N in MODE
  case "$MODE" in
    kernel) echo kernel ;;
    fastoverlay) echo fastoverlay ;;
    mixed) [ "$1" = 1 ] && echo fastoverlay || echo kernel ;;
  esac
}

# A redirection on a function call redirects the shell itself while the function runs (a trap firing then would
# print into it): redirect external commands only, as `ip netns exec` below.
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

offloads_off() {   # only with LAB_OFFLOADS=off: by default pods keep TSO and checksum offload, as on a real node
  case "${LAB_OFFLOADS:-default}" in
    default) return 0 ;;
    off) ;;
    *) die "LAB_OFFLOADS must be default or off, not ${LAB_OFFLOADS}" ;;
  esac
  ip netns exec "$1" ethtool -K "$2" rx off tx off tso off gso off gro off >/dev/null 2>&1 || \
    ip netns exec "$1" ethtool -K "$2" rx off tx off tso off gso off >/dev/null
}

new_ns() {
  ip netns add "$1"
  # No IPv6: no router solicitations, MLD or DAD frames in the captures and counters.
  ip netns exec "$1" sh -c 'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6' 2>/dev/null || true
  in_ns "$1" ip link set lo up
}

make_pod() {   # node N, pod K
  local n=$1 k=$2 ns pod_ns host
  ns=$(ns_node "$n"); pod_ns=$(ns_pod "$n" "$k"); host=$(veth_host "$n" "$k")
  new_ns "$pod_ns"
  ip link add "$host" netns "$ns" type veth peer name eth0 netns "$pod_ns"
  in_ns "$pod_ns" ip link set eth0 address "$(pod_mac "$n" "$k")" mtu $MTU
  in_ns "$ns" ip link set "$host" mtu $MTU
  offloads_off "$pod_ns" eth0
  offloads_off "$ns" "$host"
  in_ns "$pod_ns" ip addr add "$(pod_ip "$n" "$k")/24" dev eth0
  in_ns "$pod_ns" ip link set eth0 up
  in_ns "$ns" ip link set "$host" up
  in_ns "$pod_ns" ip route add default via "10.244.$n.1"
}

# Node N the way flannel's VXLAN backend and the bridge CNI plugin leave it.
kernel_node() {
  local n=$1 m ns
  m=$(other "$n"); ns=$(ns_node "$n")
  in_ns "$ns" sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'
  in_ns "$ns" ip link add cbr0 type bridge
  in_ns "$ns" ip link set cbr0 mtu $MTU
  in_ns "$ns" ip addr add "10.244.$n.1/24" dev cbr0
  in_ns "$ns" ip link set cbr0 up
  for k in 1 2; do in_ns "$ns" ip link set "$(veth_host "$n" "$k")" master cbr0; done
  in_ns "$ns" ip link add flannel.1 type vxlan id $VNI dev "$P-u$n" local "$(public_ip "$n")" dstport $PORT nolearning
  in_ns "$ns" ip link set flannel.1 address "$(vtep_mac "$n")" mtu $MTU
  in_ns "$ns" ip addr add "10.244.$n.0/32" dev flannel.1
  in_ns "$ns" ip link set flannel.1 up
  in_ns "$ns" ip route add "10.244.$m.0/24" via "10.244.$m.0" dev flannel.1 onlink
  in_ns "$ns" ip neigh replace "10.244.$m.0" lladdr "$(vtep_mac "$m")" dev flannel.1 nud permanent
  in_ns "$ns" bridge fdb append "$(vtep_mac "$m")" dev flannel.1 dst "$(public_ip "$m")" self permanent
}

# LAB_CLIENT=1: the nodes' underlay legs and a client's leg on one bridge in the fabric namespace. The node ends
# keep their names ($P-u1, $P-u2), so configs, captures and the tests see the same underlay either way.
make_fabric() {
  local n
  touch "$S/client"
  new_ns "$NS_F"; new_ns "$NS_C"
  in_ns "$NS_F" ip link add "$BR" type bridge   # STP off (the default): ports forward at once
  in_ns "$NS_F" ip link set "$BR" up
  for n in 1 2; do
    ip link add "$P-u$n" netns "$(ns_node "$n")" type veth peer name "$P-f$n" netns "$NS_F"
    offloads_off "$NS_F" "$P-f$n"
    in_ns "$NS_F" ip link set "$P-f$n" master "$BR"
    in_ns "$NS_F" ip link set "$P-f$n" up
  done
  ip link add eth0 netns "$NS_C" type veth peer name "$P-fc" netns "$NS_F"
  offloads_off "$NS_F" "$P-fc"
  offloads_off "$NS_C" eth0
  in_ns "$NS_F" ip link set "$P-fc" master "$BR"
  in_ns "$NS_F" ip link set "$P-fc" up
  in_ns "$NS_C" ip addr add "$CLIENT_IP/24" dev eth0
  in_ns "$NS_C" ip link set eth0 up
  in_ns "$NS_C" ip route add "$LB_NET" via "$(public_ip 1)"
}

# LAB_HOST=1: what cbr0, the node's routes and flannel's --ip-masq give a flannel node, for FastOverlay's host port.
# Names inside the node's namespace need no prefix: the namespace is the lab's own.
host_port() {
  local n=$1 ns
  ns=$(ns_node "$n")
  in_ns "$ns" ip link add fohost type veth peer name fohost-fo
  offloads_off "$ns" fohost; offloads_off "$ns" fohost-fo
  in_ns "$ns" ip link set fohost-fo up
  in_ns "$ns" ip link set fohost up
  in_ns "$ns" ip addr add "10.244.$n.0/32" dev fohost
  in_ns "$ns" ip route add "$NETWORK" via "10.244.$n.1" dev fohost onlink src "10.244.$n.0"
  in_ns "$ns" ip route add "$SERVICE_NET" via "10.244.$n.1" dev fohost onlink src "10.244.$n.0"   # the node's processes to ClusterIPs
  in_ns "$ns" sysctl -qw net.ipv4.ip_forward=1
  echo "table ip lab_masq { chain post { type nat hook postrouting priority srcnat; ip saddr $NETWORK ip daddr != $NETWORK oifname != \"fohost\" masquerade; }; }" | in_ns "$ns" nft -f -
}

write_config() {   # node N: the config `fastoverlay run` reads
  local n=$1 m
  m=$(other "$n")
  cat > "$S/node$n.json" <<EOF
{
  "Network": "$NETWORK",
  "SubnetLen": 24,
  "Backend": { "Type": "vxlan", "VNI": $VNI, "Port": $PORT },
  "Node": { "Name": "node$n", "PublicIP": "$(public_ip "$n")", "Subnet": "10.244.$n.0/24",
            "VtepMAC": "$(vtep_mac "$n")", "Underlay": "$P-u$n",$( [ "${LAB_HOST:-0}" = 1 ] && echo ' "HostInterface": "fohost-fo",' )
            "Pods": [ { "Interface": "$(veth_host "$n" 1)", "IP": "$(pod_ip "$n" 1)" },
                      { "Interface": "$(veth_host "$n" 2)", "IP": "$(pod_ip "$n" 2)" } ] },
  "Peers": [ { "Name": "node$m", "PublicIP": "$(public_ip "$m")", "Subnet": "10.244.$m.0/24", "VtepMAC": "$(vtep_mac "$m")" } ]
}
EOF
}

# Each node's API socket, pod state and subnet.env stay in the lab's state directory (the defaults under /run would
# be shared by both nodes and by any real daemon on the machine).
node_flags() { echo "--api-socket $S/node$1.sock --pod-state $S/pods$1.json --subnet-file $S/subnet$1.env${LAB_RUN_FLAGS:+ $LAB_RUN_FLAGS}"; }
start_cmd() { echo "ip netns exec $(ns_node "$1") dotnet $DLL run --config $S/node$1.json $(node_flags "$1")"; }

start_node() {
  # Two statements: `local` expands all its words before assigning any, so log=...$n would not see this n.
  local n=$1 pid log waited=0
  log=$S/node$n.log
  [ -f "$DLL" ] || die "$DLL not found: build it (dotnet build -c Release src/FastOverlay.Cli) or set FASTOVERLAY_DLL"
  if [ -f "$S/node$n.pid" ] && kill -0 "$(cat "$S/node$n.pid")" 2>/dev/null; then die "node$n already running"; fi
  # setsid: the forwarder is nobody's terminal job; `ip netns exec` and setsid exec, so $! is the dotnet process.
  setsid ip netns exec "$(ns_node "$n")" dotnet "$DLL" run --config "$S/node$n.json" $(node_flags "$n") </dev/null >>"$log" 2>&1 &
  pid=$!
  echo "$pid" > "$S/node$n.pid"
  until grep -q '^ready' "$log" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then cat "$log" >&2; die "fastoverlay on node$n exited before 'ready'"; fi
    [ $waited -lt $(( READY_TIMEOUT * 10 )) ] || { cat "$log" >&2; die "fastoverlay on node$n not ready after ${READY_TIMEOUT}s"; }
    sleep 0.1; waited=$(( waited + 1 ))
  done
  echo "node$n: fastoverlay pid $pid ready (log $log)"
}

stop_node() {   # SIGTERM: FastOverlay prints its final counters to the log
  local n=$1 pid i
  [ -f "$S/node$n.pid" ] || return 0
  pid=$(cat "$S/node$n.pid")
  # Not SIGINT: a background job of a non-interactive shell starts with SIGINT ignored, and stays deaf to it.
  if kill -TERM "$pid" 2>/dev/null; then
    for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$S/node$n.pid"
}

cmd_up() {
  MODE=${1:-}; local no_start=${2:-}
  case "$MODE" in kernel|fastoverlay|mixed) ;; *) usage >&2; exit 2 ;; esac
  [ -z "$no_start" ] || [ "$no_start" = --no-start ] || die "unknown option $no_start"
  check_prefix; names
  if [ -z "$no_start" ] && [ "$MODE" != kernel ] && [ ! -f "$DLL" ]; then
    die "$DLL not found: build it (dotnet build -c Release src/FastOverlay.Cli) or set FASTOVERLAY_DLL"
  fi
  [ ! -e "$S" ] && ! ip netns list | grep -q "^$P-" || die "a lab with prefix $P exists already (lab.sh down first)"
  # Whatever stops `up` half way (a failed command, die, Ctrl-C, kill) removes the partial lab.
  UP_DONE=0
  trap 'if [ "$UP_DONE" = 0 ]; then echo "lab.sh: up failed; removing the partial lab" >&2; cmd_down >&2; fi' EXIT
  trap 'exit 130' INT TERM HUP
  echo "LAB_PREFIX=$P"
  mkdir -p "$S"
  echo "$MODE" > "$S/mode"

  new_ns "$NS_N1"; new_ns "$NS_N2"
  case "${LAB_CLIENT:-0}" in
    0) ip link add "$U1" netns "$NS_N1" type veth peer name "$U2" netns "$NS_N2" ;;
    1) make_fabric ;;
    *) die "LAB_CLIENT must be 0 or 1, not ${LAB_CLIENT}" ;;
  esac
  for n in 1 2; do
    offloads_off "$(ns_node "$n")" "$P-u$n"
    # LAB_UNDERLAY_USO=off: a UDP_SEGMENT send crosses a veth whole (veth offers tx-udp-segmentation; few NICs do),
    # as the kernel's own VXLAN GSO does (tx-udp_tnl-segmentation). With it off the stack cuts UDP GSO sends before
    # the driver, as for a NIC without USO, and a capture on the underlay sees the datagrams a wire would carry.
    [ "${LAB_UNDERLAY_USO:-default}" = off ] && in_ns "$(ns_node "$n")" ethtool -K "$P-u$n" tx-udp-segmentation off >/dev/null
    in_ns "$(ns_node "$n")" ip addr add "$(public_ip "$n")/24" dev "$P-u$n"
    in_ns "$(ns_node "$n")" ip link set "$P-u$n" up
    make_pod "$n" 1; make_pod "$n" 2
  done
  for n in 1 2; do
    if [ "$(node_mode "$n")" = kernel ]; then kernel_node "$n"; else write_config "$n"; [ "${LAB_HOST:-0}" != 1 ] || host_port "$n"; fi
  done
  for n in 1 2; do
    [ "$(node_mode "$n")" = fastoverlay ] || continue
    if [ -n "$no_start" ]; then echo "node$n: start it with: $(start_cmd "$n")"; else start_node "$n"; fi
  done
  UP_DONE=1
  echo "lab $P up ($MODE): node1 ${NS_N1} ${UNDERLAY_NET}.1, node2 ${NS_N2} ${UNDERLAY_NET}.2, pods $P-p11 $P-p12 $P-p21 $P-p22"
  ! has_client || echo "client ${NS_C} ${CLIENT_IP} on bridge ${BR} in ${NS_F}; route ${LB_NET} via ${UNDERLAY_NET}.1"
}

cmd_down() {
  local ns pid pids i link
  names
  for n in 1 2; do stop_node "$n" 2>/dev/null || true; done
  # Everything still running inside one of the lab's namespaces was started for the lab (iperf3, tshark, ...).
  for ns in $(ip netns list | awk '{print $1}' | grep "^$P-" || true); do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [ -z "$pids" ] || kill -TERM $pids 2>/dev/null || true
  done
  for i in $(seq 30); do
    pids=$(for ns in $(ip netns list | awk '{print $1}' | grep "^$P-" || true); do ip netns pids "$ns" 2>/dev/null; done)
    [ -n "$pids" ] || break
    [ "$i" -lt 30 ] || kill -KILL $pids 2>/dev/null || true
    sleep 0.1
  done
  for ns in $(ip netns list | awk '{print $1}' | grep "^$P-" || true); do ip netns del "$ns" 2>/dev/null || true; done
  # A run killed between `ip link add` and the move into a namespace would leave links here.
  for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^$P-" || true); do
    ip link del "$link" 2>/dev/null || true
  done
  rm -rf "$S"
  echo "lab $P down"
}

cmd_status() {
  local d p ns pid
  for d in "$STATE_ROOT"/fastoverlay-lab.*; do
    [ -d "$d" ] || continue
    p=${d##*/fastoverlay-lab.}
    [ -z "${LAB_PREFIX:-}" ] || [ "$p" = "$LAB_PREFIX" ] || continue
    echo "lab $p: mode $(cat "$d/mode" 2>/dev/null || echo '?'), state $d$([ -f "$d/client" ] && echo ", client $p-c on bridge $p-br in $p-f")"
    for ns in $(ip netns list | awk '{print $1}' | grep "^$p-" | sort); do
      echo "  $ns: $(ip netns exec "$ns" ip -br -4 addr show | grep -v '^lo ' | awk '{printf "%s %s  ", $1, $3}')"
      for pid in $(ip netns pids "$ns" 2>/dev/null); do
        echo "    process $pid: $(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | cut -c1-150)"
      done
    done
    for n in 1 2; do
      [ -f "$d/node$n.pid" ] || continue
      pid=$(cat "$d/node$n.pid")
      if kill -0 "$pid" 2>/dev/null; then echo "  node$n fastoverlay pid $pid running, config $d/node$n.json, log $d/node$n.log"
      else echo "  node$n fastoverlay pid $pid NOT running (log $d/node$n.log)"; fi
    done
  done
  # Namespaces without a state directory: leftovers of a killed run (remove them with LAB_PREFIX=<prefix> lab.sh down).
  for ns in $(ip netns list | awk '{print $1}' | grep -E '^[a-z][a-z0-9]{1,9}-(n[12]|p[12][12]|f|c)$' || true); do
    [ -d "$(state_dir "${ns%-*}")" ] || echo "leftover namespace $ns (no state directory)"
  done
}

cmd_exec() {
  local name=${1:-}; shift || true
  [[ $name =~ ^(n[12]|p[12][12]|f|c)$ ]] || die "exec NAME: n1 n2 p11 p12 p21 p22 (f c with LAB_CLIENT=1)"
  names
  [[ $name =~ ^[fc]$ ]] && ! has_client && die "lab $P has no client and fabric (bring it up with LAB_CLIENT=1)"
  exec ip netns exec "$P-$name" "$@"
}

cmd_env() {
  names
  echo "LAB_PREFIX=$P"
  echo "LAB_STATE=$S"
  echo "LAB_MODE=$(cat "$S/mode" 2>/dev/null || echo none)"
  for n in 1 2; do
    echo "NS_N$n=$P-n$n UNDERLAY_N$n=$P-u$n PUBLIC_IP_N$n=$(public_ip "$n") VTEP_MAC_N$n=$(vtep_mac "$n") CONFIG_N$n=$S/node$n.json LOG_N$n=$S/node$n.log"
    for k in 1 2; do
      echo "NS_P$n$k=$(ns_pod "$n" "$k") VETH_P$n$k=$(veth_host "$n" "$k") IP_P$n$k=$(pod_ip "$n" "$k") MAC_P$n$k=$(pod_mac "$n" "$k")"
    done
  done
  if has_client; then
    echo "LAB_CLIENT=1"
    echo "NS_F=$NS_F BRIDGE=$BR NS_C=$NS_C CLIENT_IP=$CLIENT_IP LB_NET=$LB_NET"
  else
    echo "LAB_CLIENT=0"
  fi
}

[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
cmd=${1:-}; shift || true
case "$cmd" in
  up) P=${LAB_PREFIX:-fo$$}; cmd_up "$@" ;;
  down) resolve_prefix; cmd_down ;;
  status) cmd_status ;;
  exec) resolve_prefix; cmd_exec "$@" ;;
  start) resolve_prefix; names; start_node "${1:?node 1 or 2}" ;;
  stop) resolve_prefix; names; stop_node "${1:?node 1 or 2}" ;;
  env) resolve_prefix; cmd_env ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
