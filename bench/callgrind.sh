#!/usr/bin/env bash
# Instructions wsgate executes per echoed 32-byte text message, counted by
# valgrind's callgrind (user-space instructions only: the kernel's share is
# not counted). Each figure comes from two runs against a fresh wsgate under
# callgrind, a short one (A) and a long one (B), and
# (Ir_B - Ir_A) / (messages_B - messages_A) cancels start-up and handshakes.
#   unbatched: open loop, 64 connections, 2,000 msgs/s, 2 s and 12 s: every
#              message is its own event (the worst case);
#   batched:   closed loop, 64 connections x 16 in flight, 2 s and 8 s: as
#              many messages per read as the benchmark's small workload.
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

run() { # $1 = name, $2 = seconds, rest = wsbench load options; prints "messages Ir"
    local name=$1 secs=$2
    shift 2
    local log="$out/wsgate-$name.log"
    valgrind --tool=callgrind --callgrind-out-file="$out/cg-$name.out" \
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
    j=$("$build/bench/wsbench" --url "ws://$addr/" "$@" -s 32 -d "$secs" -w 0 --json -q)
    kill -TERM $vg
    wait $vg || true
    local msgs ir
    msgs=$(echo "$j" | sed -n 's/.*"messages":\([0-9]*\).*/\1/p')
    ir=$(sed -n 's/^summary: //p' "$out/cg-$name.out")
    echo "$msgs $ir"
}

per_msg() { # $1 = label, $2 = short secs, $3 = long secs, rest = load options
    local label=$1 sa=$2 sb=$3
    shift 3
    local ma ia mb ib
    read -r ma ia < <(run "$label-a" "$sa" "$@")
    read -r mb ib < <(run "$label-b" "$sb" "$@")
    echo "$label: $ma messages, $ia instructions; $mb messages, $ib instructions"
    echo "$label: instructions per echoed message: $(( (ib - ia) / (mb - ma) ))"
}

per_msg unbatched 2 12 -c 64 --rate $rate
per_msg batched 2 8 -c 64 -k 16
for label in unbatched batched; do
    echo
    echo "top functions ($label, long run, self cost):"
    callgrind_annotate "$out/cg-$label-b.out" 2>/dev/null | sed -n '/^-\+$/,$p' | grep -E '^ *[0-9,]+ ' | sed -n '1,15p'
done
echo "(callgrind output kept in $out)"
