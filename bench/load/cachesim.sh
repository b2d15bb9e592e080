#!/usr/bin/env bash
# Cache behaviour per request, for machines without hardware cache counters (VMs on which
# `perf stat` reports cache events as not supported): instructions, D1 misses and misses of a
# simulated last level (by default the 1 MiB, 8-way L2 of one core) under callgrind's cache
# simulator, for Portcullis (checks-on and pass-through routes) and nginx as the reverse proxy,
# each at every connection count, against the same nginx upstream and with the same request
# bytes as bench/load/run.sh (same config templates, same bearer token).
#
# Usage: bench/load/cachesim.sh [--help]
# Environment (defaults in brackets):
#   CONNS ["64 256"]  TARGETS ["portcullis portcullis-pass nginx"]  WINDOW seconds [8]
#   PORTCULLIS_BIN [target/release/portcullis]  LL simulated last level ["1048576,8,64"]
#   D1 ["32768,8,64"]  I1 ["65536,8,64"]  PROXY_CPU [0]  LOAD_CPU [1]  NO_INSTALL=1 never apt-get
#
# Method: the proxy runs under valgrind on PROXY_CPU, wrk and the upstream on LOAD_CPU. For
# Portcullis, wrk runs WINDOW + 8 seconds; instrumentation is on for WINDOW seconds from second
# 4, and requests are counted from portcullis_requests_total before and after, so connection
# set-up falls outside the window. nginx has no request counter: instrumentation is on for the
# whole wrk run of WINDOW seconds and requests are wrk's total (its 1-256 accepts included).
# Every run is bounded; all traffic goes to 127.0.0.1.

set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CONNS="${CONNS:-64 256}"
TARGETS="${TARGETS:-portcullis portcullis-pass nginx}"
WINDOW="${WINDOW:-8}"
PORTCULLIS_BIN="${PORTCULLIS_BIN:-$REPO/target/release/portcullis}"
LL="${LL:-1048576,8,64}"
D1="${D1:-32768,8,64}"
I1="${I1:-65536,8,64}"
PROXY_CPU="${PROXY_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"
UPSTREAM_PORT=18081 NGINX_PORT=18082 PORTCULLIS_PORT=18083 ADMIN_PORT=18900
# One worker thread for the gateway, as run.sh measures it.
export PORTCULLIS_THREADS=1 TOKIO_WORKER_THREADS=1

case "${1:-}" in
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    "") ;;
    *) echo "cachesim.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
esac
log() { printf '[cachesim] %s\n' "$*" >&2; }
die() { printf '[cachesim] error: %s\n' "$*" >&2; exit 1; }

missing=()
for cmd in valgrind callgrind_control nginx wrk taskset curl; do
    command -v "$cmd" >/dev/null || missing+=("$cmd")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    [[ "${NO_INSTALL:-0}" != 1 && $(id -u) == 0 ]] && command -v apt-get >/dev/null ||
        die "missing tools: ${missing[*]} (Debian: valgrind nginx-light wrk util-linux curl)"
    log "installing valgrind nginx-light wrk curl"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        valgrind nginx-light wrk util-linux curl >/dev/null
fi
[[ -x "$PORTCULLIS_BIN" ]] || die "no binary at $PORTCULLIS_BIN (cargo build --release -p portcullis)"
for p in $UPSTREAM_PORT $NGINX_PORT $PORTCULLIS_PORT $ADMIN_PORT; do
    ! ss -ltnH "( sport = :$p )" 2>/dev/null | grep -q . || die "port 127.0.0.1:$p is in use"
done

