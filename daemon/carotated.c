/*
 * carotated: rotates the certificate authority of a TLS proxy.
 * Start-up: options, configuration, directory checks, control socket, then
 * the event loop. Signals: TERM/INT stop cleanly, HUP re-reads the configuration.
 */
#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "agents.h"
#include "audit.h"
#include "bundle.h"
#include "carotated.h"
#include "config.h"
#include "control.h"
#include "dirs.h"
#include "dispatch.h"
#include "job.h"
#include "ledger.h"
#include "log.h"
#include "member.h"
#include "notify.h"
#include "pki.h"
#include "poolfiles.h"
#include "pool.h"
#include "poolkey.h"
#include "privs.h"
#include "proxy.h"
#include "retained.h"
#include "ssldir.h"
#include "statenote.h"
#include "supervise.h"
#include "journal.h"
#include "watch.h"
#include "worker.h"
#include "xmalloc.h"

static void carotated_usage(FILE *, int) __attribute__((noreturn));
static void carotated_stdio(void);
static void carotated_nofile(void);
static int carotated_check_group(const char *, const char *, const char *);
static int carotated_check_config(const char *, const struct config *);
static int carotated_check_problem(const char *, const char *);
static void carotated_signal(evutil_socket_t, short, void *);
static unsigned carotated_stop_bound(const struct config *);
static void carotated_stop_late(evutil_socket_t, short, void *);
static void carotated_stop(struct carotated *, int);
static int carotated_unfinished(struct carotated *);
static void carotated_reload(struct carotated *);
static void carotated_watch(struct carotated *);
static void carotated_adopt(struct carotated *, int);
static int carotated_recover(struct carotated *, char *, size_t);
static int carotated_init(const struct config *);
static struct ledger *carotated_ledger_open(const struct config *, char *, size_t);
static int carotated_migrate(const char *, const struct config *, const char *);
static void carotated_migrate_print(const struct ledger_migration *, const char *);

static void
carotated_usage(FILE *fp, int status)
{
	fprintf(fp,
	    "usage: carotated [-dfhV] [-c file] [--check-config | --init | --migrate-ledger "
	    "FROM.db]\n"
	    "  -c file          configuration file (default %s)\n"
	    "  -d               log debug messages\n"
	    "  -f               stay in the foreground, log to stderr\n"
	    "  -h, --help       print this help and exit\n"
	    "  -V, --version    print the version and exit\n"
	    "  --check-config   validate the configuration and exit\n"
	    "  --init           make the SSL directory's canary pair exist for nginx, and exit\n"
	    "  --migrate-ledger FROM.db\n"
	    "                   copy a single proxy's ledger (its daemon stopped) into the pool\n"
	    "                   the configuration names, and exit\n",
	    CONFIG_DEFAULT_PATH);
	exit(status);
}

/*
 * Whatever started us may have left descriptors open (a shell's `exec 9<`, a
 * careless service manager or package script): they would reach every child
 * and let it read or write what we never meant to hand out. All of them
 * close, from 3 up; carotated takes no sockets from its service manager
 * (no LISTEN_FDS socket activation), so none is ours yet. Descriptors 0-2
 * stay open (on /dev/null), so no file we open can become stderr.
 */
static void
carotated_stdio(void)
{
	int fd;

	/* Linux 5.9 and later, as the agent worker's start needs too. */
	if (close_range(3, ~0U, 0) == -1)
		fatal("close_range");

	while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2)
		;
	if (fd > 2)
		close(fd);
}

/*
 * The soft descriptor limit is raised to the hard one (systemd: 1024 and
 * 524288): every connection is a descriptor, and epoll has no use for the
 * 1024 that select() needs. Programs we run get the old soft limit back.
 */
