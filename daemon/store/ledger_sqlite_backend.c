/*
 * The SQLite engine's table, through which ledger.c calls it. A file of its
 * own: it refers to every part of the engine, and none of them to it, so the
 * parts keep depending one way (ledger_sqlite_agents.c and
 * ledger_sqlite_audit.c on ledger_sqlite.c, never back).
 */
#include "ledger.h"
#include "ledger_backend.h"
#include "ledger_sqlite.h"

const struct ledger_backend ledger_sqlite_backend = {
	.name = "sqlite",
	.close = ledger_sqlite_close,
	.quick_check = ledger_sqlite_quick_check,
	.set_target = ledger_sqlite_set_target,
	.begin = ledger_sqlite_begin,
	.commit = ledger_sqlite_commit,
	.rollback = ledger_sqlite_rollback,
	.in_batch = ledger_sqlite_in_batch,
	.link = ledger_sqlite_link,
	.link_join = ledger_sqlite_link_join,
	.join_check = ledger_sqlite_join_check,
	.renew = ledger_sqlite_renew,
	.total = ledger_sqlite_total,
	.forget = ledger_sqlite_forget,
	.forget_unconfirmed = ledger_sqlite_forget_unconfirmed,
	.join_create = ledger_sqlite_join_create,
	.join_revoke = ledger_sqlite_join_revoke,
	.join_list = ledger_sqlite_join_list,
	.checkin = ledger_sqlite_checkin,
	.exclude = ledger_sqlite_exclude,
	.include = ledger_sqlite_include,
	.get = ledger_sqlite_get,
	.count = ledger_sqlite_count,
	.pending = ledger_sqlite_pending,
	.holdings = ledger_sqlite_holdings,
	.audit_append = ledger_sqlite_audit_append,
	.audit_list = ledger_sqlite_audit_list,
	.audit_last = ledger_sqlite_audit_last,
	.audit_count = ledger_sqlite_audit_count,
	.audit_verify_step = ledger_sqlite_audit_verify_step,
	.export_walk = ledger_sqlite_export_walk,
};
