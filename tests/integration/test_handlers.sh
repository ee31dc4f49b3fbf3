#!/bin/bash
# Handlers are handlers (daemon/README.md): an rpc/ object checks arguments, gates and replies;
# the engines (engine/rotation.c, stage.c, certjob.c) run the state machines, and only
# store/ writes the state and SSL directories. Read from the object files (nm), as the
# linker sees them. rpc_rotate.c once held the swap -> reload -> TLS check -> roll back
# machine (it called swap_rotate_ca, proxy_reload, proxy_check, and wrote the pending note),
# rpc_stage.c forked the certificate jobs (job_fork_confined) and wrote the generated
# CA keys into the state directory itself (mkdirat, unlinkat, fsx_create): a reader
# looking for the rotation found it in a reply builder, and a handler wrote files. Then
# the check is shown to notice: a handler object that does either is refused, named.
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
t_plain_only "it reads the objects' symbols; the same in every build"

command -v nm >/dev/null || t_skip "nm is missing (binutils)"
t_init

# Writes to a directory, and the engines' machinery (job forks, reloads, TLS checks, the
# swap journal and its pending note, staging and discarding sets).
WRITES='^(mkdirat|unlinkat|renameat2?|fchmodat|fchownat|linkat|symlinkat|fsx_(create|replace|remove_dir|fsync_dir))$'
ENGINE='^(job_fork|job_fork_confined|proxy_reload|proxy_check|swap_.*|journal_.*|ssldir_stage|ssldir_discard|backup_discard|backup_prune|retained_note_active|cakeys_(save|drop|load)|pki_generate|pki_validate_custom)$'

# handlers_check DIR: each rpc/ object of DIR and what it must not use; 1 when there is one.
handlers_check() {
	local o syms bad=0
	for o in "$1"/daemon/rpc/*.o; do
		syms=$(nm -u "$o" | awk '{ print $NF }')
		for s in $(printf '%s\n' "$syms" | grep -E "$WRITES" || true); do
			printf '%s writes a directory itself: %s (only store/ does)\n' "${o##*/}" "$s"
			bad=1
		done
		for s in $(printf '%s\n' "$syms" | grep -E "$ENGINE" || true); do
			printf '%s runs engine work itself: %s (engine/ does)\n' "${o##*/}" "$s"
			bad=1
		done
	done
	return $bad
}

assert_exit 0 "no rpc/ object writes a directory or runs an engine's work" -- \
	handlers_check "$CAROTATE_BUILD"

# The engines are where the handlers now reach them.
defines() { nm -g --defined-only "$CAROTATE_BUILD/daemon/$1" 2>/dev/null | awk '{ print $NF }'; }
for pair in engine/rotation.o:rotation_resume engine/rotation.o:rotation_rotate \
	engine/stage.o:stage_start engine/stage.o:stage_discard \
	engine/certjob.o:certjob_generate store/cakeys.o:cakeys_save; do
	defines "${pair%%:*}" | grep -qx "${pair#*:}" ||
		fail "${pair#*:} is defined in daemon/${pair%%:*}" "defined: $(defines "${pair%%:*}" | tr '\n' ' ')"
done
ok "the state machines are in engine/rotation.o and engine/stage.o, the jobs in certjob.o, CA keys in store/cakeys.o"

# A handler that forks a job, reloads the proxy and makes a directory is refused, each named.
command -v cc >/dev/null || t_skip "cc is missing"
mkdir -p "$T/b/daemon/rpc"
cat >"$T/rpc_fake.c" <<'C'
#include <fcntl.h>
#include <sys/stat.h>
void proxy_reload(void *, void *, void *);
void *job_fork_confined(void);
int rpc_fake(void);
int
rpc_fake(void)
{
	proxy_reload(0, 0, 0);
	job_fork_confined();
	return mkdirat(AT_FDCWD, "ca-keys", 0700);
}
C
cc -c -o "$T/b/daemon/rpc/rpc_fake.o" "$T/rpc_fake.c"
assert_exit 1 "a handler that does an engine's work is refused" -- handlers_check "$T/b"
assert_contains "rpc_fake.o writes a directory itself: mkdirat" "$OUT" "the write is named"
assert_contains "rpc_fake.o runs engine work itself: proxy_reload" "$OUT" "the reload is named"
assert_contains "rpc_fake.o runs engine work itself: job_fork_confined" "$OUT" "the job is named"

# main neither: it once created the state directory itself (mkdir); store/dirs.c does now.
main_writes=$(nm -u "$CAROTATE_BUILD/daemon/carotated.o" | awk '{ print $NF }' |
	grep -E "$WRITES|^(mkdir|rmdir|unlink|rename|creat)$" || true)
assert_eq "" "$main_writes" "main (carotated.o) writes no directory itself"
