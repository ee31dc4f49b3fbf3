#!/bin/bash
# [agents] canary_url (issue 16, carotate-agent(8)): the URL agents use to prove the staged CA,
# announced by the main agent socket's 200 and 304 answers of link and ca-bundle as
# `X-Carotate-Canary: <url>`. Real daemon, real curl on the agent sockets.
#
# Reproduction: an operator set `canary_url = https://proxy.test:8443` in [agents] so that
# carotate-agent hosts would find the canary listener by themselves. carotated refused the
# file ("unknown key "canary_url" in [agents]"), and had nothing to announce: every agent
# needed its own canary_url in agent.conf. Now:
#  - unset (the default): no X-Carotate-Canary anywhere;
#  - set, picked up by SIGHUP: link 200, check-in 200 and 304 carry it; a 401, a 400 and
#    every answer of the canary socket do not;
#  - a bad value on SIGHUP keeps the running one; removed on SIGHUP: gone again;
#  - --check-config refuses http://, a URL without host, spaces, a tab, a URL over 512 bytes,
#    and accepts one of exactly 512.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || t_skip "curl is not installed"

t_init
make_active_set
write_config
AGENT="$RUN_DIR/agent.sock"
CANARY="$RUN_DIR/agent-canary.sock"
KEY=$(tr -d ' \n' <"$LINKING_KEY")
URL="https://proxy.test:8443/carotate?x=1"

