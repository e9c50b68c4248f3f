# golden.sh: the in-VM half of the golden suite (tests/golden_vm.rs), sourced
# by the generated /run.sh. For each scenario it starts the reference
# (bpftrace running Debian's /bin/tcpaccept.bt, i.e. v0.17.0) and rbt on every
# script version at the same time, waits for all headers, runs the workload,
# waits for the events, stops every tracer with SIGINT (as Ctrl-C would) and
# sends all outputs to the host over /dev/ttyS1, one gzip+base64 chunk per
# scenario:  @@CHUNK <scenario> / base64 lines / @@CHUNK-END
# Inside a chunk each file is framed as "@@FILE <name> <bytes>\n<bytes>\n".
# Inputs (set by run.sh): RBT (the binary under test), VERSIONS (script
# names, run as $SCRIPTS/<version>.bt; SCRIPTS defaults to /bin). Optional:
# REF (the reference command, default "bpftrace /bin/tcpaccept.bt"),
# GOLDEN_DIR (outputs kept in $GOLDEN_DIR/<scenario>/, default /tmp/golden),
# GOLDEN_SINK (where chunks go, default /dev/ttyS1; /dev/null to keep only
# the files, as scripts/vm-demo.sh does).
# shellcheck shell=sh disable=SC2086  # $pids is a word list by design

up() { cut -d' ' -f1 /proc/uptime; }

data_lines() { # accept lines printed so far (they start with HH:MM:SS)
  grep -c '^[0-9][0-9]:[0-9][0-9]:[0-9][0-9] ' "$1" 2>/dev/null || true
}

alive() { kill -0 "$1" 2>/dev/null; }

# poll_tracers N CHECK: every 0.1 s, at most N times, run "CHECK TRACER PID"
# for every tracer (in $tracers, paired with $pids); stop once no CHECK
# succeeds (succeeding means "still waiting for this one"). Sets $polls.
poll_tracers() {
  limit=$1 check=$2 polls=0
  while [ $polls -lt "$limit" ]; do
    waiting=0
    set -- $pids
    for t in $tracers; do
      if $check "$t" "$1"; then waiting=1; fi
      shift
    done
    [ $waiting = 0 ] && return
    sleep 0.1
    polls=$((polls + 1))
  done
}

running() { alive "$2"; }

header_pending() { # marks the time a tracer's column header appeared
  if [ ! -e "$d/$1.up" ] && grep -q '^TIME' "$d/$1.out"; then up >"$d/$1.up"; fi
  alive "$2" && [ ! -e "$d/$1.up" ]
}

events_pending() { alive "$2" && [ "$(data_lines "$d/$1.out")" -lt "$accepts" ]; }

wait_exit() { poll_tracers "$1" running; } # wait_exit N: until no tracer runs, at most N/10 s

# scenario NAME ACCEPTS WORKLOAD: ACCEPTS is how many accept lines each tracer
# must print; WORKLOAD is shell code (its stdout is the ground truth).
scenario() {
  name=$1 accepts=$2 workload=$3
  d=${GOLDEN_DIR:-/tmp/golden}/$name
  rm -rf "$d" && mkdir -p "$d"
  echo "scenario $name: starting tracers"
  t_start=$(up)
  ${REF:-bpftrace /bin/tcpaccept.bt} >"$d/bpftrace.out" 2>"$d/bpftrace.err" &
  pids=$!
  tracers=bpftrace
  for v in $VERSIONS; do
    "$RBT" "${SCRIPTS:-/bin}/$v.bt" >"$d/rbt-$v.out" 2>"$d/rbt-$v.err" &
    pids="$pids $!"
    tracers="$tracers rbt-$v"
  done
  # Wait until every tracer printed its column header (or died).
  poll_tracers 1200 header_pending
  t_headers=$(up)
  echo "scenario $name: headers after $polls polls; running workload"
  sh -c "$workload" >"$d/workload.out" 2>&1
  workload_rc=$?
  t_workload=$(up)
  # Wait until every live tracer printed all the accepts (bounded).
  if [ "$accepts" = 0 ]; then
    sleep 1
  else
    poll_tracers 600 events_pending
  fi
  t_events=$(up)
  kill -INT $pids 2>/dev/null
  wait_exit 100
  # A tracer still running 10 s after SIGINT: record where it is stuck (in
  # its stderr), interrupt it once more (as a second Ctrl-C would), and
  # kill it if that does not help either. (bpftrace 0.17 sometimes misses
  # the first SIGINT and sleeps in epoll_wait until the next one.)
  set -- $pids
  for t in $tracers; do
    if alive "$1"; then
      {
        echo "$t still running 10 s after SIGINT; its threads' kernel stacks:"
        for task in /proc/"$1"/task/*; do
          echo "task ${task##*/} $(cut -d' ' -f2-3 "$task/stat") wchan=$(cat "$task/wchan")"
          cat "$task/stack"
        done
      } >>"$d/$t.err" 2>&1
      kill -INT "$1"
    fi
    shift
  done
  wait_exit 400
  meta=""
  set -- $pids
  for t in $tracers; do
    if alive "$1"; then
      kill -KILL "$1"
      echo "$t did not exit within 50 s of SIGINT (killed)" >>"$d/$t.err"
    fi
    wait "$1"
    meta="$meta ${t}_rc=$? ${t}_up=$(cat "$d/$t.up" 2>/dev/null || echo none)"
    rm -f "$d/$t.up"
    shift
  done
  t_end=$(up)
  echo "start=$t_start headers=$t_headers workload=$t_workload events=$t_events end=$t_end workload_rc=$workload_rc$meta" >"$d/meta"
  echo "scenario $name: done ($(cat "$d/meta"))"
  send_chunk "$name" "$d"
}

