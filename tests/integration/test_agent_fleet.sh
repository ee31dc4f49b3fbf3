#!/bin/bash
# A fleet of 50 real carotate-agent processes through a whole rotation (issue 16, "Tests"):
# real carotated, real nginx (packaging/nginx/ on loopback ports), each agent with its own
# configuration, state_dir, bundle path and a hook that appends a line to its own log.
# Run in parallel batches:
#
#   link      48 with a join token (one token, 48 uses), 2 with the linking key; odd agents
#             trust the proxy by --ca-pin sha256:<active CA>, even ones by --ca-file;
#   generate  check-in rounds until `carotatectl report --json` says 100 % acknowledged and
#             100 % verified (the canary proof: the agents have no canary URL of their
#             own, they use the proxy's X-Carotate-Canary announcement, [agents] canary_url);
#   rotate, restore --latest, retire   each followed by check-in rounds.
#
# After every step, for every agent: `curl --cacert <the bundle that agent wrote>` to the
# proxy's main listener succeeds; the bundle's certificates are the daemon's current bundle
# (its id = `carotatectl status` bundle.id); the hook ran exactly as many times as the
# bundle file changed (a line per change, never for a 304), and every agent's bundle
# changed in a step exactly when the daemon's bundle id did.
# timeout: 420
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
t_plain_only "50 agents, about 1,600 TLS check-ins (4 min under ASan); test_e2e_agents, test_agent_identity and test_load_hostile drive the same daemon and worker paths under ASan"
# shellcheck source-path=SCRIPTDIR source=nginx.sh
. "$(dirname "$0")/nginx.sh"
# shellcheck source-path=SCRIPTDIR source=agent.sh
. "$(dirname "$0")/agent.sh"

command -v curl >/dev/null || t_skip "curl is not installed (make deps installs it)"
t_init

agent_require
N=${CAROTATE_FLEET_AGENTS:-50}
BATCH=${CAROTATE_FLEET_BATCH:-10}
LINKING_KEY_AGENTS=2 # the last ones link with the linking key, the others with a join token
AGENTS_DIR="$T/agents"
mkdir -m 0755 "$AGENTS_DIR"

# ---------------------------------------------------------------- daemon and nginx

make_active_set
cp "$SSL_DIR/ca.crt" "$T/first-ca.pem"
nginx_write_daemon_config
start_daemon
nginx_start
CANARY_URL="https://127.0.0.1:$NGINX_CANARY_PORT"
# The daemon announces the canary ([agents] canary_url); the ports are only known now, so
# it restarts with the key (nginx reconnects to the agent sockets per request).
stop_daemon
sed -i "s|^\(canary_socket = .*\)$|\1\ncanary_url = $CANARY_URL|" "$CONF"
start_daemon
wait_until 5000 test -S "$RUN_DIR/agent.sock" || fail "the agent socket is back"
URL="https://127.0.0.1:$NGINX_PORT"

# ---------------------------------------------------------------- the agents

HOOK="$T/hook.sh"
cat >"$HOOK" <<'EOF'
#!/bin/sh
# One line per run: the time, then the arguments (the agent's hook log first).
echo "$(date +%s.%N) $*" >>"$1"
EOF
chmod 0755 "$HOOK"

adir() { printf '%s/a%02d' "$AGENTS_DIR" "$1"; }
for i in $(seq 1 "$N"); do
	d=$(adir "$i")
	agent_dir "$d" "# test_agent_fleet: agent $i" "id=$(printf 'fleet-%02d' "$i")" \
		"hook=$HOOK $d/hook.log $(printf 'fleet-%02d' "$i")" hook_timeout=10s timeout=20s
done

run ctl --json join-token create --uses $((N - LINKING_KEY_AGENTS)) --description "test fleet"
[ "$RC" -eq 0 ] || fail "join-token create" "$ERR"
printf '%s' "$OUT" | jsave "$T/jt.json"
(umask 077 && jget token "$T/jt.json" >"$T/join-token")
PIN="sha256:$(cert_der_sha256 "$T/first-ca.pem")"

