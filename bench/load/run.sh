#!/usr/bin/env bash
# Load test: Portcullis vs nginx as a plain reverse proxy, in front of the same nginx upstream.
#
# Method (product brief section 8): the proxy under test runs alone on one core (PROXY_CPU),
# wrk and the upstream share the other (LOAD_CPU); one worker each. Targets are interleaved in
# every round; the summary reports medians over rounds. All traffic goes to 127.0.0.1 only.
#
# Usage: bench/load/run.sh [--h2] [--targets "direct nginx portcullis portcullis-pass"] [--help]
#   --h2        also drive HTTP/2 over TLS (h2load) against nginx-h2 and portcullis-h2
#   --targets   space-separated subset of: direct nginx portcullis portcullis-pass base base-pass
# Targets: "portcullis" = every access check on (route under a compliant-device policy, a
#   bearer token for a compliant device); "portcullis-pass" = the same binary on a route no
#   policy covers (pass-through); "base"/"base-pass" = the same two routes on a second binary
#   (PORTCULLIS_BASE_BIN, e.g. main's build), interleaved with the others in every round.
# Environment (defaults in brackets):
#   ROUNDS [10]  DURATION seconds per run [10]  CONNS ["64 256"]  WARMUP seconds [1]
#   PORTCULLIS_BIN [target/release/portcullis]  PROXY_CPU [0]  LOAD_CPU [1]
#   PORTCULLIS_BASE_BIN a second binary to compare (adds targets base and base-pass) [unset]
#   PORTCULLIS_THREADS [1] worker threads of each Portcullis (1 = current-thread runtime)
#   H2_STREAMS concurrent streams per h2 connection [10]; H2_CONNS connection counts for the
#     h2 targets ["64"] (h2load stalled here at 256 x 10 streams; each run is time-bounded)
#   CHECKED_HEADERS newline-separated headers sent to every target, so that all proxies see
#     the checks-on route's request bytes (e.g. an "Authorization: Bearer ..." line); else
#     bench/load/checked-headers.txt if present; else a token minted with `portcullis token`
#     (demo issuer key) for Alice's compliant laptop
#   RESULTS_DIR [bench/results]  NO_INSTALL=1 to never apt-get  KEEP_TMP=1 to keep logs
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

ROUNDS="${ROUNDS:-10}"
DURATION="${DURATION:-10}"
CONNS="${CONNS:-64 256}"
WARMUP="${WARMUP:-1}"
PORTCULLIS_BIN="${PORTCULLIS_BIN:-$REPO/target/release/portcullis}"
PORTCULLIS_BASE_BIN="${PORTCULLIS_BASE_BIN:-}"
PORTCULLIS_THREADS="${PORTCULLIS_THREADS:-1}"
PROXY_CPU="${PROXY_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"
H2_STREAMS="${H2_STREAMS:-10}"
H2_CONNS="${H2_CONNS:-64}"
RESULTS_DIR="${RESULTS_DIR:-$REPO/bench/results}"

UPSTREAM_PORT=18081
NGINX_PORT=18082
PORTCULLIS_PORT=18083
NGINX_TLS_PORT=18443
PORTCULLIS_TLS_PORT=18444
ADMIN_PORT=18900
BASE_PORT=18084
BASE_ADMIN_PORT=18901

TARGETS="direct nginx portcullis portcullis-pass"
[[ -n "$PORTCULLIS_BASE_BIN" ]] && TARGETS="$TARGETS base base-pass"
H2=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --h2) H2=1 ;;
        --targets) TARGETS="${2:?--targets needs a list}"; shift ;;
        -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

log() { printf '[load] %s\n' "$*" >&2; }
die() { printf '[load] error: %s\n' "$*" >&2; exit 1; }