# send_chunk NAME DIR: every file of DIR to the host, as one chunk.
send_chunk() {
  {
    echo "@@CHUNK $1"
    for f in "$2"/*; do
      printf '@@FILE %s %s\n' "${f##*/}" "$(wc -c <"$f")"
      cat "$f"
      echo
    done | gzip -c | base64
    echo "@@CHUNK-END"
  } >"${GOLDEN_SINK:-/dev/ttyS1}"
}

attach_pending() { alive "$2" && ! grep -q __BPFTRACE_NOTIFY_PROBES_ATTACHED "$d/$1.err"; }

# map_scenario NAME SCRIPT WORKLOAD: bpftrace and rbt run the same SCRIPT at the same
# time (each says on stderr when its probes are attached), WORKLOAD runs, one SIGINT
# stops both (bpftrace gets a second one if it missed the first); maps print at exit.
# pick_offset SCRIPT: replace its +OFFSET with the first kprobe offset past
# ksys_read's ftrace call that bpftrace attaches to (5, or 9 behind endbr64).
pick_offset() {
  for off in 5 9; do
    if bpftrace -e "kprobe:ksys_read+$off {} BEGIN { exit(); }" >/dev/null 2>&1; then
      sed -i "s/+OFFSET/+$off/" "$1"
      echo "pick_offset: $off"
      return
    fi
  done
  echo "pick_offset: bpftrace attached at neither 5 nor 9"
}

map_scenario() {
  name=$1 script=$2 workload=$3
  if grep -q '+OFFSET' "$script"; then pick_offset "$script"; fi
  d=${GOLDEN_DIR:-/tmp/golden}/$name
  rm -rf "$d" && mkdir -p "$d"
  echo "map scenario $name: starting tracers"
  __BPFTRACE_NOTIFY_PROBES_ATTACHED=1 bpftrace "$script" >"$d/bpftrace.out" 2>"$d/bpftrace.err" &
  pids=$!
  __BPFTRACE_NOTIFY_PROBES_ATTACHED=1 "$RBT" "$script" >"$d/rbt.out" 2>"$d/rbt.err" &
  pids="$pids $!"
  tracers="bpftrace rbt"
  poll_tracers 1200 attach_pending
  sh -c "$workload" >"$d/workload.out" 2>&1
  workload_rc=$?
  # Let the tracers read their last events: bpftrace 0.17 drops what is still
  # in its perf buffers at SIGINT (seen: 3 of tcplife's 6 lines on 6.12).
  sleep 1
  set -- $pids
  kill -INT "$2" "$1" 2>/dev/null
  wait_exit 100
  if alive "$1"; then kill -INT "$1"; fi
  wait_exit 400
  meta="workload_rc=$workload_rc"
  for t in $tracers; do
    if alive "$1"; then
      kill -KILL "$1"
      echo "$t did not exit within 50 s of SIGINT (killed)" >>"$d/$t.err"
    fi
    wait "$1"
    meta="$meta ${t}_rc=$?"
    shift
  done
  echo "$meta" >"$d/meta"
  echo "map scenario $name: done ($meta)"
  send_chunk "$name" "$d"
}
