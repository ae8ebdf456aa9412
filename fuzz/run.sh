#!/usr/bin/env bash
# Fuzzes one FastOverlay entry point with AFL++ through SharpFuzz.
#
#   fuzz/run.sh                   lists the targets, one per line
#   fuzz/run.sh TARGET SECONDS    installs what it needs, builds, instruments, fuzzes TARGET for SECONDS
#
# Exits non-zero when AFL++ saved any crash or hang (fuzz/findings/TARGET/default/{crashes,hangs}/). Everything
# it writes goes under fuzz/findings/ (gitignored); an earlier run of the same target is moved aside, not lost.
# Environment: FUZZ_NICE (default 10), FUZZ_TIMEOUT_MS per input (default 2000), AFL_EXTRA (more afl-fuzz flags).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
targets=(pod-frame underlay arp config)

if [ $# -eq 0 ]; then
  printf '%s\n' "${targets[@]}"
  exit 0
fi
if [ $# -ne 2 ] || ! [[ "$2" =~ ^[0-9]+$ ]] || [ "$2" -lt 1 ]; then
  echo "usage: fuzz/run.sh [TARGET SECONDS]" >&2
  exit 2
fi
target="$1"
seconds="$2"
if ! printf '%s\n' "${targets[@]}" | grep -qx -- "$target"; then
  echo "unknown target '$target'; targets: ${targets[*]}" >&2
  exit 2
fi

findings="$root/fuzz/findings"
build="$findings/bin"
tools="$findings/tools"
out="$findings/$target"
mkdir -p "$findings"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# 1. AFL++ (Debian's afl++ package).
if ! command -v afl-fuzz >/dev/null; then
  echo "== installing afl++"
  if [ "$(id -u)" != 0 ]; then echo "afl-fuzz missing and not root: apt-get install afl++" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q afl++ >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q afl++ >/dev/null; }
fi

# 2. The sharpfuzz instrumenter, at the version Directory.Packages.props pins for the SharpFuzz library.
version="$(grep -oP 'Include="SharpFuzz" Version="\K[^"]+' "$root/Directory.Packages.props")"
if ! [ -x "$tools/sharpfuzz" ]; then
  echo "== installing SharpFuzz.CommandLine $version"
  dotnet tool install SharpFuzz.CommandLine --version "$version" --tool-path "$tools" >/dev/null
fi

# 3. Build the harness in Release into a folder of its own, then instrument the library under test (only it:
#    coverage of the harness and of the framework would only be noise).
echo "== building the harness"
rm -rf "$build"
dotnet publish "$here/FastOverlay.Fuzz/FastOverlay.Fuzz.csproj" -c Release -o "$build" --nologo -v q >/dev/null
echo "== instrumenting FastOverlay.Core.dll"
"$tools/sharpfuzz" "$build/FastOverlay.Core.dll"

# 4. Fuzz. A previous run of this target is kept beside, under its start time.
if [ -d "$out" ]; then mv "$out" "$out.$(date -r "$out" +%Y%m%d-%H%M%S)"; fi
export AFL_SKIP_BIN_CHECK=1                       # the target is `dotnet`; SharpFuzz speaks the fork-server protocol
export AFL_SKIP_CPUFREQ=1                         # containers cannot set the CPU governor
export AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1    # core_pattern belongs to the host
export AFL_NO_UI=1 AFL_NO_AFFINITY=1              # plain log lines; share the cores with everyone else
export AFL_FORKSRV_INIT_TMOUT=60000               # the runtime's start and first JIT take seconds
export AFL_SHUFFLE_QUEUE=0
echo "== afl-fuzz $target for ${seconds}s (corpus fuzz/corpus/$target, output ${out#"$root"/})"
dict=()
[ -f "$here/dict/$target.dict" ] && dict=(-x "$here/dict/$target.dict")
# shellcheck disable=SC2086
nice -n "${FUZZ_NICE:-10}" afl-fuzz -i "$here/corpus/$target" -o "$out" -t "${FUZZ_TIMEOUT_MS:-2000}" -m none -V "$seconds" "${dict[@]}" ${AFL_EXTRA:-} \
  -- dotnet "$build/FastOverlay.Fuzz.dll" "$target" > "$findings/$target.log" 2>&1 || {
    rc=$?
    tail -n 30 "$findings/$target.log"
    echo "afl-fuzz exited with $rc"
    exit 1
  }

# 5. Report.
stats="$out/default/fuzzer_stats"
[ -f "$stats" ] || stats="$out/fuzzer_stats"
get() { grep -E "^$1 *:" "$stats" | head -n 1 | sed 's/^[^:]*: *//'; }
count() { find "$1" -maxdepth 1 -type f ! -name README.txt 2>/dev/null | wc -l; }
crashes=$(count "$(dirname "$stats")/crashes")
hangs=$(count "$(dirname "$stats")/hangs")
paths="$(get corpus_count)"
[ -n "$paths" ] || paths="$(get paths_total)"
echo "target:      $target"
echo "run time:    $(( $(get last_update) - $(get start_time) ))s"
echo "execs:       $(get execs_done) ($(get execs_per_sec)/s)"
echo "paths:       $paths (found by fuzzing: $(get corpus_found))"
echo "coverage:    $(get bitmap_cvg)"
echo "crashes:     $crashes"
echo "hangs:       $hangs"
echo "stats:       ${stats#"$root"/}"
if [ "$crashes" -gt 0 ] || [ "$hangs" -gt 0 ]; then
  echo "FAIL: replay with: dotnet run -c Release --project fuzz/FastOverlay.Fuzz -- $target ${stats%/fuzzer_stats}/crashes"
  exit 1
fi
