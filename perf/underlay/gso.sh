#!/usr/bin/env bash
# Datagrams per second through UdpUnderlayPort between two network namespaces (veth pair), for 1 and 4 flows,
# 1 and 8 transmit sockets, UDP GSO/GRO on and off, receive packet steering on B's veth off and on.
# Runs the manual measurement in tests/FastOverlay.Tests/Ports/UdpUnderlayThroughput.cs (skipped in normal test
# runs). Needs root (namespaces). The namespaces are the test's own (fo-<pid>-...), deleted when it ends.
#
#   sudo perf/underlay/gso.sh [out-file]       # FO_UNDERLAY_BENCH_SECONDS / _REPEATS / _DATAGRAM to change the run
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-$(mktemp /tmp/underlay-gso.XXXXXX)}"
dotnet build tests/FastOverlay.Tests -c Release -v quiet -nologo >/dev/null
FO_UNDERLAY_BENCH=1 FO_UNDERLAY_BENCH_OUT="$(realpath "$out")" \
  dotnet test tests/FastOverlay.Tests -c Release --no-build -nologo \
  --filter "FullyQualifiedName~UdpUnderlayThroughput" >/dev/null
echo "# $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs, kernel $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)"
cat "$out"