# ---- tools --------------------------------------------------------------------------------
pick_pkg() { # first of the given Debian package names that has an install candidate
    local p
    for p in "$@"; do
        if apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [0-9]'; then echo "$p"; return; fi
    done
    echo "$1"
}
install_missing() {
    local missing=() cmd
    command -v nginx >/dev/null || missing+=(nginx)
    command -v wrk >/dev/null || missing+=(wrk)
    command -v taskset >/dev/null || missing+=(util-linux)
    command -v python3 >/dev/null || missing+=(python3)
    if [[ $H2 == 1 ]]; then
        command -v h2load >/dev/null || missing+=(h2load)
        command -v openssl >/dev/null || missing+=(openssl)
    fi
    [[ ${#missing[@]} -eq 0 ]] && return
    [[ "${NO_INSTALL:-0}" == 1 ]] && die "missing tools: ${missing[*]} (NO_INSTALL=1 set)"
    [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null ||
        die "missing tools: ${missing[*]}; install them (Debian: nginx-light wrk nghttp2-client)"
    log "installing missing tools: ${missing[*]}"
    apt-get update -qq
    local pkgs=()
    for cmd in "${missing[@]}"; do
        case "$cmd" in
            nginx) pkgs+=("$(pick_pkg nginx-light nginx)") ;;
            h2load) pkgs+=("$(pick_pkg nghttp2-client)") ;;
            *) pkgs+=("$cmd") ;;
        esac
    done
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
}
install_missing

[[ $(nproc) -ge 2 ]] || log "warning: only $(nproc) CPU; proxy and load generator will share it"
for p in $UPSTREAM_PORT $NGINX_PORT $PORTCULLIS_PORT $ADMIN_PORT $NGINX_TLS_PORT $PORTCULLIS_TLS_PORT \
    $BASE_PORT $BASE_ADMIN_PORT; do
    if ss -ltnH "( sport = :$p )" 2>/dev/null | grep -q .; then
        die "port 127.0.0.1:$p is already in use; stop whatever listens there"
    fi
done

# ---- processes and cleanup ----------------------------------------------------------------
TMP="$(mktemp -d /tmp/portcullis-load.XXXXXX)"
chmod 755 "$TMP" # nginx workers run as an unprivileged user
PIDS=()
cleanup() {
    local pid
    if [[ -f "$TMP/load.pid" ]]; then kill -TERM "$(cat "$TMP/load.pid")" 2>/dev/null || true; fi
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ "${KEEP_TMP:-0}" == 1 ]]; then log "logs kept in $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fill() { # fill TEMPLATE OUT [LISTEN_PORT ADMIN_PORT]: substitute @NAME@ placeholders
    sed -e "s|@DIR@|$TMP|g" -e "s|@UPSTREAM_PORT@|$UPSTREAM_PORT|g" \
        -e "s|@PROXY_PORT@|$NGINX_PORT|g" -e "s|@LISTEN@|127.0.0.1:${3:-$PORTCULLIS_PORT}|g" \
        -e "s|@ADMIN@|127.0.0.1:${4:-$ADMIN_PORT}|g" -e "s|@UPSTREAM@|http://127.0.0.1:$UPSTREAM_PORT|g" \
        -e "s|@DATA_DIR@|$REPO/config/demo|g" "$1" >"$2"
}
# replace_line FILE PLACEHOLDER TEXTFILE|-: put TEXTFILE's content (or nothing) in place of every
# line that holds only PLACEHOLDER (mentions of it in comments stay as they are)
replace_line() {
    python3 - "$1" "$2" "$3" <<'EOF'
import sys
path, key, src = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(src).read() if src != "-" else ""
lines = open(path).read().splitlines(keepends=True)
open(path, "w").write("".join(text if line.strip() == key else line for line in lines))
EOF
}

wait_http() { # wait_http URL SECONDS PID: until any HTTP answer, or the process died
    local url="$1" deadline=$((SECONDS + $2)) pid="$3"
    while ((SECONDS < deadline)); do
        kill -0 "$pid" 2>/dev/null || return 1
        curl -sk -o /dev/null --max-time 1 "$url" && return 0
        sleep 0.1
    done
    return 1
}

cpu_ticks() { # utime+stime of a process and its direct children (nginx master + workers)
    local total=0 p rest fields
    for p in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
        [[ -r /proc/$p/stat ]] || continue
        rest="$(cat "/proc/$p/stat" 2>/dev/null)" || continue
        rest="${rest##*) }" # fields after the command name: state=1 ... utime=12 stime=13
        read -r -a fields <<<"$rest"
        total=$((total + fields[11] + fields[12]))
    done
    echo "$total"
}
CLK_TCK="$(getconf CLK_TCK)"

