#!/bin/bash
# carotate-agent as carotate-agent.service runs it (issue 16), against the real daemon and
# nginx: root with an empty capability bounding set, no_new_privs and UMask=0022 (setpriv),
# and every system call it makes (libcurl, name resolution, the atomic writes, the hook)
# inside the unit's SystemCallFilter= (strace; not under sanitizers). The daemon announces
# the canary with [agents] canary_url and the agent has none of its own: after generate, one
# check-in proves the staged CA through the announced URL (report: verified).
# Reproduction: with the unit's filter missing a call the agent needs, a check-in under
# systemd fails with EPERM where it works from a shell; without [agents] canary_url (or its
# X-Carotate-Canary), an agent with no canary_url of its own is never verified.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=agent.sh
. "$(dirname "$0")/agent.sh"
# shellcheck source-path=SCRIPTDIR source=nginx.sh
. "$(dirname "$0")/nginx.sh"

[ "$(id -u)" -eq 0 ] || t_skip "the agent as root without capabilities needs root"
for tool in setpriv systemd-analyze; do
	command -v "$tool" >/dev/null || t_skip "$tool is not installed"
done
agent_require
UNIT="$REPO_ROOT/systemd/carotate-agent.service"
TRACE=1
case "$CAROTATE_BUILD" in */asan*) TRACE=0 ;; esac # the sanitizers' own calls are not the agent's
[ "$TRACE" -eq 1 ] && ! command -v strace >/dev/null && fail "strace is installed (make deps)"

t_init
make_active_set
nginx_write_daemon_config
start_daemon
nginx_start
SERVER="https://127.0.0.1:$NGINX_PORT"
# The canary's port is known once nginx runs: announced from then on (SIGHUP).
sed -i "s|^\[agents\]\$|[agents]\ncanary_url = https://127.0.0.1:$NGINX_CANARY_PORT|" "$CONF"
kill -HUP "$DAEMON_PID"
wait_until 5000 grep -q "reload: configuration re-read" "$DAEMON_LOG" ||
	fail "SIGHUP re-reads the configuration" "$(tail -n 5 "$DAEMON_LOG")"

A="$T/agent"
mkdir -p "$A"
cat >"$A/hook" <<HOOK
#!/bin/sh
echo "\$CAROTATE_BUNDLE_ID" >>"$A/hook.log"
HOOK
chmod 0755 "$A/hook"
agent_conf_write "$A/agent.conf" "state_dir=$A/state" "bundle=$A/ca-bundle.pem" "hook=$A/hook" \
	hook_timeout=10s timeout=15s

# sandboxed OUT ARGS...: the agent as the unit runs it; traced into OUT when TRACE=1.
sandboxed() {
	local out=$1 pre=()
	shift
	[ "$TRACE" -eq 1 ] && pre=(strace -f -qq -o "$out")
	run "${pre[@]}" setpriv --bounding-set=-all --inh-caps=-all --no-new-privs -- \
		sh -c 'umask 0022; exec "$@"' sh "$AGENT" -c "$A/agent.conf" "$@"
}

ctl --json join-token create --uses 1 | json_get token >"$A/join"
PIN=$(openssl x509 -in "$SSL_DIR/ca.crt" -outform DER | sha256sum | cut -d' ' -f1)
sandboxed "$T/strace-link" link --server "$SERVER" --ca-pin "sha256:$PIN" --join-token-file "$A/join" \
	--id unit-agent
assert_eq 0 "$RC" "link, root without capabilities, no_new_privs ($ERR)"
assert_eq "600 644" "$(stat -c %a "$A/state/token" "$A/ca-bundle.pem" | tr '\n' ' ' | sed 's/ $//')" \
	"under UMask=0022 the token is 0600 and the bundle 0644"

ctl generate >/dev/null || fail "generate"
wait_until 15000 grep -q "serves the staged certificate: canary check-ins now count" "$DAEMON_LOG" ||
	fail "the canary listener serves the staged certificate" "$(tail -n 20 "$DAEMON_LOG")"
sandboxed "$T/strace-checkin" check-in
assert_eq 0 "$RC" "check-in after generate ($ERR)"
assert_eq 2 "$(pem_count "$A/ca-bundle.pem")" "the new bundle holds both CAs"
assert_eq 2 "$(wc -l <"$A/hook.log")" "the hook ran for the link and for the new bundle"
ctl --json report >"$T/r.json"
assert_eq 1 "$(json_get verified "$T/r.json")" \
	"verified through the canary URL the daemon announced (the agent has no canary_url)"
curl -sS --max-time 15 --cacert "$A/ca-bundle.pem" --resolve "proxy.test:$NGINX_PORT:127.0.0.1" \
	-o /dev/null "https://proxy.test:$NGINX_PORT/" || fail "curl trusting the agent's bundle reaches the proxy"
ok "curl trusting the bundle the sandboxed agent wrote reaches the proxy"
sandboxed "$T/strace-304" check-in
assert_eq 0 "$RC" "a check-in with nothing new ($ERR)"

[ "$TRACE" -eq 1 ] || exit 0
systemd-analyze syscall-filter --no-pager >"$T/filter-sets" 2>/dev/null
sed -n 's/^SystemCallFilter=//p' "$UNIT" >"$T/filter-unit"
cat "$T"/strace-* >"$T/strace.all"
# setpriv and sh set the sandbox up before the agent runs; systemd does that itself.
"$PY" "$IT_DIR/syscall_filter.py" "$T/filter-sets" "$T/filter-unit" "$T/strace.all" \
	--ignore prctl,capset,capget,execve --what "link, check-in 200 with the canary, 304, the hook" ||
	fail "system calls outside the agent unit's filter"
