#!/usr/bin/env bash
# Issue 9's mixed cluster in network namespaces: etcd on the underlay, two FastOverlay nodes that join through it,
# and one kernel node configured exactly as flanneld configures it from the leases (EtcdLabTests drives it).
#
#   etcd 172.31.78.100 ─┐
#   node1 172.31.78.1 ──┤ bridge in <P>-ul     pods: <P>-p1 10.244.1.2 (node1), <P>-p2 10.244.2.2 (node2),
#   node2 172.31.78.2 ──┤                            <P>-p3 10.244.3.2 (node3, kernel: cbr0 + flannel.1)
#   node3 172.31.78.3 ──┘
#
# usage: etcd-lab.sh up P | down P | peer P SUBNET_NET VTEP_MAC PUBLIC_IP | unpeer P SUBNET_NET VTEP_MAC PUBLIC_IP
# (peer/unpeer program node3's flannel.1 for a lease the way flannel's vxlan backend does: onlink route,
# permanent neighbour, FDB entry.) Everything is named <P>-*; `down` kills every process inside and deletes it all.
set -euo pipefail
cmd=$1; P=$2; shift 2
MTU=1450
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
off() { ip netns exec "$1" ethtool -K "$2" rx off tx off tso off gso off gro off >/dev/null 2>&1 || ip netns exec "$1" ethtool -K "$2" rx off tx off tso off gso off >/dev/null; }
new_ns() {
  ip netns add "$1"
  ip netns exec "$1" sh -c 'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6' 2>/dev/null || true
  in_ns "$1" ip link set lo up
}
attach() {   # namespace, its end's name, address on the underlay
  ip link add "$2" netns "$1" type veth peer name "$P-b${2##*-}" netns "$P-ul"
  off "$1" "$2"; off "$P-ul" "$P-b${2##*-}"
  in_ns "$P-ul" ip link set "$P-b${2##*-}" master br0 up
  in_ns "$1" ip addr add "$3/24" dev "$2"
  in_ns "$1" ip link set "$2" up
}
pod() {   # node k: pod <P>-pk with 10.244.k.2 on veth <P>-vk
  local k=$1
  new_ns "$P-p$k"
  ip link add "$P-v$k" netns "$P-n$k" type veth peer name eth0 netns "$P-p$k"
  in_ns "$P-p$k" ip link set eth0 address "0a:58:0a:f4:0$k:02" mtu $MTU
  in_ns "$P-n$k" ip link set "$P-v$k" mtu $MTU
  off "$P-p$k" eth0; off "$P-n$k" "$P-v$k"
  in_ns "$P-p$k" ip addr add "10.244.$k.2/24" dev eth0
  in_ns "$P-p$k" ip link set eth0 up
  in_ns "$P-n$k" ip link set "$P-v$k" up
  in_ns "$P-p$k" ip route add default via "10.244.$k.1"
}
case "$cmd" in
  up)
    new_ns "$P-ul"; in_ns "$P-ul" ip link add br0 type bridge; in_ns "$P-ul" ip link set br0 up
    new_ns "$P-e"; attach "$P-e" "$P-e0" 172.31.78.100
    for k in 1 2 3; do new_ns "$P-n$k"; attach "$P-n$k" "$P-u$k" "172.31.78.$k"; pod "$k"; done
    # node3: the bridge CNI plugin's cbr0 and flannel's flannel.1 (VNI 1, port 8472, nolearning, its VtepMAC).
    in_ns "$P-n3" sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'
    in_ns "$P-n3" ip link add cbr0 type bridge
    in_ns "$P-n3" ip link set cbr0 mtu $MTU
    in_ns "$P-n3" ip addr add 10.244.3.1/24 dev cbr0
    in_ns "$P-n3" ip link set cbr0 up
    in_ns "$P-n3" ip link set "$P-v3" master cbr0
    in_ns "$P-n3" ip link add flannel.1 type vxlan id 1 dev "$P-u3" local 172.31.78.3 dstport 8472 nolearning
    in_ns "$P-n3" ip link set flannel.1 address 0a:58:0a:f4:03:00 mtu $MTU
    in_ns "$P-n3" ip addr add 10.244.3.0/32 dev flannel.1
    in_ns "$P-n3" ip link set flannel.1 up
    ;;
  peer)
    in_ns "$P-n3" ip route replace "$1/24" via "$1" dev flannel.1 onlink
    in_ns "$P-n3" ip neigh replace "$1" lladdr "$2" dev flannel.1 nud permanent
    in_ns "$P-n3" bridge fdb append "$2" dev flannel.1 dst "$3" self permanent
    ;;
  unpeer)
    in_ns "$P-n3" ip route del "$1/24" via "$1" dev flannel.1 onlink || true
    in_ns "$P-n3" ip neigh del "$1" dev flannel.1 || true
    in_ns "$P-n3" bridge fdb del "$2" dev flannel.1 dst "$3" self || true
    ;;
  down)
    for ns in $(ip netns list | awk '{print $1}' | grep "^$P-" || true); do
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
    done
    sleep 0.2
    for ns in $(ip netns list | awk '{print $1}' | grep "^$P-" || true); do ip netns del "$ns" 2>/dev/null || true; done
    ;;
  *) echo "usage: etcd-lab.sh up|down|peer|unpeer PREFIX ..." >&2; exit 2 ;;
esac
