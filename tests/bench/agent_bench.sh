#!/bin/bash
# Section (h) of `make bench`, also run alone: CAROTATE_BUILD=$PWD/build tests/bench/agent_bench.sh
# The cost of one carotate-agent check-in against real carotated + nginx, next to curl doing
# the same requests. Figures, not assertions: ratios within this run.
#
#  - one-shot processes, as the timer runs them (`/usr/bin/time -f '%U %S %M'`, BENCH_AGENT_RUNS
#    runs each: the mean CPU, the largest peak RSS): a 304 check-in (one GET, one full handshake) and a 200 check-in
#    (the staged bundle: GET 200, validation, atomic write, then the canary proof: a second
#    handshake, on the canary listener) against curl doing the same GET(s) with the same
#    headers, trust file and `--no-sessionid`;
#  - TLS session resumption on and off: one process doing BENCH_AGENT_N requests, each on a
#    new connection (`Connection: close`), resuming the TLS session (libcurl's session cache,
#    nginx's tickets) or not (`--no-sessionid`); CPU per request. carotate-agent runs once per
#    timer tick as a new process, and its two connections of a 200 check-in go to two
#    listeners (the canary has no session cache, on purpose: every proof is a full
#    handshake), so no check-in of the agent can resume a session: these rows show what
#    resumption would be worth, measured with curl on the same proxy;
#  - the floor: `--version` of each, the cost of starting the process and its libraries.
# Environment: CAROTATE_BUILD; BENCH_AGENT_RUNS (default 30), BENCH_AGENT_N (default 200).
# shellcheck disable=SC2119 # lib.sh helpers take optional arguments
set -eu

here=$(cd "$(dirname "$0")" && pwd)
: "${CAROTATE_BUILD:=$(cd "$here/../.." && pwd)/build}"
export CAROTATE_BUILD
# shellcheck source-path=SCRIPTDIR source=../integration/lib.sh
. "$here/../integration/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../integration/nginx.sh
. "$here/../integration/nginx.sh"
# shellcheck source-path=SCRIPTDIR source=../integration/agent.sh
. "$here/../integration/agent.sh"

runs=${BENCH_AGENT_RUNS:-30}
nreq=${BENCH_AGENT_N:-200}
agent_require
[ -x /usr/bin/time ] || t_skip "/usr/bin/time (GNU time) is not installed"

t_init
make_active_set
nginx_write_daemon_config
start_daemon
nginx_start
URL="https://127.0.0.1:$NGINX_PORT"
CANARY="https://127.0.0.1:$NGINX_CANARY_PORT"
echo "carotate-agent $PROJECT_VERSION from $CAROTATE_BUILD; nginx 127.0.0.1:$NGINX_PORT (canary :$NGINX_CANARY_PORT); $(nproc) cores"
case "$CAROTATE_BUILD" in */asan*) echo "NOTE: a sanitizer build: figures are not representative" ;; esac

A="$T/agent"
agent_dir "$A" id=bench-agent "canary_url=$CANARY" timeout=30s
AGENT_CONF="$A/agent.conf"
agent link --server "$URL" --ca-file "$SSL_DIR/ca.crt" --linking-key-file "$LINKING_KEY" \
	>/dev/null || fail "the bench agent links"
agent check-in >/dev/null || fail "the bench agent checks in"
TOKEN=$(cat "$A/state/token")
OLD_ID=$(pem_bundle_id "$A/etc/ca-bundle.pem")
cp -a "$A" "$T/agent.steady" # the agent before the new bundle: every run from it gets a 200

# measure LABEL CMD...: BENCH_AGENT_RUNS runs; "LABEL user+sys_ms rss_kib" (the mean CPU, the
# largest peak RSS) in $T/rows.
# PREP, when set, runs (untimed) before each run.
PREP=""
measure() {
	local label=$1 i
	shift
	: >"$T/m.out"
	for i in $(seq 1 "$runs"); do
		[ -z "$PREP" ] || "$PREP"
		/usr/bin/time -f '%U %S %M' -o "$T/m.one" "$@" >/dev/null 2>"$T/m.err" ||
			fail "$label: run $i failed" "$(cat "$T/m.err")" "$(cat "$T/m.one")"
		tail -n 1 "$T/m.one" >>"$T/m.out"
	done
	# GNU time counts CPU in 10 ms ticks: the mean over many runs resolves below one tick.
	awk -v l="$label" '{ c += ($1 + $2) * 1000; if ($3 > r) r = $3 }
	END { printf "%s\t%.1f\t%d\n", l, c / NR, r }' "$T/m.out" >>"$T/rows"
}
# measure_n LABEL CMD...: one run of CMD doing $nreq requests; per request.
measure_n() {
	local label=$1
	shift
	/usr/bin/time -f '%U %S %M' -o "$T/m.one" "$@" >/dev/null 2>"$T/m.err" ||
		fail "$label failed" "$(cat "$T/m.err")"
	tail -n 1 "$T/m.one" |
		awk -v l="$label" -v n="$nreq" '{ printf "%s\t%.2f\t%d\n", l, ($1 + $2) * 1000 / n, $3 }' >>"$T/rows"
}

