#!/usr/bin/env bash
# Fuzzing (docs/fuzzing.md): builds the libFuzzer targets with clang into build-fuzz/ (only the
# sources they need, under ASan + UBSan), makes the seed corpora and dictionaries from the tree
# (tests/fuzz/make_corpus.py), then runs each target for a fixed time. Exits non-zero on any
# crash, sanitizer report, leak, timeout or out-of-memory, and prints where the reproducer is.
#
#   scripts/fuzz.sh                      every target, 60 s each (what CI runs)
#   scripts/fuzz.sh --seconds 3600       the long run: one hour each
#   scripts/fuzz.sh --targets "graph npy" --seconds 600 --keep-going
#
# --keep-going  fork mode: keep fuzzing after a finding and collect them all (triage)
# --no-pending  leave out the known, still crashing reproducers of tests/fuzz/pending/ (they are
#               seeds by default, so that a run fails on them until they are fixed)
# The working corpus build-fuzz/corpus/<target>/ grows from run to run; findings go to
# build-fuzz/findings/<target>/, logs to build-fuzz/logs/<target>.log.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
targets="graph safetensors npy image audio table"
keep_going=0
pending=1
usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) [ $# -ge 2 ] || usage; seconds=$2; shift 2 ;;
    --targets) [ $# -ge 2 ] || usage; targets=$2; shift 2 ;;
    --keep-going) keep_going=1; shift ;;
    --no-pending) pending=0; shift ;;
    -h|--help) usage ;;
    *) echo "fuzz.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: --seconds needs a positive integer" >&2; exit 2; }
for t in $targets; do
  case "$t" in graph|safetensors|npy|image|audio|table) ;; *) echo "fuzz.sh: unknown target '$t'" >&2; exit 2 ;; esac
done

out=build-fuzz
cxx=$(command -v clang++-14 || command -v clang++ || true)
[ -n "$cxx" ] || { echo "fuzz.sh: clang++ not found (scripts/setup.sh installs it)" >&2; exit 1; }
python=""
for candidate in python3 /usr/bin/python3; do  # the python3 on PATH may lack numpy
  if "$candidate" -c "import numpy" 2>/dev/null; then python=$candidate; break; fi
done
[ -n "$python" ] || { echo "fuzz.sh: python3 with numpy not found (python3-numpy)" >&2; exit 1; }

echo "== fuzz: building the targets in $out/ ($cxx) =="
start=$SECONDS
if [ ! -f "$out/CMakeCache.txt" ]; then
  cmake -S . -B "$out" -DFG_FUZZ=ON -DCMAKE_CXX_COMPILER="$cxx" >/dev/null
fi
mkdir -p "$out/logs"
if ! cmake --build "$out" -j"$(nproc)" >"$out/logs/build.log" 2>&1; then
  grep -E -A5 "error:" "$out/logs/build.log" | head -60 || tail -40 "$out/logs/build.log"
  echo "fuzz.sh: the build failed (log: $out/logs/build.log)" >&2
  exit 1
fi
grep -E "warning:" "$out/logs/build.log" || true
echo "fuzz: built in $((SECONDS - start)) s"
"$python" tests/fuzz/make_corpus.py "$out" $targets

symbolizer=$(command -v llvm-symbolizer-14 || command -v llvm-symbolizer || true)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:${symbolizer:+external_symbolizer_path=$symbolizer}
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# leaks inside system libraries we cannot fix (each explained in the file)
export LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/lsan_suppressions.txt:print_suppressions=0
declare -A max_len=([graph]=8192 [safetensors]=4096 [npy]=2048 [image]=65536 [audio]=65536
                    [table]=16384)

failed=()
for t in $targets; do
  mkdir -p "$out/corpus/$t" "$out/findings/$t"
  seeds=("$out/seeds/$t")
  [ -d "tests/fuzz/regressions/$t" ] && seeds+=("tests/fuzz/regressions/$t")
  [ "$pending" = 1 ] && [ -d "tests/fuzz/pending/$t" ] && seeds+=("tests/fuzz/pending/$t")
  flags=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512
         -max_len="${max_len[$t]}" -dict="$out/$t.dict" -artifact_prefix="$out/findings/$t/"
         -print_final_stats=1)
  [ "$keep_going" = 1 ] && flags+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
  before=$(find "$out/findings/$t" -type f | wc -l)
  echo "== fuzz: $t for $seconds s (log: $out/logs/$t.log) =="
  rc=0
  "$out/fuzz_$t" "${flags[@]}" "$out/corpus/$t" "${seeds[@]}" >"$out/logs/$t.log" 2>&1 || rc=$?
  # the last status line (coverage, corpus) and the speed
  grep -E "^#[0-9]+.*cov:" "$out/logs/$t.log" | tail -1 || true
  grep -E "stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)" "$out/logs/$t.log" || true
  after=$(find "$out/findings/$t" -type f | wc -l)
  if [ "$rc" -ne 0 ] || [ "$after" -gt "$before" ]; then
    failed+=("$t")
    echo "fuzz: $t FAILED (exit $rc); the report:"
    report=$(grep -E -A40 "^==[0-9]+== ?(ERROR|WARNING)|runtime error:|ERROR: libFuzzer" \
      "$out/logs/$t.log" | head -80 || true)
    if [ -n "$report" ]; then echo "$report"; else tail -60 "$out/logs/$t.log"; fi
    echo "fuzz: reproducers (replay one: $out/fuzz_$t FILE; keep it as a test in"
    echo "      tests/fuzz/regressions/$t/, see docs/fuzzing.md):"
    find "$out/findings/$t" -type f -newer "$out/$t.dict" | sed 's/^/  /'
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in: ${failed[*]}"
  exit 1
fi
echo "fuzz: no findings ($targets, $seconds s each)"
