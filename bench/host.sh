#!/usr/bin/env bash
# host.sh: the host benchmark, rbt vs bpftrace 0.17, alternating runs on this machine
# (no VM, no TCG noise; docs/PERFORMANCE.md, "Host"). Four measurements:
#  1. startup, exec -> every probe live, for a suite of scripts (bpftrace's tutorial
#     one-liners, tools from its tools/ installed as /usr/sbin/*.bt, a 300-probe
#     wildcard): both tracers print `__BPFTRACE_NOTIFY_PROBES_ATTACHED` on stderr once
#     the last probe is attached (bench/probe.c -e times it); peak RSS (VmHWM) once the
#     output has been quiet, just before SIGINT;
#  2. compile scaling: generated BEGIN scripts of 100, 1000 and 5000 statements,
#     exec -> exit (wall time and peak RSS from /usr/bin/time);
#  3. per-event cost: a getppid(2) storm of STORM calls (bench/storm.c) untraced, under
#     a count() script and under a printf() script (output to a file); events printed
#     and reported lost;
#  4. the machine: kernel, CPUs, load average before and after.
# Prints a markdown report (also target/bench/host.md); with --doc it also replaces the
# section between the host-bench markers in docs/PERFORMANCE.md.
#
# usage: bench/host.sh [--doc]   env: RUNS (startup runs per tool and script, 5),
#   SIZES ("100 1000 5000"), COMPILE_RUNS (3), STORM (1000000), STORM_RUNS (3),
#   TIMEOUT (s per compile run, 120), RBT (a prebuilt rbt; default: cargo build --release)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$repo/target/bench
mkdir -p "$out/host"
runs=${RUNS:-5} sizes=${SIZES:-100 1000 5000} compile_runs=${COMPILE_RUNS:-3}
storm_n=${STORM:-1000000} storm_runs=${STORM_RUNS:-3} timeout_s=${TIMEOUT:-120}
if [[ -z ${RBT:-} ]]; then
  # The README's static musl build; cargo names the binary.
  RBT=$(cd "$repo" && cargo build --release -q --target x86_64-unknown-linux-musl --message-format=json |
    sed -n 's/.*"executable":"\([^"]*\/rbt\)".*/\1/p' | tail -1)
fi
command -v bpftrace >/dev/null || { echo "host.sh: bpftrace not installed" >&2; exit 2; }
gcc -O2 -o "$out/host/probe" "$repo/bench/probe.c"
gcc -O2 -o "$out/host/storm" "$repo/bench/storm.c"
export __BPFTRACE_NOTIFY_PROBES_ATTACHED=1
NOTIFY=__BPFTRACE_NOTIFY_PROBES_ATTACHED
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# min / median / max of the numbers on stdin ($1 decimals); median alone.
stats() {
  sort -g | awk -v d="${1:-0}" '{v[NR] = $1} END {
    if (NR == 0) { print "n/a"; exit }
    m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    f = "%." d "f"; printf f " / " f " / " f "\n", v[1], m, v[NR] }'
}
median() { sort -g | awk '{v[NR] = $1} END { if (NR == 0) print "n/a"; else print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a != "n/a") printf "%.3f", a / b; else print "n/a" }'; }
vals() { tr ' ' '\n' | grep -v '^$' || true; }
tracer() { if [[ $1 == rbt ]]; then echo "$RBT"; else echo bpftrace; fi; }