if [[ $H2 == 1 ]]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=bench.local" \
        -addext "subjectAltName=DNS:checked.bench.local,DNS:pass.bench.local,IP:127.0.0.1" \
        -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null || die "openssl could not make a cert"
fi

# Upstream: nginx on the load core.
fill "$HERE/nginx-upstream.conf.tmpl" "$TMP/upstream.conf"
taskset -c "$LOAD_CPU" nginx -e "$TMP/upstream-error.log" -p "$TMP" -c "$TMP/upstream.conf" &
UPSTREAM_PID=$!
PIDS+=("$UPSTREAM_PID")
wait_http "http://127.0.0.1:$UPSTREAM_PORT/" 10 "$UPSTREAM_PID" ||
    die "upstream nginx did not start: $(cat "$TMP/upstream-error.log" 2>/dev/null)"

NGINX_PID="" PORTCULLIS_PID=""
want() { [[ " $TARGETS " == *" $1 "* ]]; }

if want nginx || [[ $H2 == 1 ]]; then
    fill "$HERE/nginx-proxy.conf.tmpl" "$TMP/proxy.conf"
    if [[ $H2 == 1 ]]; then
        printf '%s\n' "listen 127.0.0.1:$NGINX_TLS_PORT ssl http2 reuseport;" \
            "        ssl_certificate $TMP/cert.pem;" "        ssl_certificate_key $TMP/key.pem;" \
            "        http2_max_concurrent_streams 128;" >"$TMP/tls.txt"
        replace_line "$TMP/proxy.conf" "@TLS_LISTEN@" "$TMP/tls.txt"
    else
        replace_line "$TMP/proxy.conf" "@TLS_LISTEN@" -
    fi
    taskset -c "$PROXY_CPU" nginx -e "$TMP/proxy-error.log" -p "$TMP" -c "$TMP/proxy.conf" &
    NGINX_PID=$!
    PIDS+=("$NGINX_PID")
    wait_http "http://127.0.0.1:$NGINX_PORT/" 10 "$NGINX_PID" ||
        die "nginx proxy did not start: $(cat "$TMP/proxy-error.log" 2>/dev/null)"
fi

# Portcullis: skipped (with the reason) when the binary is missing or does not come up.
drop_target() { local t=" $TARGETS "; for x in "$@"; do t="${t// $x / }"; done; TARGETS="$(echo $t)"; }
# start_portcullis BIN PORT ADMIN_PORT NAME TLS(0|1): starts one gateway pinned to PROXY_CPU;
# sets STARTED_PID (empty when it did not come up, with the reason logged)
start_portcullis() {
    local bin="$1" port="$2" admin="$3" name="$4" tls="$5" conf="$TMP/$4.toml"
    STARTED_PID=""
    if [[ ! -x "$bin" ]]; then
        log "SKIP $name: no binary at $bin (cargo build --release -p portcullis, or set PORTCULLIS_BIN)"
        return
    fi
    fill "$HERE/portcullis.toml.tmpl" "$conf" "$port" "$admin"
    if [[ $tls == 1 ]]; then
        printf '%s\n' "[[listener]]" "addr = \"127.0.0.1:$PORTCULLIS_TLS_PORT\"" \
            "tls = { cert = \"$TMP/cert.pem\", key = \"$TMP/key.pem\" }" >"$TMP/tls.txt"
        replace_line "$conf" "@TLS_LISTENER@" "$TMP/tls.txt"
    else
        replace_line "$conf" "@TLS_LISTENER@" -
    fi
    PORTCULLIS_THREADS="$PORTCULLIS_THREADS" TOKIO_WORKER_THREADS="$PORTCULLIS_THREADS" \
        taskset -c "$PROXY_CPU" "$bin" serve --config "$conf" >"$TMP/$name.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    if ! wait_http "http://127.0.0.1:$port/" 20 "$pid"; then
        log "SKIP $name: 'portcullis serve' did not come up on 127.0.0.1:$port. Its output:"
        tail -n 20 "$TMP/$name.log" | sed 's/^/    /' >&2
        log "(config: $HERE/portcullis.toml.tmpl; 'portcullis check --config FILE' explains config errors)"
        return
    fi
    # Wait up to 10 s for /readyz (first good snapshot); give up after 3 s if the admin
    # listener does not answer at all.
    local ready="" n=0
    while ((n < 100)); do
        ready="$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
            "http://127.0.0.1:$admin/readyz" || true)"
        [[ "$ready" == 200 ]] && break
        [[ "$ready" == 000 ]] && ((n >= 30)) && break
        sleep 0.1
        n=$((n + 1))
    done
    case "$ready" in
        200) ;;
        000) log "warning: no admin listener answers on 127.0.0.1:$admin (/readyz); measuring anyway" ;;
        *) log "warning: $name /readyz answers $ready, not 200, after 10 s; measuring anyway" ;;
    esac
    STARTED_PID="$pid"
}
if want portcullis || want portcullis-pass || [[ $H2 == 1 ]]; then
    start_portcullis "$PORTCULLIS_BIN" "$PORTCULLIS_PORT" "$ADMIN_PORT" portcullis "$H2"
    PORTCULLIS_PID="$STARTED_PID"
    [[ -n "$PORTCULLIS_PID" ]] || drop_target portcullis portcullis-pass