# link_args I: how agent I links (odd: --ca-pin, even: --ca-file; the last ones by the
# linking key).
link_args() {
	local i=$1
	printf '%s\n' link --server "$URL"
	if [ $((i % 2)) -eq 1 ]; then printf '%s\n' --ca-pin "$PIN"; else printf '%s\n' --ca-file "$T/first-ca.pem"; fi
	if [ "$i" -gt $((N - LINKING_KEY_AGENTS)) ]; then
		printf '%s\n' --linking-key-file "$LINKING_KEY"
	else
		printf '%s\n' --join-token-file "$T/join-token"
	fi
}

bundle_sum() { if [ -f "$1" ]; then sha256sum <"$1" | cut -c1-64; else echo none; fi; }

# agent_job I VERB: one agent process; its exit code in rc, its stderr in err, and a line
# in changes (the new file's sum) when its bundle file changed.
agent_job() {
	local i=$1 verb=$2 d before after rc=0
	local -a args
	d=$(adir "$i")
	if [ "$verb" = link ]; then mapfile -t args < <(link_args "$i"); else args=("$verb"); fi
	before=$(bundle_sum "$d/etc/ca-bundle.pem")
	"$AGENT" -c "$d/agent.conf" "${args[@]}" >"$d/out" 2>"$d/err" </dev/null || rc=$?
	after=$(bundle_sum "$d/etc/ca-bundle.pem")
	echo "$rc" >"$d/rc"
	[ "$before" = "$after" ] || echo "$after" >>"$d/changes"
}

