#!/usr/bin/env bash
# Instruction count per message of one server under callgrind (stable, unlike wall time).
#
#   bench/scripts/callgrind.sh IMPL MODE WORKLOAD COUNT [OUT]
#   e.g. bench/scripts/callgrind.sh netaio none w2 100000 /tmp/cg.out
#
# IMPL: netaio | baseline; MODE: none | hmac | hmac+aead | sealed | sealed-chacha; WORKLOAD: w1 | w2 | w4 | w5 | w3 (for w3,
# COUNT is the number of seconds). Needs valgrind and a release build of the bench binary
# (cargo build --release -p netaio-bench); set BENCH to its path if it is not in
# ${CARGO_TARGET_DIR:-target}/release/bench. Collection starts once the server listens and stops
# when the client is done, so start-up is not counted. SERVER_ARGS adds server flags
# (e.g. SERVER_ARGS='--idle-timeout 0'). Prints Ir total and Ir per message; the
# callgrind file is kept for callgrind_annotate.
set -euo pipefail
imp=$1 mode=$2 workload=$3 count=$4
out=${5:-/tmp/callgrind.$imp.$mode.$workload}
bench=${BENCH:-${CARGO_TARGET_DIR:-target}/release/bench}
size=64
[ "$workload" = w5 ] && size=60000
transport=tcp
[ "$workload" = w4 ] && transport=udp
rm -f "$out" "$out".*
log=$(mktemp)
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
    "$bench" server --impl "$imp" --mode "$mode" --transport "$transport" ${SERVER_ARGS:-} >"$log" 2>"$log.err" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log" "$log.err"' EXIT
for _ in $(seq 100); do grep -q listening "$log" && break; sleep 0.1; done
addr=$(awk '/listening/{print $2}' "$log")
callgrind_control -i on "$pid" >/dev/null; sleep 0.5
if [ "$workload" = w3 ]; then
    args=(--workload w3 --seconds "$count" --conns 50 --rate-estimate 20000)
else
    args=(--workload "$workload" --count "$count" --warmup 0 --size "$size")
fi
result=$("$bench" client --address "$addr" --mode "$mode" "${args[@]}" --timeout 600)
callgrind_control -d "$pid" >/dev/null
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
n=$(printf '%s' "$result" | sed -n 's/.*"count":\([0-9]*\).*/\1/p')
file="$out.1"
ir=$(callgrind_annotate "$file" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}')
echo "$imp $mode $workload: $n messages, $ir Ir, $((ir / n)) Ir/message ($file)"