static void
carotated_nofile(void)
{
	struct rlimit rl;
	rlim_t soft;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("getrlimit");
		return;
	}
	if ((soft = rl.rlim_cur) == rl.rlim_max) {
		log_info("descriptors: at most %llu open", (unsigned long long)soft);
		return;
	}
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("cannot raise the descriptor limit from %llu to %llu",
		    (unsigned long long)soft, (unsigned long long)rl.rlim_max);
		return;
	}
	job_set_nofile(soft);
	log_info("descriptors: at most %llu open (soft limit raised from %llu)",
	    (unsigned long long)rl.rlim_max, (unsigned long long)soft);
}

/* One line when group does not exist; the number of problems (0 or 1). */
static int
carotated_check_group(const char *key, const char *group, const char *path)
{
	char err[512];

	if (getgrnam(group) != NULL)
		return 0;
	snprintf(err, sizeof(err), "%s %s does not exist (create it: groupadd --system %s)", key,
	    group, group);
	return carotated_check_problem(path, err);
}

static int
carotated_check_problem(const char *path, const char *what)
{
	fprintf(stderr, "carotated: %s: %s\n", path, what);
	return 1;
}

/*
 * --check-config beyond the syntax: what start-up would refuse, one line each,
 * without creating anything. As root: the groups, the worker's user and the
 * directories. As another user the daemon changes no user or group, so only
 * the directories are checked, for that user. Returns the number of problems.
 */
static int
carotated_check_config(const char *path, const struct config *conf)
{
	char err[1024];
	int n = 0;

	if (geteuid() == 0) {
		n += carotated_check_group("[daemon] socket_group", conf->socket_group, path);
		n += carotated_check_group("[daemon] admin_group", conf->admin_group, path);
		n += carotated_check_group("[agents] group", conf->agents_group, path);
		if (supervise_check_user(conf->agents_user, err, sizeof(err)) == -1)
			n += carotated_check_problem(path, err);
	} else
		printf("%s: not run as root: carotated would change no user or group, so "
		       "socket_group, admin_group and the [agents] user and group are not "
		       "checked\n",
		    path);
	n += dirs_check_config(conf, carotated_check_problem, path);
	return n;
}

/*
 * What is on disk is the truth: after a crash or a change made by hand,
 * finish or undo what was interrupted and re-derive the published files. A
 * change of the active set that carotated did not make (an operator copying
 * a backup back by hand, PROCEDURE.txt) is adopted: the CA it replaced stays
 * trusted for the retention window, and the change is audited.
 */
static void
carotated_adopt(struct carotated *cd, int recovered)
{
	const struct config *conf = cd->conf;
	char before[RETAINED_NOTE_LEN], after[RETAINED_NOTE_LEN];
	struct bundle b;
	char err[512];
	int r;

	ssldir_recover(conf);
	if ((r = retained_note_active(conf, time(NULL), before, after, err, sizeof(err))) == -1)
		log_warnx("%s", err);
	else if (r == 1)
		log_info("the active set changed %s (%s, was %s): adopted",
		    recovered ? "by an interrupted swap finished or undone at start-up"
		              : "outside carotated",
		    after, before);
	if ((r = bundle_publish(conf, time(NULL), &b, err, sizeof(err))) == -1)
		log_warnx("cannot publish the trust bundle: %s", err);
	else if (r == 1)
		log_info("published the trust bundle %s (%zu CAs) and the canary certificate",
		    b.n > 0 ? b.id : "(empty)", b.n);
	bundle_clear(&b);
}

/*
 * --init, run by the packages' maintainer scripts: nginx -t fails on a
 * canary.crt that does not exist, so the pair exists from installation on,
 * as start-up would publish it, or as a throwaway self-signed placeholder
 * (no server set yet; its CA key is never kept, so no agent can trust it).
 * It writes nothing else: a running daemon may share the directory.
 */