# The startup suite: NAME|ARGS (ARGS split on '|' again: -e PROGRAM or a file).
suite=(
  "hello world|-e|BEGIN { printf(\"hello world\\n\"); }"
  "openat printf|-e|tracepoint:syscalls:sys_enter_openat { printf(\"%s %s\\n\", comm, str(args->filename)); }"
  "read bytes hist|-e|tracepoint:syscalls:sys_exit_read /pid == 1/ { @bytes = hist(args->ret); }"
  "read sum by comm|-e|tracepoint:syscalls:sys_exit_read /args->ret/ { @[comm] = sum(args->ret); }"
  "syscalls by comm|-e|tracepoint:raw_syscalls:sys_enter { @[comm] = count(); }"
  "sched* count|-e|tracepoint:sched:sched* { @[probe] = count(); } interval:s:5 { exit(); }"
  "block issue hist|-e|tracepoint:block:block_rq_issue { @ = hist(args->bytes); }"
  "profile 99 Hz|-e|profile:hz:99 { @[cpu] = count(); }"
  "uprobe readline|-e|uretprobe:/bin/bash:readline { printf(\"%d\\n\", pid); }"
  "sys_enter_* (300+)|-e|tracepoint:syscalls:sys_enter_* { @[probe] = count(); }"
)
for tool in bashreadline bitesize cpuwalk gethostlatency killsnoop naptime opensnoop \
  pidpersec runqlat setuids statsnoop syncsnoop syscount writeback; do
  f=/usr/sbin/$tool.bt
  # Only the tools both tracers can start here (no kprobes on this host).
  [[ -r $f ]] && "$RBT" --dry-run "$f" >/dev/null 2>&1 && suite+=("$tool.bt|$f")
done

# startup NAME ARGS...: RUNS alternating runs; values into startup_<tool>[NAME], rss_..
declare -A st_rbt st_bt rss_rbt rss_bt
for entry in "${suite[@]}"; do
  IFS='|' read -r -a parts <<<"$entry"
  name=${parts[0]} args=("${parts[@]:1}")
  for _ in $(seq "$runs"); do
    for t in rbt bpftrace; do
      line=$("$out/host/probe" -e "$NOTIFY" -q 200 -t 30000 -- "$(tracer $t)" "${args[@]}" 2>/dev/null | head -1) || true
      ms=$(sed -n 's/^startup_ms=\([0-9.]*\) .*/\1/p' <<<"$line")
      kb=$(sed -n 's/.* hwm_kb=\([0-9]*\) .*/\1/p' <<<"$line")
      if [[ -z $ms ]]; then
        echo "host.sh: $t did not start '$name': $line" >&2
        continue
      fi
      if [[ $t == rbt ]]; then st_rbt[$name]+="$ms " rss_rbt[$name]+="$kb "; else st_bt[$name]+="$ms " rss_bt[$name]+="$kb "; fi
    done
  done
done

# A generated script of N statements (KIND: maps = @m1 = 1; ..., keys = @m[1] = 1; ...,
# chain = $x = $x + 1; ...), then exit().
gen() {
  local kind=$1 n=$2
  awk -v n="$n" -v k="$kind" 'BEGIN {
    printf "BEGIN {\n"; if (k == "chain") printf "  $x = 0;\n"
    for (i = 1; i <= n; i++) {
      if (k == "maps") printf "  @m%d = %d;\n", i, i
      else if (k == "keys") printf "  @m[%d] = %d;\n", i, i
      else printf "  $x = $x + 1;\n"
    }
    if (k == "chain") printf "  printf(\"%%d\\n\", $x);\n"
    printf "  exit();\n}\n" }'
}
# timed TOOL FILE: "SECONDS KB EXIT" of one run (exec -> exit), output discarded.
timed() {
  local t=$1 f=$2 rc=0
  timeout "$timeout_s" /usr/bin/time -f '%e %M' -o "$out/host/time" "$(tracer "$t")" "$f" >/dev/null 2>"$out/host/err" || rc=$?
  if [[ $rc -ne 0 ]]; then echo "fail fail $rc"; return; fi
  echo "$(tail -1 "$out/host/time") 0"
}
declare -A ct cr cerr
for kind in maps keys chain; do
  for n in $sizes; do
    f=$out/host/$kind-$n.bt
    gen "$kind" "$n" >"$f"
    for _ in $(seq "$compile_runs"); do
      for t in rbt bpftrace; do
        [[ -n ${cerr[$t,$kind,$n]:-} ]] && continue # failed or timed out once: enough
        read -r s kb rc <<<"$(timed "$t" "$f")"
        if [[ $rc != 0 ]]; then
          [[ $rc == 124 ]] && cerr[$t,$kind,$n]="timeout (${timeout_s} s)" ||
            cerr[$t,$kind,$n]="fails: $(grep -v RLIMIT_MEMLOCK "$out/host/err" | grep -m1 -iE 'error|too|limit' | cut -c1-100 | tr '|' '/')"
          continue
        fi
        ct[$t,$kind,$n]+="$(awk -v s="$s" 'BEGIN {print s * 1000}') " cr[$t,$kind,$n]+="$kb "
      done
    done
  done
