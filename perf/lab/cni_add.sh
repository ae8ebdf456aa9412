#!/usr/bin/env bash
# ADD latency of the fastoverlay CNI plugin, the way a runtime calls it: one process per pod, the config on stdin,
# host-local (Debian's containernetworking-plugins) for addresses, against `fastoverlay run` on node1 of a fresh lab.
# Pods are added one after another (containerd serialises nothing, but a node start is bounded by this), then
# deleted. Prints per-pod milliseconds and pods per second for ADD and DEL.
#
#   perf/lab/cni_add.sh [PODS]          (default 20; root; builds nothing: run `dotnet build -c Release` first)
#   FASTOVERLAY_CNI=/opt/cni/bin/fastoverlay perf/lab/cni_add.sh   # time an installed plugin (apphost) instead of `dotnet fastoverlay.dll`
#   PARALLEL=8 perf/lab/cni_add.sh 40                              # 8 plugin processes at a time, as a runtime starting many pods
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PODS=${1:-20}
DLL=${FASTOVERLAY_DLL:-$REPO/src/FastOverlay.Cli/bin/Release/net10.0/fastoverlay.dll}
PLUGIN=${FASTOVERLAY_CNI:-}
PARALLEL=${PARALLEL:-1}
[ -x /usr/lib/cni/host-local ] || { echo "needs host-local: apt-get install containernetworking-plugins" >&2; exit 1; }
export LAB_PREFIX=cb$(printf '%06x' $((RANDOM * RANDOM % 16777216)))
S=/tmp/fastoverlay-lab.$LAB_PREFIX
cleanup() {
  for i in $(seq 1 "$PODS"); do ip netns del "$LAB_PREFIX-c$i" 2>/dev/null || true; done
  bash "$HERE/lab.sh" down >/dev/null 2>&1 || true
}
trap cleanup EXIT
bash "$HERE/lab.sh" up fastoverlay >/dev/null
cat > "$S/cni.json" <<JSON
{"cniVersion":"1.0.0","name":"bench$LAB_PREFIX","type":"fastoverlay","apiSocket":"$S/node1.sock","subnetFile":"$S/subnet1.env",
 "ipam":{"type":"host-local","dataDir":"$S/ipam","rangeStart":"10.244.1.10"}}
JSON
for i in $(seq 1 "$PODS"); do ip netns add "$LAB_PREFIX-c$i"; done

plugin() {   # COMMAND POD
  CNI_COMMAND=$1 CNI_CONTAINERID=$LAB_PREFIX-c$2 CNI_NETNS=/var/run/netns/$LAB_PREFIX-c$2 CNI_IFNAME=eth0 \
  CNI_PATH=/opt/cni/bin:/usr/lib/cni ip netns exec "$LAB_PREFIX-n1" \
    ${PLUGIN:-dotnet $DLL} < "$S/cni.json" > "$S/out$2.json" || { cat "$S/out$2.json" >&2; exit 1; }
}
export -f plugin
export LAB_PREFIX S DLL PLUGIN

run() {   # COMMAND
  local start end
  start=$(date +%s%N)
  seq 1 "$PODS" | xargs -P "$PARALLEL" -I{} bash -c 'plugin "$0" "$1"' "$1" {}
  end=$(date +%s%N)
  awk -v n="$PODS" -v p="$PARALLEL" -v ns=$((end - start)) -v c="$1" 'BEGIN { printf "%-4s %d pods (%d at a time) in %.2f s: %.1f ms per pod, %.1f pods/s\n", c, n, p, ns / 1e9, ns / 1e6 / n, n / (ns / 1e9) }'
}
run ADD
# Every pod answers through FastOverlay (the last one pings the first).
ip netns exec "$LAB_PREFIX-c$PODS" ping -n -c 1 -W 2 10.244.1.10 >/dev/null && echo "pod $PODS reaches pod 1"
run DEL