static int
carotated_init(const struct config *conf)
{
	static char *const sans[] = { (char *)"DNS:placeholder.carotate.invalid" };
	struct pki_profile p = { .key = PKI_KEY_EC_P256,
		.ca_days = 1,
		.server_days = 1,
		.name = "carotate placeholder",
		.sans = sans,
		.n_sans = 1,
		.now = time(NULL) };
	struct pki_material m = { 0 };
	char err[1024];
	int r;

	if (dirs_check(conf, err, sizeof(err)) == -1 ||
	    pki_generate(&p, &m, err, sizeof(err)) == -1 ||
	    (r = ssldir_init_canary(conf, m.cert, m.key, err, sizeof(err))) == -1) {
		pki_material_clear(&m);
		fprintf(stderr, "carotated: %s\n", err);
		return 1;
	}
	pki_material_clear(&m);
	printf("%s/%s, %s: %s\n", conf->ssl_dir, SSLDIR_CANARY_CERT, SSLDIR_CANARY_KEY,
	    r == 1 ? "written" : "already current");
	return 0;
}

/* A swap cut short by a crash is finished or undone before anything reads the set. */
static int
carotated_recover(struct carotated *cd, char *err, size_t errlen)
{
	int r;

	if ((r = journal_recover(cd->conf, err, errlen)) == 1) {
		log_info("an interrupted rotate or restore was completed or undone");
		audit_event(cd, "recover", CAROTATE__V1__STATUS__OK, NULL, NULL,
		    "an interrupted rotate or restore was completed or undone from its journal");
	} else if (r == -1)
		audit_event(cd, "recover", CAROTATE__V1__STATUS__INTERNAL, NULL, NULL,
		    "the journal of an interrupted swap could not be replayed: %s", err);
	return r;
}

/* 1 when a rotate or restore was cut short after its swap (rpc_rotate_resume finishes it). */
static int
carotated_unfinished(struct carotated *cd)
{
	char *text = NULL, err[256];
	int r;

	if ((r = statenote_read(cd->conf, JOURNAL_PENDING, &text, err, sizeof(err))) == -1)
		log_warnx("%s", err);
	free(text);
	return r == 1;
}

/*
 * What the status reply and the phase are read from: the SSL directory and
 * its files, its staging directory and files, the published bundle, and the
 * retained CAs in the state directory (whose other entries, the ledger among
 * them, do not matter). Every cached answer is checked against these.
 */
static void
carotated_watch(struct carotated *cd)
{
	const struct config *conf = cd->conf;
	const char *files[] = { conf->ssl_ca, conf->ssl_cert, conf->ssl_key, SSLDIR_SETINFO };
	struct watch_path p[32];
	char *paths[32];
	size_t n = 0, i;

	p[n].kind = WATCH_ROOT;
	paths[n++] = xstrdup(conf->ssl_dir);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		p[n].kind = WATCH_FILE;
		xasprintf(&paths[n++], "%s/%s", conf->ssl_dir, files[i]);
	}
	p[n].kind = WATCH_FILE;
	xasprintf(&paths[n++], "%s/%s", conf->ssl_dir, SSLDIR_BUNDLE);
	p[n].kind = WATCH_DIR;
	xasprintf(&paths[n++], "%s/%s", conf->ssl_dir, SSLDIR_STAGING);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		p[n].kind = WATCH_FILE;
		xasprintf(&paths[n++], "%s/%s/%s", conf->ssl_dir, SSLDIR_STAGING, files[i]);
	}
	p[n].kind = WATCH_ENTRIES;
	paths[n++] = xstrdup(conf->state_dir);
	p[n].kind = WATCH_DIR;
	xasprintf(&paths[n++], "%s/%s", conf->state_dir, RETAINED_DIR);
	for (i = 0; i < n; i++)
		p[i].path = paths[i];
	watch_set(cd->watch, p, n);
	for (i = 0; i < n; i++)
		free(paths[i]);
}