done

# The storm under TRACER SCRIPT: starts it, waits for every probe to be live, runs the
# storm; leaves the storm's ms in $storm_ms, the tracer's VmHWM in $hwm.
under() {
  local t=$1 script=$2 o=$3 pid
  # Removed first: the shell truncates them only in the child, so a previous run's
  # marker could otherwise start the storm before this tracer has attached.
  rm -f "$o" "$o.err"
  "$(tracer "$t")" -e "$script" >"$o" 2>"$o.err" &
  pid=$!
  for _ in $(seq 600); do grep -q "$NOTIFY" "$o.err" && break; sleep 0.05; done
  storm_ms=$("$out/host/storm" "$storm_n")
  hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
  kill -INT "$pid"
  # A tracer that does not exit within a minute of SIGINT is killed and said so.
  for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "host.sh: $t did not exit within 60 s of SIGINT ($script); killed" >&2
    kill -KILL "$pid"
  fi
  wait "$pid" || true
}
count_script='tracepoint:syscalls:sys_enter_getppid /comm == "storm"/ { @ = count(); }'
printf_script='tracepoint:syscalls:sys_enter_getppid /comm == "storm"/ { printf("%d %s\n", pid, comm); }'
declare -A sm shwm printed lost
for _ in $(seq "$storm_runs"); do
  sm[none]+="$("$out/host/storm" "$storm_n") "
  for t in rbt bpftrace; do
    under "$t" "$count_script" "$out/host/count-$t.out"
    sm[$t,count]+="$storm_ms " shwm[$t,count]+="$hwm "
    under "$t" "$printf_script" "$out/host/printf-$t.out"
    sm[$t,printf]+="$storm_ms " shwm[$t,printf]+="$hwm "
    printed[$t]+="$(grep -c '^[0-9]* storm$' "$out/host/printf-$t.out" || true) "
    lost[$t]+="$(cat "$out/host/printf-$t.out" "$out/host/printf-$t.out.err" |
      sed -n 's/.*Lost \([0-9]*\) events.*/\1/p' | awk '{s += $1} END {print s + 0}') "
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

