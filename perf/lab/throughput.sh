#!/usr/bin/env bash
# Side-by-side throughput on real interfaces: FastOverlay on both nodes vs the kernel (bridge + flannel-style VXLAN)
# on both nodes, in the same run on the same machine, in the two-node lab of lab.sh.
#
#   UDP 64 B and 1400 B frames (trafgen in the sending pod, one flow, flood), pod to pod across nodes and on one
#   node, counted at the receiving pod (rx_packets of its eth0) over a fixed window after a warm-up;
#   TCP, one iperf3 stream across nodes and on one node, and 4 parallel streams across nodes.
# Every veth keeps the offloads Linux gives it (TSO, GSO, checksum offload), as Kubernetes leaves pods, in both
# modes; --offloads off turns them off everywhere (the lab's LAB_OFFLOADS).
# CPU per row: the FastOverlay processes' utime+stime, and the machine's kernel time (system + irq + softirq from
# /proc/stat: the kernel path runs in softirq, mostly on the sender's core, and without IRQ time accounting a
# softirq run from process context counts as system time); and CPU seconds per GB moved: the whole machine's busy
# time (user + system + irq + softirq: senders, receivers and forwarders together) over the bytes that arrived.
# The machine is shared: quote ratios.
#
# The modes alternate, pass after pass (--repeat, default 2), and each cell is the best pass: on a shared machine
# the best pass is the closest to what the path can do; every pass is printed too.
#
# usage: perf/lab/throughput.sh [--seconds N] [--warmup N] [--repeat N] [--modes "kernel fastoverlay"] [--offloads default|off]
#                               [--out FILE] [--no-build] [--rows "tcp-cross tcp-same"]
# needs root, iproute2, ethtool, iputils-ping, iperf3, netsniff-ng (trafgen) and a Release build of the CLI
# (built here first, so the figures belong to the checked-out commit; --no-build or FASTOVERLAY_DLL skip that).
# A full run takes about 3-4 minutes.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
LAB=$HERE/lab.sh
SECONDS_WINDOW=5
WARMUP=1
MODES="kernel fastoverlay"
REPEAT=2
OUT=""
BUILD=1
OFFLOADS=default
ONLY_ROWS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_WINDOW=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --modes) MODES=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --offloads) OFFLOADS=$2; shift 2 ;;
    --rows) ONLY_ROWS=$2; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "throughput.sh needs root" >&2; exit 1; }
for t in ip ethtool ping iperf3 trafgen awk; do command -v "$t" >/dev/null || { echo "missing $t (apt-get install iproute2 ethtool iputils-ping iperf3 netsniff-ng)" >&2; exit 1; }; done

if [ -z "${FASTOVERLAY_DLL:-}" ] && [ "$BUILD" = 1 ] && [[ " $MODES " == *" fastoverlay "* ]]; then
  echo "building the CLI (Release)..." >&2
  dotnet build -c Release "$REPO/src/FastOverlay.Cli" >/dev/null || { echo "build failed" >&2; exit 1; }
fi
export FASTOVERLAY_DLL=${FASTOVERLAY_DLL:-$REPO/src/FastOverlay.Cli/bin/Release/net10.0/fastoverlay.dll}
export LAB_OFFLOADS=$OFFLOADS