/* A bad file on SIGHUP leaves the running configuration in place. */
static void
carotated_reload(struct carotated *cd)
{
	struct config *conf;
	char err[1024];
	int r;

	if ((conf = config_load(cd->conf_path, err, sizeof(err))) == NULL) {
		log_warnx("reload: %s; keeping the running configuration", err);
		return;
	}
	if (strcmp(conf->socket, cd->conf->socket) != 0) {
		log_warnx("reload: a new control socket path takes a restart; still on %s",
		    cd->conf->socket);
		free(conf->socket);
		conf->socket = xstrdup(cd->conf->socket);
	}
	/* The ledger, the journal and the set live there: moving them takes a restart. */
	if (strcmp(conf->state_dir, cd->conf->state_dir) != 0) {
		log_warnx("reload: a new [daemon] state_dir (%s) takes a restart; still on %s",
		    conf->state_dir, cd->conf->state_dir);
		free(conf->state_dir);
		conf->state_dir = xstrdup(cd->conf->state_dir);
	}
	if (strcmp(conf->ssl_dir, cd->conf->ssl_dir) != 0) {
		log_warnx("reload: a new [ssl] dir (%s) takes a restart; still on %s",
		    conf->ssl_dir, cd->conf->ssl_dir);
		free(conf->ssl_dir);
		conf->ssl_dir = xstrdup(cd->conf->ssl_dir);
	}
	if (dirs_check(conf, err, sizeof(err)) == -1) {
		log_warnx("reload: %s; keeping the running configuration", err);
		config_free(conf);
		return;
	}
	config_free(cd->conf);
	cd->conf = conf;
	/* The file names may have changed, and with them what status shows. */
	carotated_watch(cd);
	control_reconfigure(cd->control);
	/* A rotate or restore in flight owns the set until it answers. */
	if (cd->busy == NULL) {
		if ((r = carotated_recover(cd, err, sizeof(err))) == -1)
			log_warnx("reload: %s", err);
		carotated_adopt(cd, r == 1);
		audit_adopt(cd);
	}
	agents_refresh(cd);
	agents_check_canary(cd);
	log_info("reload: configuration re-read from %s", cd->conf_path);
}

/*
 * How long a stop waits for the call in progress (ms): a rotate or restore
 * reloads and checks, and may roll back (a second reload and check); each
 * check's job may outlive check_timeout by 5 s. The unit's TimeoutStopSec
 * must exceed it (120 s for the defaults' 95 s).
 */
static unsigned
carotated_stop_bound(const struct config *conf)
{
	return 2 * (conf->reload_timeout + conf->check_timeout + 5000) + 5000;
}

/* The call did not answer within the bound: what is left is journaled (rpc_rotate_resume). */
static void
carotated_stop_late(evutil_socket_t fd, short events, void *arg)
{
	struct carotated *cd = arg;

	log_warnx("shutdown: %s did not finish within %u s; stopping, the next start finishes it",
	    cd->busy != NULL ? cd->busy : "the call", carotated_stop_bound(cd->conf) / 1000);
	event_base_loopbreak(cd->base);
}

/*
 * SIGTERM (a package upgrade, systemctl stop) must not cut a rotate or restore
 * in half: with one in flight, the daemon answers it first (reload, TLS check,
 * roll back, audit; dispatch_done ends the loop), for at most
 * carotated_stop_bound. A second signal stops at once.
 */
static void
carotated_stop(struct carotated *cd, int sig)
{
	struct timeval tv;
	unsigned ms = carotated_stop_bound(cd->conf);
	char state[64];

	if (cd->busy == NULL || cd->stopping) {
		log_info("%s: shutting down%s", strsignal(sig),
		    cd->busy != NULL ? " now, before the call in progress finished" : "");
		notify_send("STOPPING=1");
		event_base_loopbreak(cd->base);
		return;
	}
	cd->stopping = 1;
	log_info("%s: shutting down once the %s in progress has finished (at most %u s)",
	    strsignal(sig), cd->busy, ms / 1000);
	notify_send("STOPPING=1");
	snprintf(state, sizeof(state), "EXTEND_TIMEOUT_USEC=%llu",
	    (unsigned long long)(ms + 10000) * 1000);
	notify_send(state);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	if ((cd->stop_ev = evtimer_new(cd->base, carotated_stop_late, cd)) == NULL ||
	    evtimer_add(cd->stop_ev, &tv) == -1)
		event_base_loopbreak(cd->base);
}

