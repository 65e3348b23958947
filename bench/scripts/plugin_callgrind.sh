#!/usr/bin/env bash
# Instructions per message of the plugins alone (no sockets, no runtime), under callgrind.
#
#   bench/scripts/plugin_callgrind.sh MODE SIZE COUNT [PHASE]
#   e.g. bench/scripts/plugin_callgrind.sh sealed 64 100000 open
#
# MODE: hmac | hmac+aead | sealed | sealed-chacha; SIZE: content bytes; PHASE: open (default) or
# seal. Runs the plugin-cost binary (cargo build --release -p netaio-bench --bin plugin-cost; set
# PLUGIN_COST to its path if it is not in ${CARGO_TARGET_DIR:-target}/release/plugin-cost), which
# seals COUNT messages and then opens them, and counts only the phase's function
# (`open_outer` or `seal`). Valgrind has no AVX-512 and no SHA-NI, so SHA-256 and ChaCha20 run
# their AVX2 or portable code here; AES-NI and PCLMULQDQ are emulated.
set -euo pipefail
mode=$1 size=$2 count=$3 phase=${4:-open}
bin=${PLUGIN_COST:-${CARGO_TARGET_DIR:-target}/release/plugin-cost}
case $phase in
open) fn='netaio::plugin::pipeline::open_outer*' ;;
seal) fn='netaio::plugin::pipeline::seal' ;;
*) echo "phase: open or seal" >&2; exit 2 ;;
esac
out=$(mktemp /tmp/plugin_callgrind.XXXXXX)
trap 'rm -f "$out"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$out" --toggle-collect="$fn" \
    "$bin" --mode "$mode" --size "$size" --count "$count" >/dev/null 2>&1
ir=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}')
echo "$mode $size B $phase: $((ir / count)) Ir/message ($count messages)"