WORK=$(mktemp -d /tmp/fastoverlay-throughput.XXXXXX)
CURRENT_PREFIX=""
cleanup() {
  if [ -n "$CURRENT_PREFIX" ]; then LAB_PREFIX=$CURRENT_PREFIX "$LAB" down >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

HZ=$(getconf CLK_TCK)
ns() { echo "$CURRENT_PREFIX-$1"; }
in_ns() { local n=$1; shift; ip netns exec "$(ns "$n")" "$@"; }
pod_ip() { echo "10.244.${1:1:1}.$(( ${1:2:1} + 1 ))"; }
rx_packets() { in_ns "$1" cat /sys/class/net/eth0/statistics/rx_packets; }
tx_packets() { in_ns "$1" cat /sys/class/net/eth0/statistics/tx_packets; }
# kernel time of the whole machine (system + irq + softirq), in ticks
stat_cpu() { awk '/^cpu / {print $4 + $6 + $7}' /proc/stat; }
# busy time of the whole machine (user + nice + system + irq + softirq), in ticks
stat_busy() { awk '/^cpu / {print $2 + $3 + $4 + $6 + $7}' /proc/stat; }
# utime+stime of the FastOverlay processes of the current lab, in ticks
fo_ticks() {
  local total=0 f pid
  for f in /tmp/fastoverlay-lab."$CURRENT_PREFIX"/node*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    [ -r "/proc/$pid/stat" ] || continue
    total=$(( total + $(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$pid/stat") ))
  done
  echo $total
}
secs() { awk -v t="$1" -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }'; }

# trafgen packet: Ethernet, IPv4 (DF, TTL 64, checksum by trafgen), UDP 9 -> 9 (no checksum), zero payload.
trafgen_conf() {   # file dst_mac src_mac src_ip dst_ip frame_size
  local file=$1 dmac=$2 smac=$3 sip=$4 dip=$5 size=$6
  local payload=$(( size - 42 ))
  hexmac() { echo "0x${1//:/, 0x}"; }
  hexip() { local IFS=.; set -- $1; printf '%d, %d, %d, %d' "$1" "$2" "$3" "$4"; }
  cat > "$file" <<EOF
{
  $(hexmac "$dmac"), $(hexmac "$smac"), c16(0x0800),
  0x45, 0x00, c16($(( size - 14 ))), c16(0x0001), c16(0x4000), 64, 17, csumip(14, 33),
  $(hexip "$sip"), $(hexip "$dip"),
  c16(9), c16(9), c16($(( payload + 8 ))), c16(0),
  fill(0x00, $payload)
}
EOF
}

# One UDP row: prints "rx_pps offered_pps fo_cpu_s kernel_time_s busy_s_per_GB"
udp_row() {   # from to frame_size
  local from=$1 to=$2 size=$3 dip sip nexthop dmac smac conf r0 r1 t0 t1 c0 c1 f0 f1 b0 b1
  dip=$(pod_ip "$to"); sip=$(pod_ip "$from")
  if [ "${from:1:1}" = "${to:1:1}" ]; then nexthop=$dip; else nexthop="10.244.${from:1:1}.1"; fi
  in_ns "$from" ping -c 2 -i 0.2 -W 2 -q "$dip" >/dev/null || { echo "ping $from -> $to failed" >&2; return 1; }
  in_ns "$to" ping -c 1 -W 2 -q "$sip" >/dev/null || true
  dmac=$(in_ns "$from" ip neigh show "$nexthop" dev eth0 | awk '{print $3}')
  smac=$(in_ns "$from" cat /sys/class/net/eth0/address)
  conf=$WORK/$from-$to-$size.cfg
  trafgen_conf "$conf" "$dmac" "$smac" "$sip" "$dip" "$size"
  in_ns "$from" timeout -s INT $(( WARMUP + SECONDS_WINDOW + 1 )) \
    trafgen --dev eth0 --conf "$conf" --no-sock-mem -Q --cpus 1 >"$WORK/trafgen.log" 2>&1 &
  local gen=$!
  sleep "$WARMUP"
  r0=$(rx_packets "$to"); t0=$(tx_packets "$from"); c0=$(stat_cpu); f0=$(fo_ticks); b0=$(stat_busy)
  sleep "$SECONDS_WINDOW"
  r1=$(rx_packets "$to"); t1=$(tx_packets "$from"); c1=$(stat_cpu); f1=$(fo_ticks); b1=$(stat_busy)
  wait "$gen" || true
  awk -v r=$(( r1 - r0 )) -v t=$(( t1 - t0 )) -v d="$SECONDS_WINDOW" -v f=$(( f1 - f0 )) -v c=$(( c1 - c0 )) -v b=$(( b1 - b0 )) -v hz="$HZ" -v size="$size" \
    'BEGIN { gb = r * size / 1e9; printf "%.0f %.0f %.2f %.2f %s\n", r / d, t / d, f / hz, c / hz, (gb > 0 ? sprintf("%.1f", b / hz / gb) : "n/a") }'
}

# One TCP row: prints "mbit_s 0 fo_cpu_s kernel_time_s busy_s_per_GB"
tcp_row() {   # from to streams
  local from=$1 to=$2 streams=${3:-1} c0 c1 f0 f1 b0 b1 mbit
  in_ns "$to" iperf3 -s -1 -p 5299 >/dev/null 2>&1 &
  local srv=$!
  for _ in $(seq 50); do in_ns "$to" ss -Hltn 'sport = :5299' | grep -q LISTEN && break; sleep 0.1; done
  c0=$(stat_cpu); f0=$(fo_ticks); b0=$(stat_busy)
  # -P N prints a [SUM] receiver line; one stream prints only its own: the last receiver line is the total either way.
  mbit=$(in_ns "$from" iperf3 -c "$(pod_ip "$to")" -p 5299 -t "$SECONDS_WINDOW" -P "$streams" -f m 2>&1 | awk '/receiver/ {v = $(NF-2)} END {print v}')
  c1=$(stat_cpu); f1=$(fo_ticks); b1=$(stat_busy)
  wait "$srv" 2>/dev/null || true
  awk -v m="${mbit:-0}" -v f=$(( f1 - f0 )) -v c=$(( c1 - c0 )) -v b=$(( b1 - b0 )) -v hz="$HZ" -v d="$SECONDS_WINDOW" \
    'BEGIN { gb = m * 1e6 * d / 8 / 1e9; printf "%.0f 0 %.2f %.2f %s\n", m, f / hz, c / hz, (gb > 0 ? sprintf("%.1f", b / hz / gb) : "n/a") }'
}

ROWS=("udp64-cross p11 p21 64" "udp1400-cross p11 p21 1400" "udp64-same p11 p12 64" "udp1400-same p11 p12 1400" "tcp-cross p11 p21 1" "tcp-same p11 p12 1" "tcp4-cross p11 p21 4")
if [ -n "$ONLY_ROWS" ]; then
  KEPT=()
  for row in "${ROWS[@]}"; do [[ " $ONLY_ROWS " == *" ${row%% *} "* ]] && KEPT+=("$row"); done
  [ ${#KEPT[@]} -gt 0 ] || { echo "--rows: none of \"$ONLY_ROWS\" is a row (udp64-cross udp1400-cross udp64-same udp1400-same tcp-cross tcp-same tcp4-cross)" >&2; exit 2; }
  ROWS=("${KEPT[@]}")
fi
declare -A RESULT

run_mode() {
  local mode=$1 pass=$2 row name from to size
  CURRENT_PREFIX="fb$(( $$ % 100000 ))${mode:0:1}"
  echo "== $mode: lab $CURRENT_PREFIX up" >&2
  if ! LAB_PREFIX=$CURRENT_PREFIX "$LAB" up "$mode" > "$WORK/up-$mode.log" 2>&1; then
    cat "$WORK/up-$mode.log" >&2
    echo "== $mode: lab did not come up; its rows are n/a" >&2
    CURRENT_PREFIX=""; return 0
  fi
  for row in "${ROWS[@]}"; do
    read -r name from to size <<< "$row"
    echo "   $mode $name ..." >&2
    if [ "${name:0:3}" = tcp ]; then RESULT[$mode,$name,$pass]=$(tcp_row "$from" "$to" "$size" || echo "0 0 0 0 n/a")
    else RESULT[$mode,$name,$pass]=$(udp_row "$from" "$to" "$size" || echo "0 0 0 0 n/a"); fi
    echo "   $mode $name pass $pass: ${RESULT[$mode,$name,$pass]}" >&2
    # the best pass so far is the row's result
    if [ -z "${RESULT[$mode,$name]:-}" ] || [ "${RESULT[$mode,$name,$pass]%% *}" -gt "${RESULT[$mode,$name]%% *}" ]; then
      RESULT[$mode,$name]=${RESULT[$mode,$name,$pass]}
    fi
  done
  if [ "$mode" = fastoverlay ]; then
    # Their final counters say where the packets that did not arrive went (socket drops, drop reasons).
    for n in 1 2; do
      LAB_PREFIX=$CURRENT_PREFIX "$LAB" stop "$n" > /dev/null 2>&1 || true
      cp "/tmp/fastoverlay-lab.$CURRENT_PREFIX/node$n.log" "$WORK/fastoverlay-node$n.log" 2>/dev/null || true
    done
  fi
  LAB_PREFIX=$CURRENT_PREFIX "$LAB" down > /dev/null 2>&1 || true
  CURRENT_PREFIX=""
}

DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
CPU_MODEL=$(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}')
NPROC=$(nproc)
KERNEL=$(uname -r)
COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
DOTNET=$(dotnet --version 2>/dev/null || echo none)
for pass in $(seq "$REPEAT"); do
  for mode in $MODES; do run_mode "$mode" "$pass"; done
done

field() { local v=${RESULT[$1,$2]:-}; [ -n "$v" ] && echo "$v" | awk -v i="$3" '{print $i}' || echo ""; }
{
  echo "FastOverlay lab throughput, $DATE"
  echo "machine: $CPU_MODEL, $NPROC CPUs, kernel $KERNEL, .NET SDK $DOTNET, commit $COMMIT"
  echo "command: perf/lab/throughput.sh --seconds $SECONDS_WINDOW --warmup $WARMUP --repeat $REPEAT --modes \"$MODES\" --offloads $OFFLOADS${ONLY_ROWS:+ --rows \"$ONLY_ROWS\"}${LAB_RUN_FLAGS:+ (LAB_RUN_FLAGS=\"$LAB_RUN_FLAGS\")} (best of $REPEAT alternating passes)"
  echo "UDP: trafgen --no-sock-mem -Q --cpus 1 in the sending pod, one flow, counted at the receiving pod's eth0 over ${SECONDS_WINDOW} s;"
  echo "TCP: iperf3, one stream (tcp4: -P 4), ${SECONDS_WINDOW} s. veth offloads: $OFFLOADS (both modes). CPU: seconds used during the window,"
  echo "kernel s = the whole machine's system+irq+softirq time (shared machine: includes others' work), process s = the fastoverlay"
  echo "processes' utime+stime (their stime is also in kernel s); cpu-s/GB = the machine's busy seconds per GB delivered."
  echo
  printf '%-15s %12s %12s %7s   %-18s %-30s %-20s\n' "test" "kernel" "fastoverlay" "ratio" "kernel: kernel s" "fastoverlay: process s, kernel s" "cpu-s/GB k / fo"
  for row in "${ROWS[@]}"; do
    read -r name _ _ _ <<< "$row"
    unit=kpps; [ "${name:0:3}" = tcp ] && unit=Mbit/s
    k=$(field kernel "$name" 1); f=$(field fastoverlay "$name" 1)
    fmt() { [ -z "$1" ] && { echo n/a; return; }; if [ "$unit" = kpps ]; then awk -v v="$1" 'BEGIN { printf "%.1f kpps", v / 1000 }'; else echo "$1 Mbit/s"; fi; }
    ratio=$(awk -v k="${k:-0}" -v f="${f:-0}" 'BEGIN { if (k > 0 && f > 0) printf "%.2f", f / k; else print "n/a" }')
    printf '%-15s %12s %12s %7s   %-18s %-30s %-20s\n' "$name" "$(fmt "$k")" "$(fmt "$f")" "$ratio" \
      "$(field kernel "$name" 4)" "$(field fastoverlay "$name" 3), $(field fastoverlay "$name" 4)" "$(field kernel "$name" 5) / $(field fastoverlay "$name" 5)"
  done
  echo
  for row in "${ROWS[@]}"; do
    read -r name _ _ _ <<< "$row"
    echo "passes $name: $(for mode in $MODES; do for pass in $(seq "$REPEAT"); do printf '%s#%s %s; ' "$mode" "$pass" "$(echo "${RESULT[$mode,$name,$pass]:-n/a}" | awk '{print $1}')"; done; done)"
  done
  echo "offered load (sender tx, pps): $(for row in "${ROWS[@]}"; do read -r name _ _ _ <<< "$row"; [ "${name:0:3}" = udp ] && printf '%s kernel %s fastoverlay %s; ' "$name" "$(field kernel "$name" 2)" "$(field fastoverlay "$name" 2)"; done)"
  for n in 1 2; do
    [ -f "$WORK/fastoverlay-node$n.log" ] || continue
    echo "fastoverlay node$n, final counters of the last pass (all its rows): $(awk '$1 ~ /^(RxPackets|TxPackets|Encapsulated|Decapsulated)$/ {printf "%s %s, ", $1, $2}' "$WORK/fastoverlay-node$n.log")"
    grep -E '^  (drop |port )' "$WORK/fastoverlay-node$n.log" | sed 's/^  /    /' || true
  done
  echo
  echo "csv: test,kernel,fastoverlay,unit,ratio,kernel_mode_kernel_time_s,fastoverlay_process_cpu_s,fastoverlay_mode_kernel_time_s,kernel_cpu_s_per_gb,fastoverlay_cpu_s_per_gb"
  for row in "${ROWS[@]}"; do
    read -r name _ _ _ <<< "$row"
    unit=pps; [ "${name:0:3}" = tcp ] && unit=Mbit/s
    k=$(field kernel "$name" 1); f=$(field fastoverlay "$name" 1)
    ratio=$(awk -v k="${k:-0}" -v f="${f:-0}" 'BEGIN { if (k > 0 && f > 0) printf "%.3f", f / k; else print "" }')
    echo "csv: $name,$k,$f,$unit,$ratio,$(field kernel "$name" 4),$(field fastoverlay "$name" 3),$(field fastoverlay "$name" 4),$(field kernel "$name" 5),$(field fastoverlay "$name" 5)"
  done
  printf 'json: {"date":"%s","cpu":"%s","nproc":%s,"kernel":"%s","commit":"%s","seconds":%s,"offloads":"%s","rows":[' "$DATE" "$CPU_MODEL" "$NPROC" "$KERNEL" "$COMMIT" "$SECONDS_WINDOW" "$OFFLOADS"
  sep=""
  for row in "${ROWS[@]}"; do
    read -r name _ _ _ <<< "$row"
    unit=pps; [ "${name:0:3}" = tcp ] && unit=Mbit/s
    printf '%s{"test":"%s","unit":"%s","kernel":%s,"fastoverlay":%s,"kernel_mode_kernel_time_s":%s,"fastoverlay_process_cpu_s":%s,"fastoverlay_mode_kernel_time_s":%s}' \
      "$sep" "$name" "$unit" "$(field kernel "$name" 1 | sed 's/^$/null/')" "$(field fastoverlay "$name" 1 | sed 's/^$/null/')" \
      "$(field kernel "$name" 4 | sed 's/^$/null/')" "$(field fastoverlay "$name" 3 | sed 's/^$/null/')" "$(field fastoverlay "$name" 4 | sed 's/^$/null/')"
    sep=","
  done
  echo ']}'
} | tee ${OUT:+"$OUT"}