fi
BASE_PID=""
if want base || want base-pass; then
    start_portcullis "$PORTCULLIS_BASE_BIN" "$BASE_PORT" "$BASE_ADMIN_PORT" base 0
    BASE_PID="$STARTED_PID"
    [[ -n "$BASE_PID" ]] || drop_target base base-pass
fi

# ---- targets -------------------------------------------------------------------------------
HDRS=()
if [[ -n "${CHECKED_HEADERS:-}" ]]; then
    while IFS= read -r h; do [[ -n "$h" ]] && HDRS+=(-H "$h"); done <<<"$CHECKED_HEADERS"
elif [[ -f "$HERE/checked-headers.txt" ]]; then
    while IFS= read -r h; do [[ -n "$h" && "$h" != \#* ]] && HDRS+=(-H "$h"); done <"$HERE/checked-headers.txt"
elif [[ -n "$PORTCULLIS_PID$BASE_PID" ]]; then
    # The demo user Alice (in All staff) on her compliant laptop: allowed by "Require
    # compliant device for SharePoint" after every check.
    mint_bin="$PORTCULLIS_BIN" mint_conf="$TMP/portcullis.toml"
    [[ -n "$PORTCULLIS_PID" ]] || { mint_bin="$PORTCULLIS_BASE_BIN"; mint_conf="$TMP/base.toml"; }
    token="$("$mint_bin" token --config "$mint_conf" --user aaaaaaaa-0000-0000-0000-000000000001 \
        --device 11111111-0000-0000-0000-000000000001 --group bbbbbbbb-0000-0000-0000-000000000001 \
        --expires-in 6h 2>"$TMP/token.err")" || die "portcullis token failed: $(cat "$TMP/token.err")"
    HDRS+=(-H "Authorization: Bearer $token")
fi

target_url() {
    case "$1" in
        direct) echo "http://127.0.0.1:$UPSTREAM_PORT/" ;;
        nginx) echo "http://127.0.0.1:$NGINX_PORT/" ;;
        portcullis | portcullis-pass) echo "http://127.0.0.1:$PORTCULLIS_PORT/" ;;
        base | base-pass) echo "http://127.0.0.1:$BASE_PORT/" ;;
        nginx-h2) echo "https://127.0.0.1:$NGINX_TLS_PORT/" ;;
        portcullis-h2) echo "https://127.0.0.1:$PORTCULLIS_TLS_PORT/" ;;
    esac
}
target_args() { # extra header arguments (same -H syntax for wrk, curl and h2load)
    case "$1" in
        portcullis | portcullis-h2 | base) echo "host" ;;
        portcullis-pass | base-pass) echo "pass" ;;
        *) echo "none" ;;
    esac
}
headers_for() { # sets the global array ARGS for target $1 and tool $2 (wrk|h2load|curl)
    ARGS=()
    local host_hdr="Host"
    [[ "$2" == h2load ]] && host_hdr=":authority"
    case "$(target_args "$1")" in
        host) ARGS=(-H "$host_hdr: checked.bench.local") ;;
        pass) ARGS=(-H "$host_hdr: pass.bench.local") ;;
    esac
    # Every target gets the same request headers (the checks-on route's token included), so
    # that each proxy reads and forwards the same bytes.
    ARGS+=("${HDRS[@]}")
}
proxy_pid() {
    case "$1" in
        nginx | nginx-h2) echo "$NGINX_PID" ;;
        portcullis | portcullis-pass | portcullis-h2) echo "$PORTCULLIS_PID" ;;
        base | base-pass) echo "$BASE_PID" ;;
        *) echo "" ;;
    esac
}

