#!/bin/bash
# Bash completion of carotatectl (packaging/bash-completion/carotatectl), with the
# bash-completion package's helpers when they are installed and without them: commands
# and each command's options are exactly those of `carotatectl --help` and `COMMAND
# --help`; --key-type values are those generate --help lists; files for install's options;
# restore offers the ids of the restorable backups the real daemon lists (its socket taken
# from the line or from $CAROTATE_SOCKET), and nothing, quietly and quickly, when the
# daemon cannot be reached.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

COMPLETION=$REPO_ROOT/packaging/bash-completion/carotatectl
BASH_COMPLETION=/usr/share/bash-completion/bash_completion

t_init
make_active_set
write_config
start_daemon

# Backups as the daemon sees them: two restorable (one made by hand from the active set,
# one from another CA), one whose key belongs to another certificate, one discarded.
cp -p "$SSL_DIR/ca.crt" "$SSL_DIR/server.crt" "$SSL_DIR/server.key" "$T/"
mkdir -m 0700 "$SSL_DIR/certs-20240101-000000"
cp -p "$T/ca.crt" "$T/server.crt" "$T/server.key" "$SSL_DIR/certs-20240101-000000/"
make_cert_set "$SSL_DIR/certs-20240202-000000" second
make_cert_set "$SSL_DIR/certs-20230101-000000" third
cp -p "$T/server.key" "$SSL_DIR/certs-20230101-000000/server.key"
make_cert_set "$SSL_DIR/discarded-20240303-000000" fourth
chmod 0700 "$SSL_DIR"/certs-* "$SSL_DIR"/discarded-*
ctl --json backups >"$T/backups.json"
restorable=$("$PY" -c '
import json, sys
print(" ".join(sorted(b["id"] for b in json.load(open(sys.argv[1]))["backups"] if b["restorable"])))
' "$T/backups.json")
assert_eq "certs-20240101-000000 certs-20240202-000000" "$restorable" \
	"precondition: the daemon would restore exactly the two sound certs-* backups"

mkdir "$T/files"
touch "$T/files/ca.pem" "$T/files/server.pem" "$T/files/server.key"

# comp WITH_BC WORD... : what the completion offers for the command line WORD... (the
# last word is the one being completed, "" for a new one), sorted, one a line, in a fresh
# bash; WITH_BC=1 loads the bash-completion package first. Its stderr goes to $T/comp.err.
comp() {
	local with=$1
	shift
	bash --norc --noprofile -c '
		with=$1 completion=$2
		shift 2
		if [ "$with" = 1 ]; then . /usr/share/bash-completion/bash_completion; fi
		. "$completion"
		COMP_WORDS=("$@")
		COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"
		COMP_POINT=${#COMP_LINE}
		_carotatectl "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
		[ ${#COMPREPLY[@]} -eq 0 ] || printf "%s\n" "${COMPREPLY[@]}"
	' _ "$with" "$COMPLETION" "$@" 2>"$T/comp.err" | LC_ALL=C sort
}

# What the programs say, one a line, sorted.
lines() { tr ' ' '\n' | sed '/^$/d' | LC_ALL=C sort -u; }
help_commands=$("$CAROTATECTL" --help | sed -n '/^commands:/,/^$/s/^  \([a-z-]*\)  .*/\1/p' | lines)
# Long options defined in a help text's option lines ("  -t, --timeout DURATION ...").
help_long_opts() {
	sed -n 's/^  \(-[A-Za-z], \)\{0,1\}\(--[a-z][a-z-]*\).*/\2/p' | lines
}
[ "$(printf '%s\n' "$help_commands" | wc -l)" -ge 10 ] ||
	fail "found fewer than 10 commands in carotatectl --help" "$help_commands"

modes=(0)
if [ -r "$BASH_COMPLETION" ]; then
	modes=(1 0)
else
	t_log "bash-completion is not installed: only the completion's own fallback is tested"
fi

for bc in "${modes[@]}"; do
	how="bash-completion loaded"
	[ "$bc" = 1 ] || how="no bash-completion"

	got=$(bash --norc --noprofile -c '
		[ "$1" = 1 ] && . "$2"
		. "$3" && complete -p carotatectl' _ "$bc" "$BASH_COMPLETION" "$COMPLETION")
	assert_eq "complete -F _carotatectl carotatectl" "$got" "sourcing it registers _carotatectl ($how)"

	assert_eq "$help_commands" "$(comp "$bc" "$CAROTATECTL" "")" \
		"a new word offers the commands of carotatectl --help ($how)"
	assert_eq "rotate" "$(comp "$bc" "$CAROTATECTL" ro)" "'ro' completes to rotate ($how)"
	assert_eq "$help_commands" "$(comp "$bc" "$CAROTATECTL" --json -t 5 "")" \
		"after global options and their values, the commands ($how)"
	assert_eq "$("$CAROTATECTL" --help | sed '/^commands:/,$d' | help_long_opts)" \
		"$(comp "$bc" "$CAROTATECTL" --)" "'--' offers the options of carotatectl --help ($how)"

	for cmd in $help_commands; do
		want=$("$CAROTATECTL" "$cmd" --help | help_long_opts)
		assert_eq "$want" "$(comp "$bc" "$CAROTATECTL" "$cmd" --)" \
			"$cmd --: the options of carotatectl $cmd --help ($how)"
	done
	assert_eq "$("$CAROTATECTL" rotate --help | help_long_opts)" \
		"$(comp "$bc" "$CAROTATECTL" --socket "$SOCK" rotate --)" \
		"rotate -- after a global --socket PATH: rotate's options ($how)"

	key_types=$("$CAROTATECTL" generate --help | grep -oE '\b(ec-p[0-9]+|rsa-[0-9]+)\b' | lines)
	assert_eq "$key_types" "$(comp "$bc" "$CAROTATECTL" generate --key-type "")" \
		"generate --key-type offers the key types generate --help lists ($how)"
	assert_eq "$(printf 'rsa-2048\nrsa-3072\nrsa-4096')" \
		"$(comp "$bc" "$CAROTATECTL" generate --key-type rsa)" "--key-type rsa: the RSA sizes ($how)"
	assert_eq "$(printf 'ec-p256\nec-p384')" "$(comp "$bc" "$CAROTATECTL" generate --key-type=ec)" \
		"--key-type=ec: the EC curves ($how)"
	assert_eq "" "$(comp "$bc" "$CAROTATECTL" generate --ca-days "")" \
		"--ca-days: a number of the operator's, nothing offered ($how)"

	for opt in --ca --cert --key --chain; do
		assert_eq "$(printf '%s\n' "$T/files/server.key" "$T/files/server.pem")" \
			"$(comp "$bc" "$CAROTATECTL" install "$opt" "$T/files/s")" \
			"install $opt completes file names ($how)"
	done

	# restore: backup ids from the daemon named on the line, in either spelling.
	assert_eq "$(printf 'certs-20240101-000000\ncerts-20240202-000000')" \
		"$(comp "$bc" "$CAROTATECTL" --socket "$SOCK" restore "")" \
		"restore offers the restorable backups ($how, --socket PATH)"
	assert_eq "" "$(cat "$T/comp.err")" "  ... with nothing on stderr ($how)"
	assert_eq "certs-20240202-000000" \
		"$(comp "$bc" "$CAROTATECTL" -s "$SOCK" restore certs-202402)" \
		"restore certs-202402 completes to the one backup ($how, -s PATH)"
	assert_eq "$(printf 'certs-20240101-000000\ncerts-20240202-000000')" \
		"$(comp "$bc" "$CAROTATECTL" restore --dry-run --socket="$SOCK" "")" \
		"restore --dry-run --socket=PATH offers them too ($how)"
	assert_eq "$(printf 'certs-20240101-000000\ncerts-20240202-000000')" \
		"$(CAROTATE_SOCKET=$SOCK comp "$bc" "$CAROTATECTL" restore "")" \
		"restore with \$CAROTATE_SOCKET offers them ($how)"
	assert_eq "" "$(CAROTATE_SOCKET=$SOCK comp "$bc" "$CAROTATECTL" restore --latest "")" \
		"restore --latest: no backup id to add ($how)"
	assert_eq "" \
		"$(CAROTATE_SOCKET=$SOCK comp "$bc" "$CAROTATECTL" restore certs-20240101-000000 "")" \
		"restore BACKUP_ID: no second id ($how)"

	# An unreachable daemon: nothing offered, nothing printed, no wait.
	start=$(ms_now)
	got=$(CAROTATE_SOCKET=$T/run/nowhere.sock comp "$bc" "$CAROTATECTL" restore "")
	took=$(($(ms_now) - start))
	assert_eq "" "$got" "restore with the daemon unreachable offers nothing ($how)"
	assert_eq "" "$(cat "$T/comp.err")" "  ... and prints nothing ($how)"
	[ "$took" -lt 3000 ] || fail "completing restore without a daemon took ${took} ms ($how)"
	ok "  ... in ${took} ms ($how)"
done

# A daemon that accepts but never answers: the completion gives up after its 2 s timeout.
"$PY" -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(8)
conns = []
while True:
    c, _ = s.accept()
    conns.append(c)
' "$T/run/silent.sock" &
t_track_pid $!
wait_until 5000 test -S "$T/run/silent.sock" || fail "the silent socket did not appear"
start=$(ms_now)
got=$(CAROTATE_SOCKET=$T/run/silent.sock comp "${modes[0]}" "$CAROTATECTL" restore "")
took=$(($(ms_now) - start))
assert_eq "" "$got" "restore against a daemon that never answers offers nothing"
[ "$took" -lt 5000 ] || fail "completing restore against a silent daemon took ${took} ms"
ok "  ... and gives up in ${took} ms"

echo "completion: all checks passed"