TMP="$(mktemp -d /tmp/portcullis-cachesim.XXXXXX)"
chmod 755 "$TMP"
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The run.sh templates, with their TLS placeholders left empty.
fill() {
    sed -e "s|@DIR@|$TMP|g" -e "s|@UPSTREAM_PORT@|$UPSTREAM_PORT|g" -e "s|@PROXY_PORT@|$NGINX_PORT|g" \
        -e "s|@LISTEN@|127.0.0.1:$PORTCULLIS_PORT|g" -e "s|@ADMIN@|127.0.0.1:$ADMIN_PORT|g" \
        -e "s|@UPSTREAM@|http://127.0.0.1:$UPSTREAM_PORT|g" -e "s|@DATA_DIR@|$REPO/config/demo|g" \
        -e '/^[[:space:]]*@TLS_LISTEN\(ER\)\{0,1\}@[[:space:]]*$/d' "$1" >"$2"
}
up() { # up URL SECONDS PID: until any HTTP answer, or the process died
    local deadline=$((SECONDS + $2))
    while ((SECONDS < deadline)); do
        kill -0 "$3" 2>/dev/null || return 1
        curl -s -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.2
    done
    return 1
}
served() { # requests the gateway has answered so far
    { curl -s --max-time 5 "http://127.0.0.1:$ADMIN_PORT/metrics" || true; } |
        awk '/^portcullis_requests_total/ { n += $NF } END { printf "%d\n", n }'
}
# per_request FILE REQUESTS LABEL: the callgrind totals divided by the request count
per_request() {
    awk -v n="$2" -v label="$3" '
        /^events:/ { for (i = 2; i <= NF; i++) col[$i] = i }
        /^totals:/ {
            if (n <= 0) { printf "%-34s no requests counted\n", label; exit }
            printf "%-34s %8d req  %7.0f instr  D1 %6.1f  L2 %6.1f  (D1 r %.1f w %.1f, L2 r %.1f w %.1f)\n",
                label, n, $col["Ir"] / n, ($col["D1mr"] + $col["D1mw"]) / n, ($col["DLmr"] + $col["DLmw"]) / n,
                $col["D1mr"] / n, $col["D1mw"] / n, $col["DLmr"] / n, $col["DLmw"] / n
        }' "$1"
}
callgrind() { # callgrind OUT CMD...: the command under the simulator on PROXY_CPU, not yet counting
    local out="$1"
    shift
    taskset -c "$PROXY_CPU" valgrind --tool=callgrind --cache-sim=yes --I1="$I1" --D1="$D1" \
        --LL="$LL" --instr-atstart=no --callgrind-out-file="$out" "$@" >"$out.log" 2>&1 &
    VG_PID=$!
    PIDS+=("$VG_PID")
}
finish() { # finish PID: write out the counts, stop the process
    callgrind_control -d "$1" >/dev/null 2>&1
    sleep 1
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

fill "$HERE/nginx-upstream.conf.tmpl" "$TMP/upstream.conf"
taskset -c "$LOAD_CPU" nginx -e "$TMP/upstream-error.log" -p "$TMP" -c "$TMP/upstream.conf" &
PIDS+=($!)
up "http://127.0.0.1:$UPSTREAM_PORT/" 10 $! || die "upstream nginx did not start"
fill "$HERE/portcullis.toml.tmpl" "$TMP/portcullis.toml"
token="$("$PORTCULLIS_BIN" token --config "$TMP/portcullis.toml" \
    --user aaaaaaaa-0000-0000-0000-000000000001 --device 11111111-0000-0000-0000-000000000001 \
    --group bbbbbbbb-0000-0000-0000-000000000001 --expires-in 6h)" || die "portcullis token failed"
fill "$HERE/nginx-proxy.conf.tmpl" "$TMP/proxy.conf"
sed -i 's/^worker_processes 1;/worker_processes 1;\nmaster_process off;/' "$TMP/proxy.conf"

log "simulated caches: I1 $I1, D1 $D1, last level $LL (size,associativity,line)"
for conns in $CONNS; do
    for target in $TARGETS; do
        out="$TMP/$target-$conns"
        case "$target" in
            portcullis | portcullis-pass)
                host=checked.bench.local
                [[ $target == portcullis-pass ]] && host=pass.bench.local
                callgrind "$out" "$PORTCULLIS_BIN" serve --config "$TMP/portcullis.toml"
                up "http://127.0.0.1:$PORTCULLIS_PORT/" 60 "$VG_PID" || die "portcullis did not start under valgrind"
                taskset -c "$LOAD_CPU" wrk -t1 -c"$conns" -d$((WINDOW + 8))s -H "Host: $host" \
                    -H "Authorization: Bearer $token" "http://127.0.0.1:$PORTCULLIS_PORT/" >/dev/null &
                wrk_pid=$!
                sleep 4
                before="$(served)"
                callgrind_control -i on "$VG_PID" >/dev/null 2>&1
                sleep "$WINDOW"
                callgrind_control -i off "$VG_PID" >/dev/null 2>&1
                after="$(served)"
                wait "$wrk_pid" || true
                finish "$VG_PID"
                per_request "$out.1" $((after - before)) "$target, $conns connections"
                ;;
            nginx)
                callgrind "$out" nginx -e "$TMP/proxy-error.log" -p "$TMP" -c "$TMP/proxy.conf"
                up "http://127.0.0.1:$NGINX_PORT/" 60 "$VG_PID" || die "nginx did not start under valgrind: $(tail -n 5 "$out.log" "$TMP/proxy-error.log" 2>&1)"
                callgrind_control -i on "$VG_PID" >/dev/null 2>&1
                requests="$(taskset -c "$LOAD_CPU" wrk -t1 -c"$conns" -d"${WINDOW}s" -H "Host: checked.bench.local" \
                    -H "Authorization: Bearer $token" "http://127.0.0.1:$NGINX_PORT/" | awk '/requests in/ { print $1 }')"
                callgrind_control -i off "$VG_PID" >/dev/null 2>&1
                finish "$VG_PID"
                per_request "$out.1" "${requests:-0}" "nginx, $conns connections"
                ;;
            *) die "unknown target: $target (portcullis, portcullis-pass, nginx)" ;;
        esac
    done
done