H1_TARGETS="$TARGETS"
H2_TARGETS=""
if [[ $H2 == 1 ]]; then
    [[ -n "$NGINX_PID" ]] && H2_TARGETS="nginx-h2"
    [[ -n "$PORTCULLIS_PID" ]] && H2_TARGETS="$H2_TARGETS portcullis-h2"
fi
ALL_TARGETS="$(echo $H1_TARGETS $H2_TARGETS)"
[[ -n "$ALL_TARGETS" ]] || die "no target left to measure"

for t in $ALL_TARGETS; do # one request each, to show what every target answers
    headers_for "$t" curl
    code="$(curl -sk -o "$TMP/probe.body" -w '%{http_code}' --max-time 5 "${ARGS[@]}" "$(target_url "$t")" || true)"
    log "probe $t: HTTP $code, $(wc -c <"$TMP/probe.body" 2>/dev/null || echo 0) bytes"
    [[ "$code" == 2* ]] || log "warning: $t does not answer 2xx; its runs measure that answer (see the errors column)"
done

n_runs=$((ROUNDS * $(wc -w <<<"$CONNS") * $(wc -w <<<"$ALL_TARGETS")))
est=$((n_runs * (DURATION + 1) + $(wc -w <<<"$CONNS") * $(wc -w <<<"$ALL_TARGETS") * WARMUP))
log "targets: $ALL_TARGETS; connections: $CONNS; $ROUNDS rounds x ${DURATION}s = $n_runs runs, about $((est / 60)) min $((est % 60)) s"
log "proxy on CPU $PROXY_CPU; wrk/h2load and upstream on CPU $LOAD_CPU; $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"

mkdir -p "$RESULTS_DIR"
TSV="$RESULTS_DIR/load-$(date -u +%Y%m%dT%H%M%SZ).tsv"
printf 'round\tconns\ttarget\trequests\tduration_s\trps\tp50_us\tp99_us\tcpu_us_per_req\tnon2xx\tsocket_errors\tload1\n' >"$TSV"

# load_tool CMD ARGS...: run the load generator on the load core and print its output; its pid
# is kept in a file so that cleanup can stop it if the script is interrupted mid-run
load_tool() {
    # Bounded even if the tool hangs (h2load can wait forever for a connection that never
    # completes its handshake): the run then counts as failed.
    timeout -s KILL "$((DURATION + WARMUP + 30))" taskset -c "$LOAD_CPU" "$@" >"$TMP/load.out" 2>&1 &
    echo $! >"$TMP/load.pid"
    wait $! || true
    rm -f "$TMP/load.pid"
    cat "$TMP/load.out"
}

