# carotate: a plain Makefile. `make`, `make check`, `make check SANITIZE=1`,
# `make install DESTDIR=... PREFIX=...`, `make deps`, `make bench`, `make clean`.

VERSION     := 0.1.0
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
SBINDIR     ?= $(PREFIX)/sbin
DATADIR     ?= $(PREFIX)/share
MANDIR      ?= $(PREFIX)/share/man
SYSCONFDIR  ?= /etc
DESTDIR     ?=
# systemd: the unit, sysusers.d and tmpfiles.d (Debian 12's paths; RPM: /usr/lib/systemd/system).
UNITDIR     ?= /lib/systemd/system
SYSUSERSDIR ?= /usr/lib/sysusers.d
TMPFILESDIR ?= /usr/lib/tmpfiles.d

CC          ?= cc
PKG_CONFIG  ?= pkg-config
PROTOC_C    ?= protoc-c

ifeq ($(SANITIZE),1)
O           ?= build/asan
SAN_FLAGS   := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
FORTIFY     :=
else
O           ?= build
SAN_FLAGS   :=
FORTIFY     := -D_FORTIFY_SOURCE=3
endif

WARNINGS    := -Wall -Wextra -Wformat=2 -Wformat-security -Wshadow -Wpointer-arith \
	       -Wstrict-prototypes -Wmissing-prototypes -Wmissing-declarations \
	       -Wvla -Wwrite-strings -Wundef -Wimplicit-fallthrough -Wno-unused-parameter
ifneq ($(WERROR),0)
WARNINGS    += -Werror
endif

CFLAGS      ?= -O2 -g
# The project's own headers by "name.h" only (-iquote): none of them stands in for a
# system header included as <name.h>.
# -MMD -MP: each object's header dependencies, as the compiler saw them (build/**/*.d).
BASE_CFLAGS := -MMD -MP -std=c11 -D_GNU_SOURCE -DCAROTATE_VERSION='"$(VERSION)"' \
	       $(WARNINGS) $(FORTIFY) -fstack-protector-strong -fstack-clash-protection \
	       -fPIE -fno-strict-aliasing $(SAN_FLAGS) $(CFLAGS)
# Each directory of the daemon sees its own headers and those of the layers below it, never
# one above (daemon/README.md): rpc -> engine -> store -> pki, sys -> worker, all -> daemon/ (the
# context, carotated.h, and the configuration, config.h) -> common. An upward #include is a
# build error; tests/integration/layers.py checks the same direction at link level.
INC_common  := -iquote $(O)/gen -iquote common
INC_base    := $(INC_common) -iquote daemon
INC_pki     := $(INC_common) -iquote daemon/pki
INC_worker  := $(INC_common) -iquote daemon/worker
INC_sys     := $(INC_base) -iquote daemon/worker -iquote daemon/sys
INC_store   := $(INC_base) -iquote daemon/pki -iquote daemon/store
INC_engine  := $(INC_sys) -iquote daemon/pki -iquote daemon/store -iquote daemon/engine
INC_rpc     := $(INC_engine) -iquote daemon/rpc
# main (daemon/carotated.c), the tests and the benchmarks see everything.
INC_all     := $(INC_rpc)
ALL_CFLAGS  := $(BASE_CFLAGS) $(INC_all)
ALL_LDFLAGS := -pie -Wl,-z,relro,-z,now -Wl,--as-needed $(SAN_FLAGS) $(LDFLAGS)

# libpq: a pool member's ledger on PostgreSQL (daemon/store/ledger_pg*.c).
DAEMON_PKGS := libevent openssl libprotobuf-c inih sqlite3 libcap libseccomp libacl libpq
CLIENT_PKGS := libprotobuf-c jansson
TEST_PKGS   := cmocka
pkg_cflags   = $(shell $(PKG_CONFIG) --cflags $(1) 2>/dev/null)
pkg_libs     = $(shell $(PKG_CONFIG) --libs $(1) 2>/dev/null)

GEN_C       := $(O)/gen/carotate.pb-c.c $(O)/gen/internal.pb-c.c
GEN_H       := $(O)/gen/carotate.pb-c.h $(O)/gen/internal.pb-c.h

COMMON_OBJS := $(O)/gen/carotate.pb-c.o $(O)/common/log.o $(O)/common/xmalloc.o \
	       $(O)/common/wire.o $(O)/common/status.o $(O)/common/fault.o \
	       $(O)/common/clock.o $(O)/common/backupid.o $(O)/common/duration.o \
	       $(O)/common/valid.o $(O)/common/errbuf.o $(O)/common/io.o \
	       $(O)/common/strbuf.o