static void
carotated_signal(evutil_socket_t sig, short events, void *arg)
{
	struct carotated *cd = arg;

	switch (sig) {
	case SIGHUP:
		carotated_reload(cd);
		break;
	case SIGTERM:
	case SIGINT:
		carotated_stop(cd, sig);
		break;
	}
}

/*
 * The ledger [ledger] names: the state directory's SQLite file, or a pool's PostgreSQL, whose
 * connection string and key are read here and wiped once used. A member whose key is not the
 * pool's does not start: what it sealed would be noise to the others.
 */
static struct ledger *
carotated_ledger_open(const struct config *conf, char *err, size_t errlen)
{
	char dsn[POOLFILES_MAX_DSN + 1], why[512];
	uint8_t key[POOLFILES_KEY_LEN];
	struct ledger *l;

	if (conf->ledger_backend == CONFIG_LEDGER_SQLITE)
		return ledger_open(conf->state_dir, err, errlen);
	if (poolfiles_read_dsn(conf->ledger_dsn_file, dsn, sizeof(dsn), why, sizeof(why)) == -1) {
		snprintf(err, errlen, "[ledger] dsn_file %s", why);
		return NULL;
	}
	l = ledger_open_pg(dsn, conf->ledger_member, err, errlen);
	explicit_bzero(dsn, sizeof(dsn));
	if (l == NULL)
		return NULL;
	if (poolfiles_read_key(conf->ledger_pool_key, key, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "[ledger] pool_key %s", why);
		ledger_close(l);
		return NULL;
	}
	if (poolkey_check(l, key, err, errlen) == -1) {
		ledger_close(l);
		l = NULL;
	}
	explicit_bzero(key, sizeof(key));
	return l;
}

/*
 * --migrate-ledger: a single proxy's ledger.db into the pool conf names (its
 * PostgreSQL ledger, its key proved). The source is opened and checked first:
 * a stopped daemon's file, whole, of this schema. 0, or 1 with nothing copied.
 */
static int
carotated_migrate(const char *path, const struct config *conf, const char *from)
{
	struct ledger_audit rec = { .time = time(NULL), .uid = getuid(), .pid = getpid() };
	struct ledger *src, *pool;
	struct ledger_migration m;
	struct passwd *pw;
	char err[1024];
	int r;

	if (conf->ledger_backend != CONFIG_LEDGER_POSTGRESQL) {
		fprintf(stderr,
		    "carotated: %s: [ledger] backend is sqlite: --migrate-ledger copies into a "
		    "pool, whose members have backend = postgresql\n",
		    path);
		return 1;
	}
	if ((src = ledger_open_source(from, err, sizeof(err))) == NULL) {
		fprintf(stderr, "carotated: %s\n", err);
		return 1;
	}
	if ((pool = carotated_ledger_open(conf, err, sizeof(err))) == NULL) {
		fprintf(stderr, "carotated: %s\n", err);
		ledger_close(src);
		return 1;
	}
	if ((pw = getpwuid(rec.uid)) != NULL)
		snprintf(rec.user, sizeof(rec.user), "%s", pw->pw_name);
	snprintf(rec.detail, sizeof(rec.detail), "member=%s", conf->ledger_member);
	/* The member's sets, unchanged: its next start finds nothing to adopt. */
	audit_fingerprint(conf, rec.before, sizeof(rec.before));
	memcpy(rec.after, rec.before, sizeof(rec.after));
	if ((r = ledger_migrate(pool, src, from, &rec, &m, err, sizeof(err))) == -1)
		fprintf(stderr, "carotated: %s\n", err);
	else
		carotated_migrate_print(&m, from);
	ledger_close(pool);
	ledger_close(src);
	return r == 0 ? 0 : 1;
}

