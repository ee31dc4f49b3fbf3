#!/bin/bash
# Bash completion of carotatectl (packaging/bash-completion/carotatectl), with the
# bash-completion package's helpers when they are installed and without them: commands
# and each command's options are exactly those of `carotatectl --help` and `COMMAND
# --help`; --key-type values are those generate --help lists; files for install's options;
# restore offers the ids of the restorable backups the real daemon lists (its socket taken
# from the line or from $CAROTATE_SOCKET), and nothing, quietly and quickly, when the
# daemon cannot be reached. carotate-agent's completion (packaging/bash-completion/
# carotate-agent): the commands and options of `carotate-agent --help`, file names for FILE
# arguments, nothing for others; and the check notices a completion copy that lost one.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
t_plain_only "it checks the bash completion against the CLI's verbs and options"

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

# ---- carotate-agent's completion (packaging/bash-completion/carotate-agent), against the
# commands and options mancheck.py reads from `carotate-agent --help` (as test_manpages.sh
# checks the page): a new word offers every command and only commands and global options;
# "--" the global long options; COMMAND -- exactly that command's options; options whose
# argument is a FILE complete file names, the others offer nothing. Then the check is shown
# to notice a completion that lost a command or an option, or offers a stale one.
AGENT=$CAROTATE_BUILD/carotate-agent
AGENT_COMPLETION=$REPO_ROOT/packaging/bash-completion/carotate-agent

# agent_comp COMPLETION WITH_BC WORD...: what COMPLETION offers for carotate-agent WORD...,
# sorted, one a line, in a fresh bash (stderr added to $T/agent-comp.err).
agent_comp() {
	local completion=$1 with=$2
	shift 2
	bash --norc --noprofile -c '
		with=$1 completion=$2
		shift 2
		if [ "$with" = 1 ]; then . /usr/share/bash-completion/bash_completion; fi
		. "$completion"
		COMP_WORDS=(carotate-agent "$@")
		COMP_CWORD=$#
		COMP_LINE="${COMP_WORDS[*]}"
		COMP_POINT=${#COMP_LINE}
		_carotate_agent carotate-agent "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
		[ ${#COMPREPLY[@]} -eq 0 ] || printf "%s\n" "${COMPREPLY[@]}"
	' _ "$with" "$completion" "$@" 2>>"$T/agent-comp.err" | LC_ALL=C sort
}

# agent_q WORD...: as agent_comp (unsorted), in a subshell of a bash that sourced the
# completion.
agent_q() {
	(
		COMP_WORDS=(carotate-agent "$@")
		COMP_CWORD=$#
		COMP_LINE="${COMP_WORDS[*]}"
		COMP_POINT=${#COMP_LINE}
		COMPREPLY=()
		_carotate_agent carotate-agent "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
		[ ${#COMPREPLY[@]} -eq 0 ] || printf '%s\n' "${COMPREPLY[@]}"
	) 2>>"$T/agent-comp.err"
}

# differ WHAT WANT GOT: a "missing:" line for each word of WANT not in GOT, a "stale:" line
# for each word of GOT not in WANT (words split on white space, no globbing: set -f).
differ() {
	local -A want=() got=()
	local w
	# shellcheck disable=SC2086 # word lists
	for w in $2; do want[$w]=1; done
	# shellcheck disable=SC2086
	for w in $3; do got[$w]=1; done
	for w in "${!want[@]}"; do
		[ -n "${got[$w]:-}" ] || echo "missing: $1: $w is not offered"
	done
	for w in "${!got[@]}"; do
		[ -n "${want[$w]:-}" ] || echo "stale: $1: $w is offered"
	done
}

# agent_comp_body TABLE COMPLETION WITH_BC, in a fresh bash: sources the completion once and
# prints what it gets wrong about TABLE (mancheck.py agenthelp's output), one line each.
# Pure bash but for the completion's own compgen: it runs hundreds of queries.
agent_comp_body() {
	local table=$1 completion=$2 bc=$3 kind rest v o w got cmds opts
	local verbs="" globals="" files="" values="" want n=0
	local -A takes=() owner=()
	set -f
	while read -r kind rest; do
		case $kind in
		verb)
			v=${rest%% *}
			verbs+=" $v" n=$((n + 1))
			takes[$v]=${rest#"$v"}
			for o in ${takes[$v]}; do owner[$o]=$v; done
			;;
		global) globals=$rest ;;
		file) files=$rest ;;
		value) values=$rest ;;
		esac
	done <<<"$table"
	if [ "$n" -lt 3 ]; then
		echo "broken: fewer than 3 commands in the help's table"
		return
	fi
	# shellcheck disable=SC1090 # the files under test
	if [ "$bc" = 1 ]; then . "$BASH_COMPLETION"; fi
	# shellcheck disable=SC1090
	. "$completion"
	got=$(complete -p carotate-agent 2>&1)
	[ "$got" = "complete -F _carotate_agent carotate-agent" ] ||
		echo "missing: sourcing it does not register _carotate_agent: $got"
	# A new word: every command, and no option the program does not have.
	cmds="" opts=""
	for w in $(agent_q ""); do
		case $w in -*) opts+=" $w" ;; *) cmds+=" $w" ;; esac
	done
	differ "a new word (commands)" "$verbs" "$cmds"
	for w in $opts; do
		case " $globals " in *" $w "*) ;; *) echo "stale: a new word (options): $w is offered" ;; esac
	done
	want=""
	for w in $globals; do case $w in --*) want+=" $w" ;; esac; done
	differ "--" "$want" "$(agent_q --)"
	cmds=""
	for w in $(agent_q -c "$T/files/a.conf" ""); do case $w in -*) ;; *) cmds+=" $w" ;; esac; done
	differ "-c FILE, a new word (commands)" "$verbs" "$cmds"
	for v in $verbs; do
		differ "$v --" "${takes[$v]}" "$(agent_q "$v" --)"
	done
	# An option's value: file names for a FILE, nothing for anything else.
	for o in $files $values; do
		v=${owner[$o]:-}
		if case " $files " in *" $o "*) true ;; *) false ;; esac then
			# shellcheck disable=SC2086 # $v: a command or nothing
			differ "${v:+$v }$o FILE (file names)" "$T/files/server.key $T/files/server.pem" \
				"$(agent_q $v "$o" "$T/files/s")"
		else
			# shellcheck disable=SC2086
			got=$(agent_q $v "$o" "")
			[ -z "$got" ] || echo "stale: ${v:+$v }$o offers words for its value: ${got//$'\n'/ }"
		fi
	done
}