{
  echo "### Host: $(uname -r), $(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  quiet=$(awk -v a="${load_before%% *}" -v n="$(nproc)" 'BEGIN { print (a < 0.3 * n) ? "quiet" : "**not quiet**" }')
  echo "Machine $quiet: load average (1/5/15 min) before $load_before, after $load_after (quiet: below 0.3 per CPU before the run; the run itself adds ~1); $(ps -e --no-headers | wc -l) processes."
  echo "rbt: \`$RBT\` ($(file -b "$RBT" | grep -o 'static-pie linked\|statically linked\|dynamically linked' | head -1), $(stat -c %s "$RBT") bytes); bpftrace: $(bpftrace --version)."
  echo
  echo "#### Startup, exec -> every probe attached ($runs alternating runs; ms and VmHWM KB as min / median / max)"
  echo
  echo "| script | rbt ms | bpftrace ms | ratio (medians) | rbt KB | bpftrace KB | RSS ratio |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
  ratios=() rss_ratios=()
  for entry in "${suite[@]}"; do
    name=${entry%%|*}
    r=$(vals <<<"${st_rbt[$name]:-}" | median) b=$(vals <<<"${st_bt[$name]:-}" | median)
    rk=$(vals <<<"${rss_rbt[$name]:-}" | median) bk=$(vals <<<"${rss_bt[$name]:-}" | median)
    ratios+=("$(ratio "$r" "$b")") rss_ratios+=("$(ratio "$rk" "$bk")")
    cell() { if [[ -n $1 ]]; then vals <<<"$1" | stats "$2"; else echo "did not start"; fi; }
    echo "| $name | $(cell "${st_rbt[$name]:-}" 1) | $(cell "${st_bt[$name]:-}" 1) | ${ratios[-1]} | $(cell "${rss_rbt[$name]:-}" 0) | $(cell "${rss_bt[$name]:-}" 0) | ${rss_ratios[-1]} |"
  done
  echo "| **median over ${#suite[@]} scripts** | | | **$(printf '%s\n' "${ratios[@]}" | grep -v n/a | median)** | | | **$(printf '%s\n' "${rss_ratios[@]}" | grep -v n/a | median)** |"
  echo
  echo "#### Compile scaling: generated BEGIN scripts, exec -> exit ($compile_runs alternating runs; ms min / median / max, peak RSS KB median)"
  echo
  echo "| script | statements | rbt ms | bpftrace ms | ratio | rbt KB | bpftrace KB |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
  for kind in maps keys chain; do
    case $kind in
      maps) what='`@mI = I;` (one map each)' ;;
      keys) what='`@m[I] = I;` (one map)' ;;
      chain) what='`$x = $x + 1;`' ;;
    esac
    for n in $sizes; do
      ccell() { # TOOL: the timing cell, or why there is none
        local v=${ct[$1,$kind,$n]:-}
        if [[ -n $v ]]; then vals <<<"$v" | stats; else echo "${cerr[$1,$kind,$n]:-n/a}"; fi
      }
      r=$(vals <<<"${ct[rbt,$kind,$n]:-}" | median) b=$(vals <<<"${ct[bpftrace,$kind,$n]:-}" | median)
      echo "| $what | $n | $(ccell rbt) | $(ccell bpftrace) | $(ratio "$r" "$b") | $(vals <<<"${cr[rbt,$kind,$n]:-}" | median) | $(vals <<<"${cr[bpftrace,$kind,$n]:-}" | median) |"
    done
  done
  echo
  echo "#### Per-event cost: $storm_n getppid(2) calls ($storm_runs alternating runs; ms min / median / max)"
  echo
  none=$(vals <<<"${sm[none]}" | median)
  echo "| storm | untraced | rbt | bpftrace | slowdown rbt / bpftrace (vs untraced) | rbt KB | bpftrace KB |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
  for k in count printf; do
    r=$(vals <<<"${sm[rbt,$k]}" | median) b=$(vals <<<"${sm[bpftrace,$k]}" | median)
    echo "| \`$k\` script | $(vals <<<"${sm[none]}" | stats) | $(vals <<<"${sm[rbt,$k]}" | stats) | $(vals <<<"${sm[bpftrace,$k]}" | stats) | $(ratio "$r" "$none") / $(ratio "$b" "$none") | $(vals <<<"${shwm[rbt,$k]}" | median) | $(vals <<<"${shwm[bpftrace,$k]}" | median) |"
  done
  for t in rbt bpftrace; do
    p=$(vals <<<"${printed[$t]}" | median) l=$(vals <<<"${lost[$t]}" | median) ms=$(vals <<<"${sm[$t,printf]}" | median)
    echo "| printf: $t events printed / reported lost per run (of $storm_n) | | ${printed[$t]}/ ${lost[$t]} | per s (median): $(awk -v p="$p" -v l="$l" -v ms="$ms" 'BEGIN {printf "%.0f printed, %.0f lost", p * 1000 / ms, l * 1000 / ms}') | silently missing (median): $(awk -v p="$p" -v l="$l" -v n="$storm_n" 'BEGIN {print n - p - l}') | | |"
  done
  echo
} >"$out/host.md"
cat "$out/host.md"
if [[ ${1:-} == --doc ]]; then
  doc=$repo/docs/PERFORMANCE.md
  awk -v f="$out/host.md" '
    /<!-- host-bench:start -->/ { print; while ((getline l < f) > 0) print l; skip = 1; next }
    /<!-- host-bench:end -->/ { skip = 0 }
    !skip' "$doc" >"$doc.new" && mv "$doc.new" "$doc"
fi