/* What was copied, what was left and what is never copied (carotated(8) MIGRATION). */
static void
carotated_migrate_print(const struct ledger_migration *m, const char *from)
{
	size_t i;

	printf("agents: %llu copied, %llu already in the pool, %llu conflicts",
	    (unsigned long long)m->agents_copied, (unsigned long long)m->agents_present,
	    (unsigned long long)m->agents_conflicts);
	for (i = 0; i < m->named; i++)
		printf("%s%s", i == 0 ? " (another token in the pool: " : ", ", m->conflicts[i]);
	if (m->named > 0)
		printf("%s)", m->agents_conflicts > m->named ? ", ..." : "");
	printf("\njoin tokens: %llu copied, %llu already in the pool, %llu conflicts\n",
	    (unsigned long long)m->joins_copied, (unsigned long long)m->joins_present,
	    (unsigned long long)m->joins_conflicts);
	printf("audit: source chain of %llu records verified, head %s, recorded as pool record "
	       "#%llu\n",
	    (unsigned long long)m->source_records, m->source_head,
	    (unsigned long long)m->pool_record);
	printf("not copied: acknowledgements and verifications (each agent acknowledges again at "
	       "its next check-ins), the bundles delivered and held (each agent is sent the "
	       "pool's bundle once), and the audit records (their chain stays in %s)\n",
	    from);
	if (m->agents_conflicts > 0)
		printf("conflicts: those agents keep the pool's token; an agent whose token is in "
		       "%s only gets 401 and must link again (or be forgotten in the pool first)\n",
		    from);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "check-config", no_argument, NULL, 'C' },
		{ "init", no_argument, NULL, 'I' },
		{ "migrate-ledger", required_argument, NULL, 'M' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
	struct event *sigev[sizeof(sigs) / sizeof(sigs[0])];
	struct carotated cd = { .conf_path = CONFIG_DEFAULT_PATH };
	int ch, debug = 0, check = 0, init = 0, fd, recovered;
	const char *migrate = NULL;
	char err[1024];
	size_t i;

	/* The agent worker is this binary re-executed: a clean image, none of our memory. */
	if (argc > 1 && strcmp(argv[1], "--worker") == 0)
		return worker_main(argc, argv);
	carotated_stdio();

	while ((ch = getopt_long(argc, argv, "c:dfhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			cd.conf_path = optarg;
			break;
		case 'd':
			debug = 1;
			break;
		case 'f':
			cd.foreground = 1;
			break;
		case 'C':
			check = 1;
			break;
		case 'I':
			init = 1;
			break;
		case 'M':
			migrate = optarg;
			break;
		case 'V':
			printf("carotated %s\n", CAROTATE_VERSION);
			return 0;
		case 'h':
			carotated_usage(stdout, 0);
		default:
			carotated_usage(stderr, 1);
		}
	}
	if (optind != argc || check + init + (migrate != NULL) > 1)
		carotated_usage(stderr, 1);

	log_init(1, debug, "carotated");
	notify_init();
	if ((cd.conf = config_load(cd.conf_path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "carotated: %s\n", err);
		return 1;
	}
	if (check) {
		printf("%s: syntax OK\n", cd.conf_path);
		ch = carotated_check_config(cd.conf_path, cd.conf);
		if (ch == 0)
			printf("%s: configuration OK\n", cd.conf_path);
		else
			fprintf(stderr, "carotated: %s: %d problem%s: carotated would not start\n",
			    cd.conf_path, ch, ch == 1 ? "" : "s");
		config_free(cd.conf);
		return ch == 0 ? 0 : 1;
	}
	if (init) {
		ch = carotated_init(cd.conf);
		config_free(cd.conf);
		return ch;
	}
	if (migrate != NULL) {
		ch = carotated_migrate(cd.conf_path, cd.conf, migrate);
		config_free(cd.conf);
		return ch;
	}
	cd.privileged = geteuid() == 0;
	if (pki_init() == -1)
		fatalx("cannot initialise OpenSSL");
	signal(SIGPIPE, SIG_IGN);
	carotated_nofile();
	/* A worker user that is root or missing would be restarted for ever: refused now. */
	if (cd.privileged && supervise_check_user(cd.conf->agents_user, err, sizeof(err)) == -1)
		fatalx("%s", err);
	if (dirs_check(cd.conf, err, sizeof(err)) == -1 ||
	    dirs_check_writable(cd.conf, err, sizeof(err)) == -1)
		fatalx("%s", err);
	dirs_clean_state(cd.conf);
	if ((recovered = carotated_recover(&cd, err, sizeof(err))) == -1 ||
	    (fd = control_bind(cd.conf, cd.privileged, err, sizeof(err))) == -1)
		fatalx("%s", err);
	if (supervise_bind(cd.conf, cd.privileged, err, sizeof(err)) == -1)
		fatalx("%s", err);
	carotated_adopt(&cd, recovered);
	/* Opened here first, so that a broken ledger is reported on the operator's terminal. */
	if ((cd.ledger = carotated_ledger_open(cd.conf, err, sizeof(err))) == NULL ||
	    agents_init(&cd, err, sizeof(err)) == -1)
		fatalx("%s", err);
	if (!cd.foreground) {
		/* A database connection must not cross fork(): the child opens its own. */
		agents_stop(&cd);
		ledger_close(cd.ledger);
		if (daemon(0, 0) == -1)
			fatal("daemon");
		log_init(0, debug, "carotated");
		if ((cd.ledger = carotated_ledger_open(cd.conf, err, sizeof(err))) == NULL ||
		    agents_init(&cd, err, sizeof(err)) == -1)
			fatalx("%s", err);
	}
	/* A rotate cut short by a stop is finished below, and audited as itself: no adopt. */
	cd.resuming = carotated_unfinished(&cd);
	/* A generate, install or discard cut short is credited to its caller: no adopt. */
	rpc_stage_resume(&cd);
	/* A pool member takes the pool's sets before its proxy starts (and before adopt looks). */
	rpc_pool_init(&cd);
	/* Logging goes where it will stay: the audit records held since start-up go now. */
	audit_start(&cd);
	clock_gettime(CLOCK_MONOTONIC, &cd.started);
	if ((cd.base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if ((sigev[i] = evsignal_new(cd.base, sigs[i], carotated_signal, &cd)) == NULL ||
		    evsignal_add(sigev[i], NULL) == -1)
			fatalx("cannot handle signal %d", sigs[i]);
	cd.watch = watch_new();
	carotated_watch(&cd);
	cd.control = control_start(&cd, fd);
	agents_start(&cd);
	member_start(&cd);
	pool_run(&cd);
	if (cd.resuming && rpc_rotate_resume(&cd) != 1) {
		cd.resuming = 0;
		audit_adopt(&cd);
	}
	/* Sockets bound and chowned, ledger open, worker started: keep only what is needed. */
	if (cd.privileged && privs_drop_parent(err, sizeof(err)) == -1)
		fatalx("%s", err);
	if (cd.privileged)
		log_info("capabilities: %s; ambient set cleared; no_new_privs", privs_kept());
	log_info("carotated %s started (pid %ld, %s)", CAROTATE_VERSION, (long)getpid(),
	    cd.privileged ? "privileged" : "unprivileged: no user or capability changes");
	/* Recovery is done and every socket listens: the proxy may start now. */
	notify_send("READY=1");

	event_base_dispatch(cd.base);

	job_kill_all();
	proxy_abandon_all();
	rpc_rotate_abandon();
	rpc_stage_abandon();
	rpc_audit_abandon();
	audit_flush(); /* refusals still counted: none may be lost */
	pool_stop(&cd);
	member_stop(&cd);
	agents_stop(&cd);
	ledger_close(cd.ledger);
	control_free(cd.control);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		event_free(sigev[i]);
	if (cd.stop_ev != NULL)
		event_free(cd.stop_ev);
	event_base_free(cd.base);
	watch_free(cd.watch);
	config_free(cd.conf);
	log_info("stopped");
	return 0;
}