# common/digest.c: the SHA-256 hex of the daemon and the agent (OpenSSL; not the client's).
DIGEST_OBJS := $(O)/common/digest.o
# OpenSSL: inspection (pki.c), generation (pki_gen.c), custom-set validation (pki_custom.c).
PKI_OBJS    := $(patsubst %.c,$(O)/%.o,$(wildcard daemon/pki/*.c)) $(DIGEST_OBJS)
# The ledger: the front (ledger.c), the audit chain's encoding (ledger_audit.c) and the SQLite
# engine (ledger_sqlite*.c). Not the PostgreSQL engine (ledger_pg*.c): it needs libpq.
LEDGER_OBJS := $(patsubst %.c,$(O)/%.o,$(filter-out daemon/store/ledger_pg%,\
	       $(wildcard daemon/store/ledger*.c))) $(DIGEST_OBJS)
# The PostgreSQL engine (ledger_pg*.c): its objects link with libpq (DAEMON_PKGS).
LEDGER_PG_OBJS := $(patsubst %.c,$(O)/%.o,$(wildcard daemon/store/ledger_pg*.c))
# The daemon but main: every file of its layer directories (a new file joins by being there),
# and the configuration.
DAEMON_DIRS := sys worker pki store engine rpc
DAEMON_LIB_OBJS := $(O)/gen/internal.pb-c.o $(O)/daemon/config.o $(DIGEST_OBJS) \
	       $(patsubst %.c,$(O)/%.o,$(foreach d,$(DAEMON_DIRS),$(wildcard daemon/$(d)/*.c)))
DAEMON_OBJS := $(O)/daemon/carotated.o $(DAEMON_LIB_OBJS)
# carotatectl: ctl.c (main, the verb table), ctl_args, ctl_conn, output, one ctl_<group>.c per
# verb group; a new group's file joins by its name.
CLIENT_OBJS := $(patsubst client/%.c,$(O)/client/%.o,$(wildcard client/*.c))
# carotate-agent: its modules, and of common/ only what it uses (no protobuf-c).
AGENT_PKGS  := libcurl openssl inih jansson
AGENT_LIB_OBJS := $(patsubst client/agent/%.c,$(O)/client/agent/%.o,\
	       $(filter-out client/agent/main.c,$(wildcard client/agent/*.c))) $(DIGEST_OBJS)
AGENT_OBJS  := $(O)/client/agent/main.o $(AGENT_LIB_OBJS) $(O)/common/duration.o \
	       $(O)/common/valid.o $(O)/common/io.o \
	       $(O)/common/xmalloc.o $(O)/common/log.o

.SECONDARY: $(GEN_C) $(GEN_H)

UNIT_TESTS  := $(patsubst tests/unit/%.c,$(O)/tests/%,$(wildcard tests/unit/test_*.c)) \
	       $(O)/tests/test_swap-faults

.PHONY: all check unit integration powerloss deps install uninstall clean bench format demo load

all: $(O)/carotated $(O)/carotatectl $(O)/carotate-agent

$(O)/gen/%.pb-c.c $(O)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(O)/gen
	$(PROTOC_C) --c_out=$(O)/gen -Iproto $<

# Generated code is not ours to warn about.
$(O)/gen/%.pb-c.o: $(O)/gen/%.pb-c.c $(GEN_H)
	$(CC) $(ALL_CFLAGS) -Wno-error $(call pkg_cflags,libprotobuf-c) -c -o $@ $<

$(O)/common/%.o: common/%.c | $(GEN_H)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(INC_common) $(call pkg_cflags,libprotobuf-c) -c -o $@ $<

# One rule per directory, with that directory's include flags.
define daemon_dir_rule
$$(O)/daemon/$(1)%.o: daemon/$(1)%.c | $$(GEN_H)
	@mkdir -p $$(@D)
	$$(CC) $$(BASE_CFLAGS) $$(INC_$(2)) $$(call pkg_cflags,$$(DAEMON_PKGS)) -c -o $$@ $$<
endef
$(eval $(call daemon_dir_rule,sys/,sys))
$(eval $(call daemon_dir_rule,worker/,worker))
$(eval $(call daemon_dir_rule,pki/,pki))
$(eval $(call daemon_dir_rule,store/,store))
$(eval $(call daemon_dir_rule,engine/,engine))
$(eval $(call daemon_dir_rule,rpc/,rpc))

$(O)/daemon/config.o: daemon/config.c | $(GEN_H)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(INC_base) $(call pkg_cflags,$(DAEMON_PKGS)) -c -o $@ $<

$(O)/daemon/carotated.o: daemon/carotated.c | $(GEN_H)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(call pkg_cflags,$(DAEMON_PKGS)) -c -o $@ $<

# The client sees common/ and its own headers, never the daemon's.
CLIENT_CFLAGS = $(BASE_CFLAGS) -iquote $(O)/gen -iquote common -iquote client

$(O)/client/%.o: client/%.c | $(GEN_H)
	@mkdir -p $(@D)
	$(CC) $(CLIENT_CFLAGS) $(call pkg_cflags,$(CLIENT_PKGS)) -c -o $@ $<

$(O)/client/agent/%.o: client/agent/%.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(INC_common) $(call pkg_cflags,$(AGENT_PKGS)) -c -o $@ $<

$(O)/carotate-agent: $(AGENT_OBJS)
	$(CC) -o $@ $^ $(ALL_LDFLAGS) $(call pkg_libs,$(AGENT_PKGS))

$(O)/libcarotated.a: $(DAEMON_LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(O)/carotated: $(O)/daemon/carotated.o $(O)/libcarotated.a $(COMMON_OBJS)
	$(CC) -o $@ $^ $(ALL_LDFLAGS) $(call pkg_libs,$(DAEMON_PKGS))

# A daemon with crash points armed by $$CAROTATE_CRASH_AT, for the crash tests only.
FAULTS_OBJS := $(patsubst $(O)/%,$(O)/faults/%,$(filter $(O)/daemon/% $(O)/common/%,\
	       $(DAEMON_OBJS) $(COMMON_OBJS))) $(filter $(O)/gen/%,$(DAEMON_OBJS) $(COMMON_OBJS))

$(O)/faults/%.o: %.c | $(GEN_H)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -DCAROTATE_FAULTS $(call pkg_cflags,$(DAEMON_PKGS)) -c -o $@ $<

# The swap's crash walk: the unit test and its module built with crash points armed.
$(O)/tests/test_swap-faults: $(O)/faults/tests/unit/test_swap.o $(O)/faults/daemon/store/swap.o $(O)/faults/daemon/store/journal.o $(O)/faults/daemon/store/statenote.o \
	    $(O)/faults/daemon/store/backup.o \
	    $(O)/faults/daemon/store/ssldir.o $(O)/faults/daemon/store/fsx.o $(PKI_OBJS:$(O)/%=$(O)/faults/%) \
	    $(filter $(O)/faults/common/%,$(FAULTS_OBJS)) $(filter $(O)/gen/%,$(COMMON_OBJS))
	$(CC) -o $@ $^ $(ALL_LDFLAGS) $(call pkg_libs,$(DAEMON_PKGS) $(TEST_PKGS))

$(O)/carotated-faults: $(FAULTS_OBJS)
	$(CC) -o $@ $^ $(ALL_LDFLAGS) $(call pkg_libs,$(DAEMON_PKGS))

# ---- faultinj: libfailio.so, an LD_PRELOAD shim that fails the Nth file-system call of
# the daemon (tests/faultinj/README.md), for test_io_faults. Plain -shared -fPIC and never
# sanitized: it is preloaded into the daemon of either build.
FAULTINJ_SO := $(O)/faultinj/libfailio.so

$(FAULTINJ_SO): tests/faultinj/failio.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -O2 -g $(WARNINGS) -shared -fPIC -o $@ $< -ldl

.PHONY: faultinj
faultinj: $(FAULTINJ_SO)
# ---- end faultinj

# The client links neither OpenSSL nor SQLite: it only frames protobuf and prints.
$(O)/carotatectl: $(CLIENT_OBJS) $(COMMON_OBJS)
	$(CC) -o $@ $^ $(ALL_LDFLAGS) $(call pkg_libs,$(CLIENT_PKGS))

# The unit tests see every layer, and the client (its printers, the agent's modules).
$(O)/tests/%.o: tests/unit/%.c | $(GEN_H)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -iquote client $(call pkg_cflags,$(DAEMON_PKGS) $(CLIENT_PKGS) $(TEST_PKGS)) -c -o $@ $<

# Each unit test links the objects of the module it tests (test_<module>_objs).
test_wire_objs     :=
test_proto_objs    :=
test_status_objs   :=
test_digest_objs   := $(DIGEST_OBJS)
test_valid_objs    :=
test_io_objs       :=
test_strbuf_objs   :=
test_config_objs   := $(O)/daemon/config.o
test_acl_objs      := $(O)/daemon/rpc/acl.o
# Dispatch is the hub: every handler hangs off its table. Its audit hook is tested with a
# ledger in a scratch state (fixture.c).
test_dispatch_objs := $(O)/tests/fixture.o $(O)/libcarotated.a
# The audit log, driven as dispatch drives it: audit.c and the store below it, no handler.
# tests/unit/fixture.c: the scratch daemon state test_audit, test_dispatch and test_mutate
# share (its audit readers: LEDGER_OBJS).
test_audit_objs    := $(O)/tests/fixture.o $(O)/daemon/rpc/audit.o $(O)/daemon/store/certset.o \
		      $(O)/daemon/store/ssldir.o $(O)/daemon/store/fsx.o $(PKI_OBJS) $(LEDGER_OBJS) \
		      $(O)/daemon/config.o
test_pki_objs      := $(PKI_OBJS)
test_seal_objs     := $(O)/daemon/pki/seal.o
test_poolfiles_objs := $(O)/daemon/store/poolfiles.o
test_ssldir_objs   := $(O)/daemon/store/ssldir.o $(O)/daemon/store/fsx.o
test_active_objs   := $(O)/daemon/store/bundle.o $(O)/daemon/store/retained.o $(O)/daemon/store/certset.o \
		      $(PKI_OBJS) $(O)/daemon/store/ssldir.o $(O)/daemon/store/fsx.o
test_job_objs      := $(O)/daemon/sys/job.o $(O)/daemon/sys/sandbox.o $(O)/daemon/sys/privs.o
test_privs_objs    := $(O)/daemon/sys/privs.o $(O)/daemon/sys/sandbox.o
test_watch_objs    := $(O)/daemon/sys/watch.o
test_ledger_objs   := $(LEDGER_OBJS) $(O)/tests/ledger_contract.o
# The PostgreSQL engine against a real server (tests/unit/pg_run.sh starts it).
test_ledger_pg_objs := $(LEDGER_OBJS) $(LEDGER_PG_OBJS) $(O)/tests/ledger_contract.o $(O)/tests/fixture_pg.o
test_ledger_migrate_pg_objs := $(LEDGER_OBJS) $(LEDGER_PG_OBJS) $(O)/tests/ledger_contract.o $(O)/tests/fixture_pg.o
# A pool's sealed sets: the SSL directory's reader, the seal, the CA keys and the PostgreSQL ledger.
test_poolsets_pg_objs := $(O)/daemon/store/poolsets.o $(O)/daemon/store/cakeys.o \
		      $(O)/daemon/store/ssldir.o $(O)/daemon/store/fsx.o $(O)/gen/internal.pb-c.o \
		      $(PKI_OBJS) $(LEDGER_OBJS) $(LEDGER_PG_OBJS) $(O)/tests/fixture_pg.o
test_swap_objs     := $(O)/daemon/store/swap.o $(O)/daemon/store/journal.o $(O)/daemon/store/statenote.o $(O)/daemon/store/backup.o \
		      $(O)/daemon/store/ssldir.o $(O)/daemon/store/fsx.o $(PKI_OBJS)
test_bundle_objs   := $(O)/daemon/store/bundle.o $(O)/daemon/store/retained.o $(O)/daemon/store/certset.o \
		      $(O)/daemon/store/ssldir.o $(O)/daemon/store/fsx.o \
		      $(PKI_OBJS)
test_backup_objs  := $(O)/daemon/store/backup.o $(O)/daemon/store/swap.o $(O)/daemon/store/journal.o $(O)/daemon/store/statenote.o $(O)/daemon/store/ssldir.o \
		      $(O)/daemon/store/fsx.o $(PKI_OBJS)
test_worker_objs   := $(O)/daemon/worker/worker.o $(O)/daemon/sys/supervise.o $(O)/daemon/config.o \
		      $(O)/daemon/sys/unixsock.o \
		      $(O)/daemon/sys/job.o $(O)/daemon/sys/sandbox.o $(O)/daemon/sys/privs.o \
		      $(O)/gen/internal.pb-c.o
# The printers live with their verbs: every client object but main's.
test_output_objs   := $(filter-out $(O)/client/ctl.o,$(CLIENT_OBJS))
test_check_objs    := $(test_output_objs)
# The agent's modules but http.c (libcurl) and main.c: the pure parts.
test_agent_objs    := $(filter-out $(O)/client/agent/http.o,$(AGENT_LIB_OBJS))
# Mutated requests through the real control connection: the whole daemon, and a role the
# test picks (acl_role wrapped) since root is always admin.
test_mutate_objs   := $(O)/tests/fixture.o $(O)/libcarotated.a
$(O)/tests/test_mutate: ALL_LDFLAGS += -Wl,--wrap=acl_role
# A ledger that cannot count, through the handlers and the metrics that read the counts: the
# daemon's objects, a scratch state, and the SQLite engine behind a table whose count fails.
test_count_objs    := $(O)/tests/fixture.o $(O)/libcarotated.a
# tests/unit/fixture_*.c, shared by the tests: fixture_fs makes scratch SSL and state
# directories and puts, reads and snapshots files there; fixture_pki generates sets (PKI_OBJS).
FIXTURE_FS  := $(O)/tests/fixture_fs.o
FIXTURE_PKI := $(O)/tests/fixture_pki.o
test_ssldir_objs  += $(FIXTURE_FS)
test_watch_objs   += $(FIXTURE_FS)
test_swap_objs    += $(FIXTURE_FS) $(FIXTURE_PKI)
test_active_objs  += $(FIXTURE_FS) $(FIXTURE_PKI)
test_bundle_objs  += $(FIXTURE_FS) $(FIXTURE_PKI)
test_backup_objs += $(FIXTURE_FS) $(FIXTURE_PKI)
test_poolfiles_objs += $(FIXTURE_FS)
test_poolsets_pg_objs += $(FIXTURE_FS) $(FIXTURE_PKI)
test_audit_objs   := $(FIXTURE_PKI) $(test_audit_objs)
test_mutate_objs  := $(FIXTURE_PKI) $(test_mutate_objs)
test_dispatch_objs := $(FIXTURE_PKI) $(test_dispatch_objs)
test_count_objs    := $(FIXTURE_PKI) $(test_count_objs)
$(O)/tests/test_swap-faults: $(FIXTURE_FS) $(FIXTURE_PKI)

.SECONDEXPANSION:
$(O)/tests/test_%: $(O)/tests/test_%.o $$(test_$$*_objs) $(COMMON_OBJS)
	$(CC) -o $@ $^ $(ALL_LDFLAGS) $(call pkg_libs,$(DAEMON_PKGS) $(CLIENT_PKGS) $(TEST_PKGS))

# Both engines: its -p mode sets a pool member's ledger on PostgreSQL against SQLite.
$(O)/bench/ledger_bench: tests/bench/ledger_bench.c $(LEDGER_OBJS) $(LEDGER_PG_OBJS) \
	    $(COMMON_OBJS) $(GEN_H)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(call pkg_cflags,sqlite3 openssl libpq) -o $@ $< $(LEDGER_OBJS) \
	    $(LEDGER_PG_OBJS) $(COMMON_OBJS) $(ALL_LDFLAGS) \
	    $(call pkg_libs,sqlite3 openssl libprotobuf-c libpq)

# The agent simulator stands alone, and the ingest load generator has only the socket client.
$(O)/agentsim: tests/agentsim/agentsim.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(call pkg_cflags,openssl) -o $@ $< $(ALL_LDFLAGS) \
	    $(call pkg_libs,openssl) -lpthread

# The power-loss test's tools (tests/powerloss): the logging FUSE file system, built only where
# libfuse3 is (a test dependency, like cmocka: test_power_loss skips without it), and the replayer.
POWERLOSS_LOGFMT := tests/powerloss/logfmt.c tests/powerloss/logfmt.h common/io.c common/io.h
POWERLOSS_PROGS  := $(O)/powerloss/replay \
	$(if $(shell $(PKG_CONFIG) --exists fuse3 2>/dev/null && echo y),$(O)/powerloss/logfs)

$(O)/powerloss/logfs: tests/powerloss/logfs.c $(POWERLOSS_LOGFMT)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -iquote common $(call pkg_cflags,fuse3) -o $@ $< tests/powerloss/logfmt.c common/io.c \
	    $(ALL_LDFLAGS) $(call pkg_libs,fuse3)

$(O)/powerloss/replay: tests/powerloss/replay.c $(POWERLOSS_LOGFMT)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -iquote common -o $@ $< tests/powerloss/logfmt.c common/io.c $(ALL_LDFLAGS)

# The test TLS server with canned answers nginx never gives (tests/fakeproxy/fakeproxy.c).
$(O)/fakeproxy: tests/fakeproxy/fakeproxy.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(call pkg_cflags,openssl) -o $@ $< $(ALL_LDFLAGS) $(call pkg_libs,openssl)

$(O)/bench/ingest_bench: tests/bench/ingest_bench.c $(O)/load/sockclient.o
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests/load -o $@ $< $(O)/load/sockclient.o $(ALL_LDFLAGS) -lpthread

$(O)/bench/%: tests/bench/%.c $(O)/load/sockclient.o $(COMMON_OBJS) $(GEN_H)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests/load $(call pkg_cflags,libprotobuf-c) -o $@ $< \
	    $(O)/load/sockclient.o $(COMMON_OBJS) $(ALL_LDFLAGS) $(call pkg_libs,libprotobuf-c)

# ---------------------------------------------------------------- load tools (tests/load)
# Control-socket and agent-socket load with hostile clients: one process, one epoll loop
# each. Used by tests/integration/test_load_hostile.sh and section (g) of tests/bench/run.
LOAD_PROGS  := $(O)/load/ctlload $(O)/load/agentload

# tests/load/sockclient.c: the socket client the bench and load tools share.
LOAD_OBJS   := $(O)/load/load.o $(O)/load/sockclient.o

$(O)/load/%.o: tests/load/%.c tests/load/load.h tests/load/sockclient.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(O)/load/ctlload: tests/load/ctlload.c $(LOAD_OBJS) $(COMMON_OBJS) $(GEN_H)
	$(CC) $(ALL_CFLAGS) -Itests/load $(call pkg_cflags,libprotobuf-c) -o $@ $< \
	    $(LOAD_OBJS) $(COMMON_OBJS) $(ALL_LDFLAGS) $(call pkg_libs,libprotobuf-c)

$(O)/load/agentload: tests/load/agentload.c $(LOAD_OBJS)
	$(CC) $(ALL_CFLAGS) -Itests/load -o $@ $< $(LOAD_OBJS) $(ALL_LDFLAGS)

load: $(LOAD_PROGS)

deps:
	@packaging/install-deps build test

unit: all $(UNIT_TESTS)
	@tests/unit/run $(UNIT_TESTS)

integration: all $(O)/carotated-faults $(O)/agentsim $(O)/fakeproxy $(O)/bench/ingest_bench \
	    $(LOAD_PROGS) $(FAULTINJ_SO) $(POWERLOSS_PROGS)
	@CAROTATE_BUILD=$(abspath $(O)) tests/integration/run

# The power-loss walk with every single dropped write of every flush epoch as well (`make
# check` runs its flush points only): tests/integration/test_power_loss.sh, ext4 and XFS.
powerloss: all $(O)/agentsim $(POWERLOSS_PROGS)
	@CAROTATE_BUILD=$(abspath $(O)) CAROTATE_POWERLOSS_FULL=1 CAROTATE_TEST_TIMEOUT=$${CAROTATE_TEST_TIMEOUT:-7200} \
	    tests/integration/run test_power_loss

check: deps
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration
	@$(if $(filter 1,$(SANITIZE)),echo "fuzz: skipped (SANITIZE=1)",$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_CHECK_SECONDS))

# ---------------------------------------------------------------- fuzzing (libFuzzer)
# tests/fuzz/fuzz_<t>.c, built with clang against the daemon's objects compiled anew in
# build/fuzz (always ASan + UBSan, -DCAROTATE_FUZZ for the few entry points the targets need),
# whatever SANITIZE says. `make fuzz FUZZ_SECONDS=N`: each target for N s on a working corpus
# in build/fuzz/corpus/<t>, the committed seeds (tests/fuzz/corpus/<t>) read only; fails on a
# crash, leak or timeout. `make fuzz-replay`: every committed seed and regression input once.
# `make check` runs `fuzz` for FUZZ_CHECK_SECONDS per target, except with SANITIZE=1 (the
# targets are sanitized whatever SANITIZE says: running them twice would only cost time).
FUZZ_CC      ?= clang
FUZZ_O       := build/fuzz
FUZZ_SECONDS ?= 60
# In `make check`: 20 s per target unless FUZZ_SECONDS is given on the command line.
FUZZ_CHECK_SECONDS ?= $(if $(filter command line,$(origin FUZZ_SECONDS)),$(FUZZ_SECONDS),20)
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS  := -MMD -MP -std=c11 -D_GNU_SOURCE -DCAROTATE_VERSION='"$(VERSION)"' -DCAROTATE_FUZZ \
	       $(WARNINGS) -g -O1 $(FUZZ_SAN) $(subst $(O)/gen,$(FUZZ_O)/gen,$(INC_all)) \
	       $(call pkg_cflags,$(DAEMON_PKGS))
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_O)/fuzz_%)
FUZZ_OBJS    := $(patsubst $(O)/%,$(FUZZ_O)/%,$(DAEMON_LIB_OBJS) $(COMMON_OBJS))

.PHONY: fuzz fuzz-build fuzz-replay fuzz-seeds
.SECONDARY: $(FUZZ_OBJS) $(FUZZ_O)/tests/fuzz/fuzzlib.o $(FUZZ_BINS:$(FUZZ_O)/%=$(FUZZ_O)/tests/fuzz/%.o) \
	    $(FUZZ_O)/gen/carotate.pb-c.c $(FUZZ_O)/gen/internal.pb-c.c \
	    $(FUZZ_O)/gen/carotate.pb-c.h $(FUZZ_O)/gen/internal.pb-c.h $(FUZZ_O)/tests/fuzz/mkseeds.o

$(FUZZ_O)/gen/%.pb-c.c $(FUZZ_O)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(FUZZ_O)/gen
	$(PROTOC_C) --c_out=$(FUZZ_O)/gen -Iproto $<

$(FUZZ_O)/gen/%.pb-c.o: $(FUZZ_O)/gen/%.pb-c.c $(FUZZ_O)/gen/carotate.pb-c.h \
	    $(FUZZ_O)/gen/internal.pb-c.h
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -Wno-error -c -o $@ $<

$(FUZZ_O)/%.o: %.c | $(FUZZ_O)/gen/carotate.pb-c.h $(FUZZ_O)/gen/internal.pb-c.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_O)/fuzz_%: $(FUZZ_O)/tests/fuzz/fuzz_%.o $(FUZZ_O)/tests/fuzz/fuzzlib.o $(FUZZ_OBJS)
	$(FUZZ_CC) -o $@ $^ -fsanitize=fuzzer $(FUZZ_SAN) $(call pkg_libs,$(DAEMON_PKGS))

# The seed generator: golden frames and requests made by the daemon's own encoders.
$(FUZZ_O)/mkseeds: $(FUZZ_O)/tests/fuzz/mkseeds.o $(FUZZ_O)/tests/fuzz/fuzzlib.o $(FUZZ_OBJS)
	$(FUZZ_CC) -o $@ $^ -fsanitize=fuzzer-no-link $(FUZZ_SAN) $(call pkg_libs,$(DAEMON_PKGS))

fuzz-build: $(FUZZ_BINS)

# Rewrites the generated seeds (control, internal, http) in tests/fuzz/corpus.
fuzz-seeds: $(FUZZ_O)/mkseeds
	$(FUZZ_O)/mkseeds tests/fuzz/corpus

fuzz: fuzz-build
	@tests/fuzz/run --seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-replay: fuzz-build
	@tests/fuzz/run --replay $(FUZZ_TARGETS)

# ---------------------------------------------------------------- valgrind
# `make valgrind`: memcheck over every unit test program and the integration tests, the
# daemon, its agent worker, its jobs and carotatectl under it (tests/valgrind/run, which
# lists the integration tests it leaves out and why). Any memcheck error or definitely lost
# block fails. A normal build: valgrind does not run AddressSanitizer binaries.
.PHONY: valgrind
valgrind: deps
	@if [ "$(SANITIZE)" = 1 ]; then echo "valgrind: needs a build without SANITIZE=1" >&2; exit 2; fi
	@$(MAKE) --no-print-directory all $(UNIT_TESTS) $(O)/agentsim $(O)/bench/ingest_bench $(LOAD_PROGS)
	@CAROTATE_BUILD=$(abspath $(O)) tests/valgrind/run $(UNIT_TESTS)

BENCH_PROGS := $(patsubst tests/bench/%.c,$(O)/bench/%,$(wildcard tests/bench/*.c))

# A whole rotation against a local sandbox (real nginx, simulated agents), narrated.
demo: deps
	@$(MAKE) --no-print-directory all $(O)/agentsim
	@CAROTATE_BUILD=$(abspath $(O)) tests/demo/run

bench: deps all $(BENCH_PROGS) $(O)/agentsim $(LOAD_PROGS)
	@packaging/install-deps bench
	@CAROTATE_BUILD=$(abspath $(O)) tests/bench/run

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/carotate
	install -m 0755 $(O)/carotated $(DESTDIR)$(SBINDIR)/carotated
	install -m 0755 $(O)/carotatectl $(DESTDIR)$(BINDIR)/carotatectl
	install -m 0755 $(O)/carotate-agent $(DESTDIR)$(BINDIR)/carotate-agent
	install -m 0644 proto/carotate.proto $(DESTDIR)$(DATADIR)/carotate/carotate.proto
	install -d $(DESTDIR)$(DATADIR)/carotate/nginx
	install -m 0644 packaging/nginx/carotate.conf packaging/nginx/carotate-locations.conf \
	    packaging/nginx/carotate-canary.conf packaging/nginx/README.md \
	    $(DESTDIR)$(DATADIR)/carotate/nginx/
	install -d $(DESTDIR)$(SYSCONFDIR)/carotate
	install -m 0644 packaging/carotated.conf $(DESTDIR)$(SYSCONFDIR)/carotate/carotated.conf
	install -d $(DESTDIR)$(SYSCONFDIR)/carotate-agent
	install -m 0644 packaging/carotate-agent.conf $(DESTDIR)$(SYSCONFDIR)/carotate-agent/agent.conf
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man7 \
	    $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(DATADIR)/bash-completion/completions
	install -m 0644 packaging/man/carotatectl.1 $(DESTDIR)$(MANDIR)/man1/carotatectl.1
	install -m 0644 packaging/man/carotated.conf.5 $(DESTDIR)$(MANDIR)/man5/carotated.conf.5
	install -m 0644 packaging/man/carotate-protocol.7 $(DESTDIR)$(MANDIR)/man7/carotate-protocol.7
	install -m 0644 packaging/man/carotated.8 $(DESTDIR)$(MANDIR)/man8/carotated.8
	install -m 0644 packaging/man/carotate-agent.8 $(DESTDIR)$(MANDIR)/man8/carotate-agent.8
	install -m 0644 packaging/bash-completion/carotatectl \
	    $(DESTDIR)$(DATADIR)/bash-completion/completions/carotatectl
	install -m 0644 packaging/bash-completion/carotate-agent \
	    $(DESTDIR)$(DATADIR)/bash-completion/completions/carotate-agent
# systemd: the unit names the installed binary and configuration.
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR)
	sed -e 's|/usr/sbin/carotated|$(SBINDIR)/carotated|' \
	    -e 's|/etc/carotate/carotated.conf|$(SYSCONFDIR)/carotate/carotated.conf|' \
	    systemd/carotated.service >$(DESTDIR)$(UNITDIR)/carotated.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/carotated.service
	install -m 0644 systemd/carotate.sysusers $(DESTDIR)$(SYSUSERSDIR)/carotate.conf
	install -m 0644 systemd/carotate.tmpfiles $(DESTDIR)$(TMPFILESDIR)/carotate.conf
# carotate-agent's units: the service names the installed binary and its writable
# configuration directory; the timer names nothing but the service.
	sed -e 's|/usr/bin/carotate-agent|$(BINDIR)/carotate-agent|' \
	    -e 's|/etc/carotate-agent|$(SYSCONFDIR)/carotate-agent|' \
	    systemd/carotate-agent.service >$(DESTDIR)$(UNITDIR)/carotate-agent.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/carotate-agent.service
	install -m 0644 systemd/carotate-agent.timer $(DESTDIR)$(UNITDIR)/carotate-agent.timer
# The renewal timer's units (shipped disabled): the service names the installed client.
	sed -e 's|/usr/bin/carotatectl|$(BINDIR)/carotatectl|' \
	    systemd/carotate-renew.service >$(DESTDIR)$(UNITDIR)/carotate-renew.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/carotate-renew.service
	install -m 0644 systemd/carotate-renew.timer $(DESTDIR)$(UNITDIR)/carotate-renew.timer

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/carotated $(DESTDIR)$(BINDIR)/carotatectl \
	    $(DESTDIR)$(BINDIR)/carotate-agent $(DESTDIR)$(MANDIR)/man8/carotate-agent.8 \
	    $(DESTDIR)$(DATADIR)/bash-completion/completions/carotate-agent
	rm -rf $(DESTDIR)$(DATADIR)/carotate
	rm -f $(DESTDIR)$(MANDIR)/man1/carotatectl.1 $(DESTDIR)$(MANDIR)/man5/carotated.conf.5 \
	    $(DESTDIR)$(MANDIR)/man8/carotated.8 $(DESTDIR)$(MANDIR)/man7/carotate-protocol.7 \
	    $(DESTDIR)$(DATADIR)/bash-completion/completions/carotatectl
	rm -f $(DESTDIR)$(UNITDIR)/carotated.service $(DESTDIR)$(SYSUSERSDIR)/carotate.conf \
	    $(DESTDIR)$(TMPFILESDIR)/carotate.conf
	rm -f $(DESTDIR)$(UNITDIR)/carotate-agent.service $(DESTDIR)$(UNITDIR)/carotate-agent.timer \
	    $(DESTDIR)$(UNITDIR)/carotate-renew.service $(DESTDIR)$(UNITDIR)/carotate-renew.timer

format:
	clang-format -i $(wildcard common/*.[ch] daemon/*.[ch] client/*.[ch] client/agent/*.[ch] \
	    tests/unit/*.[ch] tests/powerloss/*.[ch])

clean:
	rm -rf build

# Header dependencies written by -MMD (every build directory: plain, asan, fuzz).
-include $(shell find build -name '*.d' 2>/dev/null)

# ---------------------------------------------------------------- release tarball and packages
# `make dist`: build/carotate-VERSION.tar.gz, the tracked files as they are in the work tree
# (uncommitted edits included, so packages can be tried before committing), or every file
# but build/ outside a git checkout. Entries carry the last commit's time and root as owner,
# so the same files give the same tarball, which is replaced only when its contents change:
# `make deb` and `make rpm` rebuild only then (remove build/deb or build/rpm to force it).
# `make deb`: build/deb/carotate_VERSION-N_ARCH.deb, built with dpkg-buildpackage in an
# unpacked copy of that tarball, packaging/debian/ copied to debian/ (the top-level layout
# is fixed). DEB_BUILD_OPTIONS=nocheck skips the unit tests run during the build.
# `make rpm`: build/rpm/RPMS/ARCH/carotate-VERSION-N.ARCH.rpm, `rpmbuild -tb` on the same
# tarball (its packaging/rpm/carotate.spec); --nodeps, since build requirements name RPM
# packages that a Debian machine's rpm database does not know. RPMBUILD_FLAGS=--nocheck
# skips the unit tests run during the build.
DIST_NAME   := carotate-$(VERSION)
DIST_TAR    := build/$(DIST_NAME).tar.gz
DEB_DIR     := build/deb
RPM_DIR     := build/rpm
RPMBUILD_FLAGS ?= --nodeps
# Package builds must not inherit this make's command line (SANITIZE=1, O=..., -j).
PKG_ENV     := env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u SANITIZE -u O -u WERROR -u DESTDIR

.PHONY: dist deb rpm FORCE

dist: $(DIST_TAR)

$(DIST_TAR): FORCE
	@mkdir -p $(@D)
	@if files=$$(git ls-files 2>/dev/null) && [ -n "$$files" ]; then \
		epoch=$$(git log -1 --format=%ct); \
	else \
		files=$$(find . -path ./build -prune -o -path ./.git -prune -o -type f -print); \
		epoch=$$(date -r Makefile +%s); \
	fi; \
	tar --create --sort=name --owner=0 --group=0 --numeric-owner --mode=go-w \
	    --mtime=@$$epoch --transform='s,^\(\./\)\?,$(DIST_NAME)/,S' $$files | \
	    gzip -n -9 >$@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@ && echo "dist: $@"; fi

deb: $(DEB_DIR)/.built

$(DEB_DIR)/.built: $(DIST_TAR)
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)
	tar -xzf $(DIST_TAR) -C $(DEB_DIR)
	cp -R $(DEB_DIR)/$(DIST_NAME)/packaging/debian $(DEB_DIR)/$(DIST_NAME)/debian
	cd $(DEB_DIR)/$(DIST_NAME) && $(PKG_ENV) dpkg-buildpackage -us -uc -b -Jauto
	rm -rf $(DEB_DIR)/$(DIST_NAME)
	@touch $@
	@ls $(DEB_DIR)/*.deb

rpm: $(RPM_DIR)/.built

$(RPM_DIR)/.built: $(DIST_TAR)
	rm -rf $(RPM_DIR) && mkdir -p $(RPM_DIR)
	$(PKG_ENV) rpmbuild -tb $(RPMBUILD_FLAGS) --define '_topdir $(abspath $(RPM_DIR))' \
	    $(DIST_TAR)
	@touch $@
	@ls $(RPM_DIR)/RPMS/*/*.rpm

# The include flags of one layer's directory (LAYER=store...): test_layers.sh shows with them
# that a header of a higher layer does not compile there.
.PHONY: show-includes
show-includes:
	@echo $(INC_$(LAYER))