# agent_comp_check TABLE COMPLETION WITH_BC: prints what COMPLETION gets wrong about the
# help's TABLE, one line each; returns 1 if anything.
agent_comp_check() {
	: >"$T/agent-comp.err"
	T=$T BASH_COMPLETION=$BASH_COMPLETION bash --norc --noprofile -c "
		$(declare -f agent_q differ agent_comp_body)
		agent_comp_body \"\$@\"" _ "$@" >"$T/agent-comp.out"
	[ ! -s "$T/agent-comp.err" ] ||
		echo "stale: the completion wrote on stderr: $(cat "$T/agent-comp.err")" >>"$T/agent-comp.out"
	cat "$T/agent-comp.out"
	[ ! -s "$T/agent-comp.out" ]
}

agent_table=$("$PY" "$IT_DIR/mancheck.py" agenthelp "$AGENT")

for bc in "${modes[@]}"; do
	how="bash-completion loaded"
	[ "$bc" = 1 ] || how="no bash-completion"
	run agent_comp_check "$agent_table" "$AGENT_COMPLETION" "$bc"
	[ "$RC" -eq 0 ] || fail "carotate-agent's completion agrees with its --help ($how)" "$OUT" "$ERR"
	ok "carotate-agent's completion offers the commands and options of its --help ($how)"
	# Not vacuous: it completed what the help lists.
	assert_eq "$(printf 'check-in\nlink\nstatus')" \
		"$(agent_comp "$AGENT_COMPLETION" "$bc" "" | grep -v '^-')" \
		"carotate-agent: a new word offers link, check-in, status ($how)"
	assert_contains "--linking-key-file" "$(agent_comp "$AGENT_COMPLETION" "$bc" link --)" \
		"carotate-agent link -- offers --linking-key-file ($how)"
	assert_eq "--json" "$(agent_comp "$AGENT_COMPLETION" "$bc" status --j)" \
		"carotate-agent status --j completes to --json ($how)"
done

# ---- self-check: the check notices a completion that is wrong (it uses no helper of the
# bash-completion package, so without it: faster)
bc=0
# broken_comp NAME SED_SCRIPT: a copy of the completion edited by SED_SCRIPT.
broken_comp() {
	local copy="$T/files/completion-$1"
	sed -e "$2" "$AGENT_COMPLETION" >"$copy"
	cmp -s "$copy" "$AGENT_COMPLETION" && fail "self-check $1: the edit '$2' changed nothing"
	printf '%s\n' "$copy"
}
# comp_refused WHAT EXPECTED_LINE TABLE COMPLETION
comp_refused() {
	run agent_comp_check "$3" "$4" "$bc"
	[ "$RC" -ne 0 ] || fail "self-check: $1 is noticed" "the check passed" "$OUT"
	assert_contains "$2" "$OUT" "self-check: $1 is noticed"
}

comp_refused "a completion without link --ca-pin" "missing: link --: --ca-pin is not offered" \
	"$agent_table" "$(broken_comp no-ca-pin 's/ --ca-pin / /')"
comp_refused "a completion without the status command" \
	"missing: a new word (commands): status is not offered" \
	"$agent_table" "$(broken_comp no-status 's/link check-in status/link check-in/')"
comp_refused "a completion without --config" "missing: --: --config is not offered" \
	"$agent_table" "$(broken_comp no-config "s/ -c --config --help/ -c --help/")"
comp_refused "a completion offering check-in an option it does not take" \
	"stale: check-in --: --force is offered" \
	"$agent_table" "$(broken_comp stale-force "s/check-in) COMPREPLY=(\$(compgen -W '--help'/check-in) COMPREPLY=(\$(compgen -W '--help --force'/")"
comp_refused "a completion that offers nothing for --linking-key-file FILE" \
	"missing: link --linking-key-file FILE (file names): $T/files/server.key is not offered" \
	"$agent_table" "$(broken_comp no-key-file 's/|--linking-key-file)/)/')"
comp_refused "a completion that offers words for --server's value" \
	"stale: link --server offers words for its value" \
	"$agent_table" "$(broken_comp server-words 's/--server|--ca-pin|--id) return ;;/--ca-pin|--id) return ;;/')"

# A program that grew a command and an option the completion does not know.
cat >"$T/files/carotate-agent" <<EOF
#!/bin/sh
"$AGENT" "\$@" | sed -e 's/status \[--json\]\$/status [--json] [--retries N]/' \\
	-e '/ check-in\$/a\\
       carotate-agent [-c FILE] unlink'
EOF
chmod +x "$T/files/carotate-agent"
comp_refused "a status option the completion does not know" \
	"missing: status --: --retries is not offered" \
	"$("$PY" "$IT_DIR/mancheck.py" agenthelp "$T/files/carotate-agent")" "$AGENT_COMPLETION"
assert_contains "missing: a new word (commands): unlink is not offered" "$OUT" \
	"self-check: a command the completion does not know is noticed"

echo "completion: all checks passed"