# run_one TARGET CONNS SECONDS -> prints "requests duration_us p50_us p99_us non2xx socket_errors"
run_one() {
    local t="$1" c="$2" d="$3" url out
    url="$(target_url "$t")"
    if [[ "$t" == *-h2 ]]; then
        headers_for "$t" h2load
        rm -f "$TMP/h2.log"
        out="$(load_tool h2load -t1 -c"$c" -m"$H2_STREAMS" -D "$d" --log-file="$TMP/h2.log" \
            "${ARGS[@]}" "$url")"
        python3 - "$TMP/h2.log" "$d" "$out" <<'EOF'
import re, statistics, sys
path, d, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
lat, non2xx = [], 0
for line in open(path):
    parts = line.split("\t")
    if len(parts) >= 3:
        lat.append(float(parts[2]))
        non2xx += not parts[1].startswith("2")
lat.sort()
pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else 0
m = re.search(r"finished in ([\d.]+)(m?s)", out)
if not m:  # killed by the time bound, or failed: no result for this run
    print("h2load gave no result: " + " ".join(out.strip().splitlines()[-3:]), file=sys.stderr)
    print(0, 1, 0, 0, 0, 1)
    sys.exit(0)
dur_us = float(m.group(1)) * (1000 if m.group(2) == "ms" else 1_000_000)
m = re.search(r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
errs = sum(int(x) for x in m.groups()) if m else 0
print(len(lat), int(dur_us), pct(0.50), pct(0.99), non2xx, errs)
EOF
    else
        headers_for "$t" wrk
        out="$(load_tool wrk -t1 -c"$c" -d"${d}s" --timeout 5s --latency \
            -s "$HERE/report.lua" "${ARGS[@]}" "$url")"
        local line
        line="$(grep '^RESULT ' <<<"$out" || true)"
        if [[ -z "$line" ]]; then
            log "wrk gave no result for $t: $(tail -n 3 <<<"$out")"
            echo "0 1 0 0 0 1"
            return
        fi
        sed -E 's/^RESULT requests=([0-9]+) duration_us=([0-9]+) p50_us=([0-9.]+) p99_us=([0-9.]+) non2xx=([0-9]+) connect=([0-9]+) read=([0-9]+) write=([0-9]+) timeout=([0-9]+)/\1 \2 \3 \4 \5 \6 \7 \8 \9/' <<<"$line" |
            awk '{ print $1, $2, $3, $4, $5, $6 + $7 + $8 + $9 }'
    fi
}

skip_run() { [[ "$1" == *-h2 && " $H2_CONNS " != *" $2 "* ]]; } # h2 targets: H2_CONNS only

if ((WARMUP > 0)); then
    for c in $CONNS; do for t in $ALL_TARGETS; do
        skip_run "$t" "$c" || run_one "$t" "$c" "$WARMUP" >/dev/null
    done; done
fi

for round in $(seq "$ROUNDS"); do
    for c in $CONNS; do
        for t in $ALL_TARGETS; do
            skip_run "$t" "$c" && continue
            pid="$(proxy_pid "$t")"
            [[ -n "$pid" ]] && { kill -0 "$pid" 2>/dev/null || die "$t's process $pid died; see KEEP_TMP=1 logs"; }
            load1="$(cut -d' ' -f1 /proc/loadavg)" # machine load (other jobs) at the start
            before=0; [[ -n "$pid" ]] && before="$(cpu_ticks "$pid")"
            read -r requests dur_us p50 p99 non2xx sockerr < <(run_one "$t" "$c" "$DURATION")
            cpu="-"
            if [[ -n "$pid" ]] && ((requests > 0)); then
                after="$(cpu_ticks "$pid")"
                cpu="$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$requests" 'BEGIN { printf "%.2f", t * 1e6 / hz / n }')"
            fi
            rps="$(awk -v n="$requests" -v d="$dur_us" 'BEGIN { printf "%.1f", n / (d / 1e6) }')"
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$c" "$t" "$requests" \
                "$(awk -v d="$dur_us" 'BEGIN { printf "%.3f", d / 1e6 }')" "$rps" "$p50" "$p99" "$cpu" \
                "$non2xx" "$sockerr" "$load1" >>"$TSV"
            log "round $round/$ROUNDS c=$c $t: $rps req/s, p50 ${p50} us, p99 ${p99} us, cpu ${cpu} us/req, errors $((non2xx + sockerr)), load $load1"
        done
    done
done

echo
echo "Load test: $ROUNDS rounds x ${DURATION}s, connections: $CONNS, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); proxy on CPU $PROXY_CPU, load+upstream on CPU $LOAD_CPU"
echo
python3 "$HERE/summarize.py" "$TSV"
echo
echo "raw results: $TSV"
