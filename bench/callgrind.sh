#!/usr/bin/env bash
# Instructions wsgate executes per echoed 32-byte text message, counted by
# valgrind's callgrind (user-space instructions only: the kernel's share is
# not counted). Two fixed open-loop workloads are run, each against a fresh
# wsgate under callgrind:
#   A: 64 connections, 2,000 msgs/s for 2 s   (4,000 messages)
#   B: 64 connections, 2,000 msgs/s for 12 s  (24,000 messages)
# and (Ir_B - Ir_A) / (24,000 - 4,000) cancels start-up and handshakes.
# Each echoed message is two relayed frames (client->backend, backend->client).
#   bench/callgrind.sh            (make bench-callgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
out=$(mktemp -d /tmp/wsgate-callgrind.XXXXXX)
rate=2000
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

"$build/bench/wsecho" --listen 127.0.0.1:0 > "$out/echo.out" &
pids+=($!)
for _ in $(seq 50); do grep -q listening "$out/echo.out" && break; sleep 0.1; done
backend=$(sed -n 's/^listening //p' "$out/echo.out")

run() { # $1 = seconds; prints "messages Ir"
    local log="$out/wsgate-$1.log"
    valgrind --tool=callgrind --callgrind-out-file="$out/cg-$1.out" \
        "$build/wsgate" --listen 127.0.0.1:0 --backend "ws://$backend" --workers 1 \
        --log-level info 2> "$log" &
    local vg=$!
    pids+=($vg)
    local addr=
    for _ in $(seq 300); do
        addr=$(sed -n 's/.*"msg":"listening","addr":"\([^"]*\)".*/\1/p' "$log")
        [ -n "$addr" ] && break
        sleep 0.1
    done
    [ -n "$addr" ] || { echo "callgrind: wsgate did not start" >&2; cat "$log" >&2; exit 1; }
    local j
    j=$("$build/bench/wsbench" --url "ws://$addr/" -c 64 --rate $rate -s 32 -d "$1" -w 0 --json -q)
    kill -TERM $vg
    wait $vg || true
    local msgs ir
    msgs=$(echo "$j" | sed -n 's/.*"messages":\([0-9]*\).*/\1/p')
    ir=$(sed -n 's/^summary: //p' "$out/cg-$1.out")
    echo "$msgs $ir"
}

read -r ma ia < <(run 2)
read -r mb ib < <(run 12)
echo "run A: $ma messages, $ia instructions"
echo "run B: $mb messages, $ib instructions"
echo "instructions per echoed message: $(( (ib - ia) / (mb - ma) ))"
echo
echo "top functions (run B, inclusive of nothing: self cost):"
callgrind_annotate "$out/cg-12.out" 2>/dev/null | sed -n '/^-\+$/,$p' | grep -E '^ *[0-9,]+ ' | head -15
echo "(callgrind output kept in $out)"
