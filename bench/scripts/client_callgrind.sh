#!/usr/bin/env bash
# Instructions per message of one library CLIENT under callgrind (issue 20): netaio's TcpClient /
# Connection::request, tarpc's client, or the raw frame client, against its own server (run
# natively, unpinned). The client runs twice, with N1 and N2 timed messages; the difference of the
# two totals divided by N2 - N1 is the cost per message, without start-up and connection set-up.
#
#   bench/scripts/client_callgrind.sh SIDE MODE WORKLOAD N1 N2
#   e.g. bench/scripts/client_callgrind.sh netaio none w2 10000 30000
#
# SIDE: netaio | tarpc | raw; MODE: netaio's plugins (none, sealed, …; none for the others);
# WORKLOAD: w1 (round trips) | w2 (256 in flight). Needs valgrind and release builds of
# `rpc-compare` (cargo build --release -p netaio-bench) and, for tarpc, `tarpc-echo`
# (cargo build --release -p netaio-bench-tarpc, a command of its own); set BIN_DIR if they are not
# in ${CARGO_TARGET_DIR:-target}/release. The callgrind files are kept for callgrind_annotate.
set -euo pipefail
side=$1 mode=$2 workload=$3 n1=$4 n2=$5
dir=${BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}
if [ "$side" = tarpc ]; then
    bin=$dir/tarpc-echo
    server=(server)
    client=()
else
    bin=$dir/rpc-compare
    server=(server --side "$side" --mode "$mode")
    client=(--side "$side" --mode "$mode")
fi
log=$(mktemp)
"$bin" "${server[@]}" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q listening "$log" && break; sleep 0.1; done
addr=$(awk '/listening/{print $2}' "$log")
total() {
    local out=/tmp/callgrind.client.$side.$mode.$workload.$1
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" client "${client[@]}" \
        --address "$addr" --workload "$workload" --count "$1" --warmup 100 >/dev/null 2>&1
    callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}'
}
a=$(total "$n1")
b=$(total "$n2")
echo "$side $mode $workload client: $a Ir for $n1, $b Ir for $n2: $(((b - a) / (n2 - n1))) Ir/message"