# req SOCKET CURL_ARGS... -> CODE; headers in $T/h, body in $T/b.
CODE=""
req() {
	local sock=$1
	shift
	CODE=$(curl -s --max-time 20 --unix-socket "$sock" -D "$T/h" -o "$T/b" -w '%{http_code}' "$@" ||
		true)
}
link() { req "$AGENT" -X POST -H "Authorization: Bearer $KEY" -H "X-Agent-Id: $1" http://agent/carotate/v1/link; }
# checkin SOCKET ID TOKEN [ETAG]
checkin() {
	local sock=$1 id=$2 token=$3
	if [ -n "${4:-}" ]; then
		req "$sock" -H "Authorization: Bearer $token" -H "X-Agent-Id: $id" -H "If-None-Match: \"$4\"" \
			http://agent/carotate/v1/ca-bundle
	else
		req "$sock" -H "Authorization: Bearer $token" -H "X-Agent-Id: $id" http://agent/carotate/v1/ca-bundle
	fi
}
# announced WHAT: CODE was 200 or 304 and X-Carotate-Canary is $URL.
announced() {
	assert_match '^(200|304)$' "$CODE" "$1: answered"
	assert_eq "$URL" "$(hdr X-Carotate-Canary)" "$1: X-Carotate-Canary announces the URL"
}
not_announced() {
	if grep -qi '^X-Carotate-Canary:' "$T/h"; then
		fail "$1 (HTTP $CODE): no X-Carotate-Canary" "$(cat "$T/h")"
	fi
	ok "$1 (HTTP $CODE): no X-Carotate-Canary"
}
# set_url VALUE|"": [agents] canary_url in $CONF (removed when empty).
set_url() {
	sed -i '/^canary_url = /d' "$CONF"
	[ -z "$1" ] || sed -i "s|^\[agents\]\$|[agents]\ncanary_url = $1|" "$CONF"
}
hup() {
	local n
	n=$(grep -c "$1" "$DAEMON_LOG" || true)
	kill -HUP "$DAEMON_PID"
	wait_until 5000 eval "[ \"\$(grep -c '$1' '$DAEMON_LOG' || true)\" -gt $n ]" ||
		fail "SIGHUP: the log says '$1'" "$(tail -n 5 "$DAEMON_LOG")"
}

# ---------------------------------------------------------------- unset: nothing announced
start_daemon
wait_until 30000 worker_up || fail "the agent workers run"
link agent-1
assert_eq 200 "$CODE" "link"
TOKEN1=$(hdr X-Agent-Token)
ETAG=$(hdr ETag | tr -d '"')
not_announced "no canary_url: link"
checkin "$AGENT" agent-1 "$TOKEN1" "$ETAG"
assert_eq 304 "$CODE" "check-in with the current ETag"
not_announced "no canary_url: check-in"

# ---------------------------------------------------------------- set by SIGHUP
set_url "$URL"
hup "reload: configuration re-read"
link agent-2
assert_eq 200 "$CODE" "link after SIGHUP"
TOKEN2=$(hdr X-Agent-Token)
announced "link 200"
checkin "$AGENT" agent-2 "$TOKEN2" "$ETAG"
assert_eq 304 "$CODE" "check-in 304"
announced "check-in 304"
checkin "$AGENT" agent-1 "$TOKEN1"
assert_eq 200 "$CODE" "check-in without If-None-Match"
announced "check-in 200"
checkin "$AGENT" agent-1 "$(printf '%064d' 0)" "$ETAG"
assert_eq 401 "$CODE" "check-in with a wrong token"
not_announced "a refused check-in"
req "$AGENT" -X POST -H "Authorization: Bearer $KEY" http://agent/carotate/v1/link
assert_eq 400 "$CODE" "link without X-Agent-Id"
not_announced "a malformed link"
checkin "$CANARY" agent-1 "$TOKEN1" "$ETAG"
assert_eq 304 "$CODE" "check-in through the canary socket"
not_announced "the canary socket"
checkin "$CANARY" agent-1 "$TOKEN1"
assert_eq 200 "$CODE" "check-in through the canary socket without If-None-Match"
not_announced "the canary socket's 200"

# ---------------------------------------------------------------- a bad value on SIGHUP
set_url "http://proxy.test:8443"
hup "keeping the running configuration"
assert_file_contains "canary_url: \"http://proxy.test:8443\" is not an https:// URL" "$DAEMON_LOG" \
	"SIGHUP with an http:// URL: refused, and why"
checkin "$AGENT" agent-1 "$TOKEN1" "$ETAG"
announced "after a refused reload, the running URL"

# ---------------------------------------------------------------- removed by SIGHUP
set_url ""
hup "reload: configuration re-read"
checkin "$AGENT" agent-1 "$TOKEN1" "$ETAG"
assert_eq 304 "$CODE" "check-in after canary_url was removed"
not_announced "canary_url removed by SIGHUP"
stop_daemon
assert_eq 0 "$DAEMON_STATUS" "the daemon exits 0"

# ---------------------------------------------------------------- --check-config
# check_url NAME VALUE WANT_RC [MESSAGE]
check_url() {
	local f="$T/url-$1.conf"
	cp "$CONF" "$f"
	sed -i '/^canary_url = /d' "$f"
	printf 'canary_url = %s\n' "$2" >"$T/line"
	sed -i "/^\[agents\]\$/r $T/line" "$f"
	run "$CAROTATED" -c "$f" --check-config
	assert_eq "$3" "$RC" "--check-config, canary_url $1: exit $3"
	if [ -n "${4:-}" ]; then
		assert_contains "$f:" "$ERR" "... names the file and line"
		assert_contains ":$(grep -n '^canary_url = ' "$f" | cut -d: -f1): canary_url: " "$ERR" \
			"... the canary_url line"
		assert_contains "$4" "$ERR" "... and says why ($1)"
	fi
}
long="https://proxy.test/$(head -c 493 /dev/zero | tr '\0' a)" # 512 bytes
assert_eq 512 "${#long}" "a URL of 512 bytes"
check_url good "https://proxy.test:8443" 0
check_url ipv6 "https://[2001:db8::1]:8443/canary" 0
check_url max "$long" 0
check_url over "${long}a" 1 "URL too long (513 bytes, at most 512)"
check_url http "http://proxy.test:8443" 1 "\"http://proxy.test:8443\" is not an https:// URL"
check_url scheme-only "https://" 1 "\"https://\" names no host"
check_url no-host "https:///path" 1 "names no host"
check_url userinfo "https://@proxy.test" 1 "names no host"
check_url space "https://proxy.test/a b" 1 "byte 0x20 at offset 20"
check_url tab "$(printf 'https://proxy.test/a\tb')" 1 "byte 0x09 at offset 20"
check_url non-ascii "https://prøxy.test" 1 "only printable ASCII without spaces"
check_url bare "proxy.test" 1 "is not an https:// URL"