# curl as the agent: the same headers and trust file; a new handshake (no session cache).
curl_args() { # curl_args TRUST ETAG BASE_URL
	printf '%s\n' -sS --fail --max-time 30 --no-sessionid --cacert "$1" -o /dev/null \
		-H "Authorization: Bearer $TOKEN" -H "X-Agent-Id: bench-agent" \
		-H "If-None-Match: \"$2\"" "$3/carotate/v1/ca-bundle"
}
reset_agent() {
	rm -rf "$A"
	cp -a "$T/agent.steady" "$A"
}
: >"$T/rows"

# ---------------------------------------------------------------- 304, one-shot
mapfile -t c304 < <(curl_args "$A/etc/ca-bundle.pem" "$OLD_ID" "$URL")
measure "carotate-agent check-in: 304" "$AGENT" -c "$A/agent.conf" check-in
measure "curl, the same GET: 304" curl "${c304[@]}"

# ---------------------------------------------------------------- 200 (+ canary), one-shot
ctl generate >/dev/null || fail "generate"
nginx_wait_serving "$NGINX_CANARY_PORT" "$SSL_DIR/new/server.crt"
cp "$SSL_DIR/ca-bundle.pem" "$T/new-bundle.pem"
NEW_ID=$(pem_bundle_id "$T/new-bundle.pem")
PREP=reset_agent
measure "carotate-agent check-in: 200 + canary proof" "$AGENT" -c "$A/agent.conf" check-in
PREP=""
[ "$(pem_bundle_id "$A/etc/ca-bundle.pem")" = "$NEW_ID" ] ||
	fail "the 200 runs installed the new bundle" "$(cat "$T/m.err")"
mapfile -t c200 < <(curl_args "$T/agent.steady/etc/ca-bundle.pem" "$OLD_ID" "$URL")
mapfile -t ccan < <(curl_args "$T/new-bundle.pem" "$NEW_ID" "$CANARY")
measure "curl, the same two GETs: 200 + canary 304" curl "${c200[@]}" --next "${ccan[@]}"

# ---------------------------------------------------------------- resumption on and off
# One curl process, $nreq GETs (304), each on a new connection.
{
	for _ in $(seq 1 "$nreq"); do
		printf 'url = "%s/carotate/v1/ca-bundle"\noutput = "/dev/null"\n' "$URL"
	done
} >"$T/urls.cfg"
cres=(curl -sS --fail --max-time 120 --cacert "$T/new-bundle.pem" -H "Connection: close"
	-H "Authorization: Bearer $TOKEN" -H "X-Agent-Id: bench-agent"
	-H "If-None-Match: \"$NEW_ID\"" -K "$T/urls.cfg")
measure_n "curl x$nreq in one process, resumed (per GET)" "${cres[@]}"
measure_n "curl x$nreq in one process, full handshakes (per GET)" "${cres[@]}" --no-sessionid

# ---------------------------------------------------------------- the floor
# What a process costs before it sends anything: loading libcurl and OpenSSL.
measure "carotate-agent --version (process start alone)" "$AGENT" --version
measure "curl --version (process start alone)" curl --version

# ---------------------------------------------------------------- the table
echo
awk -F'\t' 'BEGIN { printf "%-58s %14s %12s\n", "what (mean of runs; per GET for xN)", "user+sys ms", "peak RSS KiB" }
	{ printf "%-58s %14s %12s\n", $1, $2, $3; cpu[NR] = $2; rss[NR] = $3 }
	END {
		printf "\nratios (agent / curl): 304 cpu %.2f, rss %.2f; 200 + canary cpu %.2f, rss %.2f\n",
			cpu[1] / (cpu[2] ? cpu[2] : 1), rss[1] / (rss[2] ? rss[2] : 1),
			cpu[3] / (cpu[4] ? cpu[4] : 1), rss[3] / (rss[4] ? rss[4] : 1)
		printf "resumption: a resumed GET costs %.2f of a full handshake GET (curl)\n", cpu[5] / (cpu[6] ? cpu[6] : 1)
		printf "process start: %.0f %% of a 304 check-in'"'"'s CPU (agent), %.0f %% (curl)\n",
			100 * cpu[7] / (cpu[1] ? cpu[1] : 1), 100 * cpu[8] / (cpu[2] ? cpu[2] : 1)
	}' "$T/rows"
echo "(runs: $runs one-shot processes per row; $nreq GETs for the resumption rows)"
stop_daemon
nginx_stop