# fleet VERB WHAT: every agent runs VERB, BATCH at a time; each must exit 0.
fleet() {
	local verb=$1 what=$2 i bad="" start
	local -a pids=()
	start=$(ms_now)
	for i in $(seq 1 "$N"); do rm -f "$(adir "$i")/rc"; done
	# Only the agents' jobs are waited for: the daemon and nginx are children of this shell too.
	for i in $(seq 1 "$N"); do
		agent_job "$i" "$verb" &
		pids+=($!)
		if [ ${#pids[@]} -eq "$BATCH" ] || [ "$i" -eq "$N" ]; then
			wait "${pids[@]}" || true
			pids=()
		fi
	done
	for i in $(seq 1 "$N"); do
		[ "$(cat "$(adir "$i")/rc" 2>/dev/null)" = 0 ] ||
			bad="$bad fleet-$i (exit $(cat "$(adir "$i")/rc" 2>/dev/null): $(head -c 300 "$(adir "$i")/err"))"
	done
	[ -z "$bad" ] || fail "$what: every agent's $verb exits 0" "$bad" "nginx: $(tail -n 3 "$NGINX_ERROR_LOG")"
	ok "$what: $N agents ran $verb, exit 0 ($(($(ms_now) - start)) ms)"
}

changes() { if [ -f "$(adir "$1")/changes" ]; then wc -l <"$(adir "$1")/changes"; else echo 0; fi; }
hooks() { if [ -f "$(adir "$1")/hook.log" ]; then wc -l <"$(adir "$1")/hook.log"; else echo 0; fi; }

# The bundle id (README: Stage 2) of each agent's bundle, one "I ID" a line.
bundle_ids() {
	local -a files=()
	for i in $(seq 1 "$N"); do files+=("$(adir "$i")/etc/ca-bundle.pem"); done
	"$PY" -c '
import base64, hashlib, re, sys
for i, path in enumerate(sys.argv[1:], 1):
    try:
        t = open(path).read()
    except OSError:
        print(i, "missing"); continue
    ders = sorted(base64.b64decode("".join(m.split()))
                  for m in re.findall(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", t, re.S))
    print(i, hashlib.sha256(b"".join(ders)).hexdigest())' "${files[@]}"
}

daemon_bundle_id() { ctl --json status | jsave "$T/st.json" && jget bundle.id "$T/st.json"; }

# check_step WHAT: curl through every agent's bundle, bundles current, hooks = changes.
check_step() {
	local what=$1 want i id bad=""
	want=$(daemon_bundle_id)
	while read -r i id; do
		[ "$id" = "$want" ] || bad="$bad fleet-$i:$id"
	done < <(bundle_ids)
	[ -z "$bad" ] || fail "$what: every agent holds the daemon's bundle ($want)" "$bad"
	ok "$what: every agent holds the daemon's bundle ${want:0:12}"
	for i in $(seq 1 "$N"); do
		[ "$(hooks "$i")" = "$(changes "$i")" ] ||
			bad="$bad fleet-$i(hook ran $(hooks "$i"), bundle changed $(changes "$i"))"
	done
	[ -z "$bad" ] || fail "$what: each hook ran exactly when its bundle changed" "$bad"
	ok "$what: each hook ran exactly as often as its bundle changed"
	curl_all "$what"
}

# curl_all WHAT: curl trusting only each agent's bundle gets through the main listener.
curl_all() {
	local i rc bad=""
	for i in $(seq 1 "$N"); do
		rc=0
		curl -sS --max-time 10 -o /dev/null --cacert "$(adir "$i")/etc/ca-bundle.pem" \
			"$URL/" 2>"$T/curl.err" || rc=$?
		[ "$rc" = 0 ] || bad="$bad fleet-$i(curl exit $rc: $(cat "$T/curl.err"))"
	done
	[ -z "$bad" ] || fail "$1: curl --cacert <each agent's bundle> $URL/ succeeds" "$bad"
	ok "$1: curl --cacert <each agent's bundle> $URL/ succeeds for all $N agents"
}

# Each agent's bundle changed BY times since the counts in $T/counts.SNAP were taken.
snap_counts() { for i in $(seq 1 "$N"); do changes "$i"; done >"$T/counts.$1"; }
changed_by() {
	local snap=$1 by=$2 what=$3 i=0 c bad=""
	while read -r c; do
		i=$((i + 1))
		[ "$(changes "$i")" = $((c + by)) ] || bad="$bad fleet-$i(+$(($(changes "$i") - c)))"
	done <"$T/counts.$snap"
	[ -z "$bad" ] || fail "$what: every agent's bundle changed $by time(s)" "$bad"
	ok "$what: every agent's bundle changed $by time(s)"
}

# report_json: `carotatectl report --json` in $T/rep.json(.flat).
report_json() {
	run ctl --json report
	[ "$RC" -eq 0 ] || fail "report --json" "$ERR"
	printf '%s' "$OUT" | jsave "$T/rep.json"
}
rep() { jget "$1" "$T/rep.json"; }

# rounds WHAT: check-in rounds (at most 5) until the report says 100 % acknowledged and
# verified for all N agents.
rounds() {
	local what=$1 r
	for r in 1 2 3 4 5; do
		fleet check-in "$what: check-in round $r"
		report_json
		if [ "$(rep acknowledged)" = "$N" ] && [ "$(rep verified)" = "$N" ]; then
			break
		fi
	done
	assert_eq "$N $N $N 100 100 0" \
		"$(rep active) $(rep acknowledged) $(rep verified) $(rep percent) $(rep percent_verified) $(rep pending)" \
		"$what: report: $N active, 100 % acknowledged and verified after $r round(s)"
}

# step_checkins WHAT BUNDLE_ID_BEFORE: two check-in rounds, then the checks; each agent's
# bundle changed once in the step when the daemon's bundle id changed, else never.
step_checkins() {
	local what=$1 before=$2 after
	snap_counts "$what"
	fleet check-in "$what: check-in"
	fleet check-in "$what: check-in again"
	after=$(daemon_bundle_id)
	if [ "$before" = "$after" ]; then changed_by "$what" 0 "$what"; else changed_by "$what" 1 "$what"; fi
	check_step "$what"
}

# ---------------------------------------------------------------- link
echo "-- link: $N agents ($((N - LINKING_KEY_AGENTS)) with a join token, $LINKING_KEY_AGENTS with the linking key; pin or CA file)"
fleet link "link"
check_step "after link"
for i in $(seq 1 "$N"); do
	[ "$(hooks "$i")" = 1 ] || fail "link: fleet-$i's hook ran once" "ran $(hooks "$i") times"
	[ "$(stat -c %a "$(adir "$i")/state/token")" = 600 ] || fail "fleet-$i: the token file is 0600"
done
ok "link: every hook ran once, every token file is 0600"
report_json
assert_eq "$N $N" "$(rep linked) $(rep active)" "report: $N linked, $N active"
run ctl --json join-token list
printf '%s' "$OUT" | jsave "$T/jtl.json"
assert_eq 0 "$(jget join_tokens.0.uses_left "$T/jtl.json")" "the join token's $((N - LINKING_KEY_AGENTS)) uses are used up"
snap_counts steady
fleet check-in "steady: check-in"
changed_by steady 0 "steady (304)"
check_step "steady"

# ---------------------------------------------------------------- generate
echo "-- generate, then check-ins until 100 % acknowledged and verified"
before=$(daemon_bundle_id)
assert_exit 0 "generate" -- ctl --json generate
printf '%s' "$OUT" | jsave "$T/gen.json"
NEW_CA_SHA=$(jget staged.ca.sha256 "$T/gen.json")
nginx_wait_serving "$NGINX_CANARY_PORT" "$SSL_DIR/new/server.crt"
curl_all "after generate, before any check-in"
snap_counts generate
rounds "generate"
changed_by generate 1 "generate"
check_step "generate"
for i in 1 $N; do
	grep -q "$NEW_CA_SHA" <(pem_shas "$(adir "$i")/etc/ca-bundle.pem") ||
		fail "fleet-$i's bundle holds the staged CA"
done
ok "the bundles hold the staged CA"
cmp -s "$(adir 1)/etc/ca-bundle.pem.prev" "$T/first-ca.pem" ||
	[ "$(pem_shas "$(adir 1)/etc/ca-bundle.pem.prev")" = "$(pem_shas "$T/first-ca.pem")" ] ||
	fail "fleet-01 keeps its first bundle as ca-bundle.pem.prev"
ok "the previous bundle is kept as ca-bundle.pem.prev"

# ---------------------------------------------------------------- rotate
echo "-- rotate"
before=$(daemon_bundle_id)
assert_exit 0 "rotate (the gate passes: every agent acknowledged)" -- ctl rotate
nginx_wait_serving "$NGINX_PORT" "$SSL_DIR/server.crt"
assert_eq "$NEW_CA_SHA" "$(cert_der_sha256 "$SSL_DIR/ca.crt")" "rotate: the staged CA is active"
curl_all "after rotate, before any check-in"
step_checkins "rotate" "$before"

# ---------------------------------------------------------------- restore
echo "-- restore --latest"
before=$(daemon_bundle_id)
assert_exit 0 "restore --latest" -- ctl restore --latest
nginx_wait_serving "$NGINX_PORT" "$SSL_DIR/server.crt"
assert_eq "$(cert_der_sha256 "$T/first-ca.pem")" "$(cert_der_sha256 "$SSL_DIR/ca.crt")" "restore: the first CA is active again"
curl_all "after restore, before any check-in"
step_checkins "restore" "$before"

# ---------------------------------------------------------------- retire
echo "-- retire"
before=$(daemon_bundle_id)
assert_exit 0 "retire" -- ctl retire
after=$(daemon_bundle_id)
assert_ne "$before" "$after" "retire: the bundle changed (the CA replaced by restore left it)"
step_checkins "retire" "$before"
for i in $(seq 1 "$N"); do
	[ "$(pem_shas "$(adir "$i")/etc/ca-bundle.pem")" = "$(cert_der_sha256 "$T/first-ca.pem")" ] ||
		fail "retire: fleet-$i's bundle holds the active CA alone"
done
ok "retire: every bundle holds the active CA alone"
assert_daemon_alive "at the end"
nginx_stop
