#!/usr/bin/python3
# -*- coding: utf-8 -*-
# carotate: an Ansible module that drives carotatectl --json.
# Python 3, the standard library and AnsibleModule only.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: carotate
short_description: Rotate the CA of an nginx TLS proxy with carotated
description:
  - Drives C(carotatectl --json) against the carotated daemon of the target
    host, one stage of a CA rotation per task.
  - C(staged) stages a new set beside the active one (C(carotatectl generate),
    or C(install) of your own files); C(reported) returns how many active
    agents acknowledged it and fails below a threshold; C(rotated) puts it
    live through the daemon's gate; C(restored) puts a backup back.
  - C(renewed) replaces the server certificate under the same CA
    (C(carotatectl renew)); C(checked) runs C(carotatectl check) and fails
    when it is CRITICAL or UNKNOWN.
  - Idempotent, and supports check mode (C(rotate --dry-run),
    C(restore --dry-run) and C(renew --dry-run) then run the daemon's own
    checks).
  - Admin calls (generate, install, rotate, restore, renew) need root or a
    member of C(carotate-admin); C(reported), C(checked) and the checks need
    C(carotate) only.
version_added: "0.1.0"
author: carotate
options:
  state:
    description:
      - C(staged) - a set is staged. Nothing is done when one already is
        (with C(ca), the staged CA and server certificate must be those files',
        else the task fails).
        Otherwise C(generate) (options C(key_type), C(ca_days),
        C(server_days), C(name), C(sans)) or, when C(ca), C(cert) and C(key)
        are given, C(install). With C(ca), nothing is done either when that
        set (CA and server certificate) is the active one, already rotated.
      - C(reported) - runs C(report); never changes anything; fails when the
        percentage of active agents that acknowledged the staged CA (with
        C(verified), that verified it) is below C(min_percent). With no
        active agent the percentage is 0.
      - C(rotated) - nothing is staged (already rotated); else C(rotate).
        Fails when the gate refuses (with its figures and the pending
        agents) or when the proxy did not serve the new certificate and the
        daemon rolled back (C(rolled_back=true)).
      - C(restored) - the active server certificate is the one of the
        backup C(backup) (or C(latest)); else C(restore).
      - C(renewed) - runs C(renew) (options C(if_expires_within),
        C(server_days), or C(cert), C(key) and C(chain) for a custom set).
        Changed only when a new server certificate went live; not changed
        when C(if_expires_within) found it not due. Fails when the daemon
        refused or rolled back (C(rolled_back=true); the previous
        certificate is live, so nothing changed).
      - C(checked) - runs C(check); never changes anything. Returns its JSON
        as C(check); a WARNING succeeds with a warning, a CRITICAL or an
        UNKNOWN fails.
    type: str
    required: true
    choices: [staged, reported, rotated, restored, renewed, checked]
  carotatectl:
    description: The carotatectl program, a path or a name looked up on PATH.
    type: path
    default: carotatectl
  socket:
    description: carotated's control socket (C(--socket)); default carotatectl's own
      (C($CAROTATE_SOCKET), else C(/run/carotate/carotated.sock)).
    type: path
  timeout:
    description: carotatectl's C(--timeout) for each call, seconds or with an
      C(s) or C(m) suffix; 0 waits forever. Default carotatectl's own per command.
    type: raw
  key_type:
    description: C(staged), generate - the key type.
    type: str
    choices: [ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096]
  ca_days:
    description: C(staged), generate - CA validity in days (1 to 36500).
    type: int
  server_days:
    description: C(staged), generate, and C(renewed) - server certificate validity
      in days (1 to 36500).
    type: int
  name:
    description: C(staged), generate - the CA subject's prefix ("CN=NAME CA YYYY-MM-DD").
    type: str
  sans:
    description: C(staged), generate - subject alternative names of the server
      certificate, each C(DNS:name) or C(IP:address).
    type: list
    elements: str
  ca:
    description: C(staged), install - the CA certificate file (PEM) on the target.
    type: path
  cert:
    description: C(staged), install, and C(renewed) of a custom set - the server
      certificate file (PEM), leaf first.
    type: path
  key:
    description: C(staged), install, and C(renewed) of a custom set - the server
      key file (PEM, unencrypted). The file is read by carotatectl and never logged.
    type: path
  chain:
    description: C(staged), install, and C(renewed) of a custom set -
      intermediate certificates (PEM), optional.
    type: path
  if_expires_within:
    description: C(renewed) - renew only when the server certificate expires
      within this duration (digits with an optional s, m, h or d suffix, such
      as C(30d)); else nothing changes.
    type: raw
  active_within:
    description: C(reported) - count agents seen within this duration as
      active (digits with an optional s, m, h or d suffix).
    type: raw
  min_percent:
    description: C(reported) - fail below this percentage (0 to 100).
    type: int
    default: 0
  verified:
    description: C(reported) - compare C(percent_verified) (agents that proved the
      new CA through the canary listener) instead of C(percent).
    type: bool
    default: false
  require_staged:
    description: C(rotated) - fail when nothing is staged instead of reporting
      nothing to do.
    type: bool
    default: false
  force:
    description: C(rotated) - override the gate; needs C(reason).
    type: bool
    default: false
  reason:
    description: C(rotated) - why (1 to 256 printable ASCII characters); kept in
      the backup's manifest and the audit log.
    type: str
  backup:
    description: C(restored) - the backup's id, C(certs-YYYYMMDD-HHMMSS) or
      C(certs-YYYYMMDD-HHMMSS-N) (see C(carotatectl backups)).
    type: str
  latest:
    description:
      - C(restored) - the newest backup made by a rotation (or by hand), that is
        the set the last rotation replaced.
      - Backups that a restore makes of the set it replaces are skipped, so
        that running the task again does not swing back and forth (unlike
        C(carotatectl restore --latest), which takes them). Name such a backup
        with C(backup) to go back to it.
      - Backups labelled C(rollback) (the set a rotate or restore put live,
        which failed its TLS check and was rolled back) are skipped, as by
        C(carotatectl restore --latest).
    type: bool
    default: false
notes:
  - Check mode - C(staged) reports what it would do without generating;
    C(rotated) runs C(rotate --dry-run) (the gate) and fails when the gate
    refuses; C(restored) runs C(restore --dry-run) (the backup's checks);
    C(renewed) runs C(renew --dry-run) (the leaf that would be made, or the
    custom one checked); C(checked) runs as without it.
"""

EXAMPLES = r"""
- name: Stage a new CA
  carotate:
    state: staged
    key_type: ec-p256

- name: Wait until every active agent holds the new CA
  carotate:
    state: reported
    min_percent: 100
  register: report
  retries: 60
  delay: 60
  until: report is succeeded

- name: Rotate
  carotate:
    state: rotated
    require_staged: true

- name: Roll back to the set the last rotation replaced
  carotate:
    state: restored
    latest: true

- name: Renew the server certificate when it expires within 30 days
  carotate:
    state: renewed
    if_expires_within: 30d

- name: Fail when the proxy's certificates are in a critical state
  carotate:
    state: checked
"""

RETURN = r"""
phase:
  description: The daemon's phase after the task, C(steady) or C(staged).
  returned: when the daemon answered status
  type: str
result:
  description: The parsed JSON carotatectl printed for the task's main call
    (status when there was nothing to do).
  returned: always, null when no call was made or it printed nothing
  type: dict
rc:
  description: carotatectl's exit code (0 done, 1 usage, 2 unreachable,
    3 precondition, 4 permission denied, 5 invalid input, 6 internal or rolled back).
  returned: when carotatectl ran
  type: int
status:
  description: The error status carotatectl reported (C(failed_precondition), ...).
  returned: on failure
  type: str
staged:
  description: The staged set (C(ca), C(server), ...).
  returned: state=staged
  type: dict
bundle:
  description: The trust bundle served to agents (C(id), C(cas), C(members)).
  returned: state=staged, rotated, restored
  type: dict
report:
  description: The report (C(active), C(acknowledged), C(verified), C(percent), ...).
  returned: state=reported
  type: dict
percent:
  description: The percentage compared with C(min_percent).
  returned: state=reported
  type: int
backup:
  description: rotated - the backup of the replaced set; restored - the backup restored from.
  returned: state=rotated, restored
  type: str
rolled_back:
  description: The proxy did not serve the new certificate and the previous set is live again.
  returned: state=rotated, restored
  type: bool
gate:
  description: The gate's figures when it refused - C(active), C(confirmed), C(pending_agents).
  returned: when the gate refused
  type: dict
not_due:
  description: C(if_expires_within) found the server certificate not due; nothing
    changed. (Not C(skipped), which Ansible reads as a skipped task.)
  returned: state=renewed
  type: bool
server:
  description: The server certificate live after the task (or, in check mode,
    the one that would be), as C(sha256), C(not_after), ...
  returned: state=renewed
  type: dict
check:
  description: The JSON of C(carotatectl check) (C(state), C(exit_code),
    C(summary), C(findings), C(perfdata), C(thresholds)).
  returned: state=checked
  type: dict
"""

import base64
import hashlib
import json
import os
import re

from ansible.module_utils.basic import AnsibleModule

STATES = ["staged", "reported", "rotated", "restored", "renewed", "checked"]
KEY_TYPES = ["ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096"]
GENERATE_OPTS = ["key_type", "ca_days", "server_days", "name", "sans"]
INSTALL_OPTS = ["ca", "cert", "key", "chain"]
# Not used by renew: it keeps the CA, the key type and the names ([proxy] names).
NOT_RENEW_OPTS = ["ca", "key_type", "ca_days", "name", "sans"]
BACKUP_ID = re.compile(r"certs-[0-9]{8}-[0-9]{6}(-[1-9][0-9]{0,2})?", re.ASCII)
TIMEOUT = re.compile(r"[0-9]+[sm]?", re.ASCII)
DURATION = re.compile(r"[0-9]+[smhd]?", re.ASCII)
MAX_DAYS = 36500
MAX_REASON = 256
BACKUPS_PAGE = 1000
# The exit codes of carotatectl (carotatectl(1) EXIT STATUS).
EXIT_PRECONDITION = 3
EXIT_INTERNAL = 6
# carotatectl check's exit codes: the monitoring-plugin convention.
CHECK_STATES = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}


class Carotate(object):
    """One task: the module, carotatectl's argv prefix, and what goes into the result."""

    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.out = {"changed": False, "phase": None, "result": None}
        self.ctl = self._find_ctl()

    # ------------------------------------------------------------ results

    def fail(self, msg, status=None, **extra):
        self.out.update(extra)
        if status is not None:
            self.out["status"] = status
        self.module.fail_json(msg=msg, **self.out)

    def done(self, msg, changed, **extra):
        self.out.update(extra)
        self.out["changed"] = changed
        self.module.exit_json(msg=msg, **self.out)

    # ------------------------------------------------------------ carotatectl

    def _find_ctl(self):
        ctl = self.p["carotatectl"]
        if "/" in ctl:
            if not (os.path.isfile(ctl) and os.access(ctl, os.X_OK)):
                self.module.fail_json(msg="carotatectl: %s is not an executable file" % ctl,
                                      **self.out)
            return ctl
        return self.module.get_bin_path(ctl, required=True)

    def run(self, *args):
        """carotatectl --json [--socket S] [--timeout T] ARGS: (rc, parsed JSON or None, stderr)."""
        argv = [self.ctl, "--json"]
        if self.p["socket"]:
            argv += ["--socket", self.p["socket"]]
        if self.p["timeout"] is not None:
            argv += ["--timeout", str(self.p["timeout"])]
        argv += list(args)
        rc, stdout, stderr = self.module.run_command(argv, check_rc=False)
        doc = None
        if stdout.strip():
            try:
                doc = json.loads(stdout)
            except ValueError:
                self.out["rc"] = rc
                self.fail("carotatectl %s printed something that is not JSON: %s"
                          % (args[0], stdout.strip()[:500]), status="internal",
                          stderr=stderr)
        if not isinstance(doc, dict):
            doc = None
        return rc, doc, stderr.strip()

    @staticmethod
    def error_of(rc, doc, stderr):
        """(status, message) of a failed call: the JSON error, else stderr."""
        err = doc.get("error") if doc else None
        if isinstance(err, dict):
            return err.get("status") or "unknown", err.get("message") or stderr
        if rc == 1:
            status = "usage"
        elif rc == 2:
            status = "unavailable"
        else:
            status = "unknown"
        lines = [ln for ln in stderr.splitlines() if ln.strip()]
        msg = lines[0] if lines else "carotatectl exited with status %d" % rc
        if msg.startswith("carotatectl: "):
            msg = msg[len("carotatectl: "):]
        return status, msg

    def call(self, what, *args):
        """A call that must succeed: its JSON (kept as result), or the task fails."""
        rc, doc, stderr = self.run(*args)
        self.out["rc"] = rc
        self.out["result"] = doc
        if rc != 0:
            status, msg = self.error_of(rc, doc, stderr)
            self.fail("%s failed: %s" % (what, msg), status=status, stderr=stderr)
        if doc is None:
            self.fail("%s: carotatectl printed no JSON" % what, status="internal",
                      stderr=stderr)
        return doc

    def status(self):
        """carotatectl status: sets phase; the call's JSON."""
        rc, doc, stderr = self.run("status")
        if rc != 0 or doc is None:
            self.out["rc"] = rc
            self.out["result"] = doc
            status, msg = self.error_of(rc, doc, stderr)
            self.fail("status failed: %s" % msg, status=status, stderr=stderr)
        self.out["phase"] = doc.get("phase")
        return doc

    def refresh_phase(self):
        """After a change (or a failed one): the phase now, best effort."""
        rc, doc, _ = self.run("status")
        if rc == 0 and doc is not None:
            self.out["phase"] = doc.get("phase")
            return doc
        return None

    # ------------------------------------------------------------ input checks

    def validate(self):
        p = self.p
        t = p["timeout"]
        if t is not None and not TIMEOUT.fullmatch(str(t)):
            self.fail("timeout: %r is not a duration (seconds, or digits with an s or m suffix)"
                      % (t,), status="invalid_argument")
        for opt in ("active_within", "if_expires_within"):
            a = p[opt]
            if a is not None and not DURATION.fullmatch(str(a)):
                self.fail("%s: %r is not a duration (digits with an optional s, m, h or d "
                          "suffix)" % (opt, a), status="invalid_argument")
        self.validate_files()
        if not 0 <= p["min_percent"] <= 100:
            self.fail("min_percent: %d is not a percentage from 0 to 100" % p["min_percent"],
                      status="invalid_argument")
        for opt in ("ca_days", "server_days"):
            if p[opt] is not None and not 1 <= p[opt] <= MAX_DAYS:
                self.fail("%s: %d is not a number of days from 1 to %d"
                          % (opt, p[opt], MAX_DAYS), status="invalid_argument")
        if p["name"] is not None and p["name"] == "":
            self.fail("name: empty prefix", status="invalid_argument")
        for san in p["sans"] or []:
            if not re.fullmatch(r"(DNS|IP):.+", san, re.S):
                self.fail("sans: %r is not DNS:NAME or IP:ADDRESS" % (san,),
                          status="invalid_argument")
        if p["force"] and p["reason"] is None:
            self.fail("force needs a reason: say why the gate is overridden (reason=...)",
                      status="usage")
        if p["reason"] is not None:
            r = p["reason"]
            if not 1 <= len(r) <= MAX_REASON:
                self.fail("reason: expected 1 to %d characters (got %d)" % (MAX_REASON, len(r)),
                          status="invalid_argument")
            for i, ch in enumerate(r):
                if not " " <= ch <= "~":
                    self.fail("reason: character %r at offset %d is not printable ASCII"
                              % (ch, i), status="invalid_argument")
        b = p["backup"]
        if b is not None and not BACKUP_ID.fullmatch(b):
            self.fail("backup: %r is not a backup id: expected certs-YYYYMMDD-HHMMSS or "
                      "certs-YYYYMMDD-HHMMSS-N (carotatectl backups lists them)" % (b,),
                      status="invalid_argument")

    def validate_files(self):
        """Which of the generate and install options go together, by state."""
        p = self.p

        def given(opts):
            return [o for o in opts if p[o] is not None]

        if p["state"] == "renewed":
            bad = given(NOT_RENEW_OPTS)
            if bad:
                self.fail("%s: not used by state=renewed (renew keeps the CA, the key type "
                          "and the names)" % ", ".join(bad), status="usage")
            if (p["cert"] is None) != (p["key"] is None):
                self.fail("parameters are required together: cert, key", status="usage")
            if p["chain"] is not None and p["cert"] is None:
                self.fail("chain needs cert and key", status="usage")
            if p["server_days"] is not None and p["cert"] is not None:
                self.fail("parameters are mutually exclusive: server_days|cert (server_days "
                          "makes a certificate; cert brings one)", status="usage")
            return
        gen, inst = given(GENERATE_OPTS), given(INSTALL_OPTS)
        if gen and inst:
            self.fail("parameters are mutually exclusive: %s|%s" % (gen[0], inst[0]),
                      status="usage")
        if inst and len(given(["ca", "cert", "key"])) != 3:
            self.fail("parameters are required together: ca, cert, key", status="usage")
        if p["if_expires_within"] is not None:
            self.fail("if_expires_within: only for state=renewed", status="usage")

    # ------------------------------------------------------------ staged

    @staticmethod
    def pem_sha256(path):
        """SHA-256 (lower-case hex) of the DER of the first certificate in a PEM file."""
        with open(path, "rb") as f:
            text = f.read(65537).decode("ascii", "replace")
        m = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", text, re.S)
        if m is None:
            return None
        try:
            der = base64.b64decode("".join(m.group(1).split()), validate=True)
        except ValueError:
            return None
        return hashlib.sha256(der).hexdigest()

    def is_active(self, st):
        """The install files' CA and server certificate are the active set's."""
        active = st.get("active") or {}
        for what, opt in (("ca", "ca"), ("server", "cert")):
            have = ((active.get(what) or {}).get("sha256") or "").lower()
            if not have or self.pem_sha256(self.p[opt]) != have:
                return False
        return True

    def staged(self):
        p = self.p
        st = self.status()
        install = p["ca"] is not None
        if install:
            for opt in INSTALL_OPTS:
                path = p[opt]
                if path is not None and not os.access(path, os.R_OK):
                    self.fail("%s: cannot read %s" % (opt, path), status="invalid_argument")
        if install and st.get("phase") != "staged" and self.is_active(st):
            # Run again after its rotation (a playbook run again): the set is live, and
            # installing it again would stage the active CA.
            self.out["result"] = st
            self.done("the set is already active: nothing to stage", False, staged=None,
                      bundle=st.get("bundle"))
        if st.get("phase") == "staged":
            staged = st.get("staged") or {}
            if install:
                # The CA and the leaf: a new leaf (and so a new key: the daemon refuses
                # a key that does not match its certificate) under the same CA is
                # another set, not the one already staged.
                for what, opt in (("ca", "ca"), ("server", "cert")):
                    want = self.pem_sha256(p[opt])
                    have = ((staged.get(what) or {}).get("sha256") or "").lower()
                    if want != have:
                        self.fail("another set is staged (%s sha256 %s, %s holds %s): discard "
                                  "it first (carotatectl discard)"
                                  % ("CA" if what == "ca" else "server certificate",
                                     have or "unknown", p[opt], want or "no certificate"),
                                  status="failed_precondition", staged=staged,
                                  bundle=st.get("bundle"))
            self.out["result"] = st
            self.done("a set is already staged", False, staged=staged, bundle=st.get("bundle"))
        what = "install" if install else "generate"
        if self.module.check_mode:
            self.done("would %s a new set (check mode)" % what, True, staged=None,
                      bundle=st.get("bundle"))
        if install:
            args = ["install", "--ca", p["ca"], "--cert", p["cert"], "--key", p["key"]]
            if p["chain"] is not None:
                args += ["--chain", p["chain"]]
        else:
            args = ["generate"]
            if p["key_type"] is not None:
                args += ["--key-type", p["key_type"]]
            if p["ca_days"] is not None:
                args += ["--ca-days", str(p["ca_days"])]
            if p["server_days"] is not None:
                args += ["--server-days", str(p["server_days"])]
            if p["name"] is not None:
                args += ["--name", p["name"]]
            for san in p["sans"] or []:
                args += ["--san", san]
        doc = self.call(what, *args)
        self.out["changed"] = True
        self.refresh_phase()
        warnings = doc.get("warnings") or []
        for w in warnings:
            self.module.warn(str(w))
        reload_ = doc.get("reload") or {}
        if reload_.get("ran") and not reload_.get("ok"):
            self.module.warn("the proxy's reload failed after staging (exit %s): %s"
                             % (reload_.get("exit_status"), reload_.get("output")))
        self.done("staged a new set (%s)" % what, True, staged=doc.get("staged"),
                  bundle=doc.get("bundle"))

    # ------------------------------------------------------------ reported

    def reported(self):
        p = self.p
        self.status()
        args = ["report"]
        if p["active_within"] is not None:
            args += ["--active-within", str(p["active_within"])]
        doc = self.call("report", *args)
        key = "percent_verified" if p["verified"] else "percent"
        what = "verified" if p["verified"] else "acknowledged"
        active = doc.get("active") or 0
        num = doc.get("verified" if p["verified"] else "acknowledged") or 0
        # As carotatectl wait: with no active agent the migration is at 0 %, not done.
        percent = (doc.get(key) or 0) if active else 0
        extra = dict(report=doc, percent=percent)
        if percent < p["min_percent"]:
            if not doc.get("staged_ca"):
                why = "nothing is staged"
            elif active == 0:
                why = "no active agent"
            else:
                why = "%d of %d active agents %s the staged CA" % (num, active, what)
            self.fail("%d %% of active agents %s the staged CA, below min_percent %d (%s)"
                      % (percent, what, p["min_percent"], why),
                      status="failed_precondition", **extra)
        if not doc.get("staged_ca"):
            self.done("nothing is staged (%d active agents)" % active, False, **extra)
        self.done("%d %% of active agents %s the staged CA (%d of %d)"
                  % (percent, what, num, active), False, **extra)

    # ------------------------------------------------------------ rotated / restored

    def swap_failed(self, what, rc, doc, stderr, changed_by_rollback=True):
        """A refused or rolled-back rotate, restore or renew: fail with its figures."""
        status, msg = self.error_of(rc, doc, stderr)
        extra = dict(stderr=stderr)
        if doc is not None:
            extra["rolled_back"] = bool(doc.get("rolled_back"))
            extra["bundle"] = doc.get("bundle")
            if doc.get("backup"):
                extra["backup"] = doc.get("backup")
            if doc.get("gate"):
                extra["gate"] = {k: doc.get(k) for k in ("gate", "active", "confirmed", "forced",
                                                         "pending_agents")}
        if extra.get("rolled_back"):
            # rotate, restore: the staged set moved into a backup of its own, something did
            # change. renew: the previous certificate is live again, nothing did.
            self.out["changed"] = changed_by_rollback
            self.refresh_phase()
            self.fail("%s rolled back: %s (served %s)"
                      % (what, msg, doc.get("served") or "nothing"), status=status, **extra)
        if rc == EXIT_PRECONDITION and "gate" in extra:
            g = extra["gate"]
            pending = [a.get("id") for a in g.get("pending_agents") or []
                       if isinstance(a, dict)]
            self.fail("%s refused by the gate: %s of %s active agents %s the staged CA%s: %s"
                      % (what, g.get("confirmed"), g.get("active"), g.get("gate"),
                         "; pending: " + ", ".join(pending) if pending else "", msg),
                      status=status, **extra)
        self.fail("%s failed: %s" % (what, msg), status=status, **extra)

    def swap(self, what, *args):
        """rotate or restore (check mode: --dry-run); the reply on success."""
        if self.module.check_mode:
            args = args + ("--dry-run",)
        rc, doc, stderr = self.run(what, *args)
        self.out["rc"] = rc
        self.out["result"] = doc
        if rc != 0:
            self.swap_failed(what, rc, doc, stderr)
        if doc is None:
            self.fail("%s: carotatectl printed no JSON" % what, status="internal",
                      stderr=stderr)
        if not self.module.check_mode:
            self.refresh_phase()
        return doc

    def rotated(self):
        p = self.p
        st = self.status()
        if st.get("phase") != "staged" or st.get("staged") is None:
            self.out["result"] = st
            if p["require_staged"]:
                self.fail("nothing is staged (require_staged): stage a set first",
                          status="failed_precondition")
            self.done("nothing is staged: already rotated, nothing to do", False)
        args = []
        if p["force"]:
            args += ["--force", "--reason", p["reason"]]
        elif p["reason"] is not None:
            args += ["--reason", p["reason"]]
        doc = self.swap("rotate", *args)
        self.done("would rotate (check mode: the gate passed)" if self.module.check_mode
                  else "rotated: the proxy serves the new certificate", True,
                  backup=doc.get("backup"), bundle=doc.get("bundle"),
                  rolled_back=bool(doc.get("rolled_back")))

    # ------------------------------------------------------------ renewed / checked

    def renewed(self):
        p = self.p
        self.status()
        if p["cert"] is not None:
            for opt in ("cert", "key", "chain"):
                if p[opt] is not None and not os.access(p[opt], os.R_OK):
                    self.fail("%s: cannot read %s" % (opt, p[opt]), status="invalid_argument")
        args = []
        if p["if_expires_within"] is not None:
            args += ["--if-expires-within", str(p["if_expires_within"])]
        if p["server_days"] is not None:
            args += ["--server-days", str(p["server_days"])]
        if p["cert"] is not None:
            args += ["--cert", p["cert"], "--key", p["key"]]
            if p["chain"] is not None:
                args += ["--chain", p["chain"]]
        if self.module.check_mode:
            args += ["--dry-run"]
        rc, doc, stderr = self.run("renew", *args)
        self.out["rc"] = rc
        self.out["result"] = doc
        if rc != 0:
            # A roll back put the previous certificate back: nothing went live.
            self.swap_failed("renew", rc, doc, stderr, changed_by_rollback=False)
        if doc is None:
            self.fail("renew: carotatectl printed no JSON", status="internal", stderr=stderr)
        before = ((doc.get("before") or {}).get("server")) or {}
        if doc.get("skipped"):
            self.done("not due: the server certificate does not expire within %s (not after %s)"
                      % (p["if_expires_within"], before.get("not_after") or "unknown"),
                      False, not_due=True, server=before, rolled_back=False)
        if self.module.check_mode:
            would = (doc.get("would_become_active") or {}).get("server") or {}
            self.done("would renew the server certificate (check mode)", True, not_due=False,
                      server=would, rolled_back=False)
        self.refresh_phase()
        after = (doc.get("after") or {}).get("server") or {}
        live = bool(doc.get("verified")) and not doc.get("rolled_back")
        self.done("renewed: the proxy serves the new server certificate" if live else
                  "renew reported success but no new certificate was verified", live,
                  not_due=False, server=after, backup=doc.get("backup"),
                  bundle=doc.get("bundle"), rolled_back=bool(doc.get("rolled_back")))

    def checked(self):
        rc, doc, stderr = self.run("check")
        self.out["result"] = doc
        if rc != 1:
            # Ansible takes a non-zero rc for a failed task: a WARNING (exit 1) succeeds, so
            # its code is only in check.exit_code.
            self.out["rc"] = rc
        state = CHECK_STATES.get(rc)
        if doc is None or state is None:
            self.fail("check failed (exit %d): %s" % (rc, stderr or "no JSON"),
                      status="unknown", stderr=stderr)
        summary = doc.get("summary") or ""
        if rc in (2, 3):
            self.fail("CAROTATE %s - %s" % (state, summary),
                      status="critical" if rc == 2 else "unknown", check=doc, stderr=stderr)
        if rc == 1:
            self.module.warn("CAROTATE WARNING - %s" % summary)
        self.done("CAROTATE %s - %s" % (state, summary), False, check=doc)

    # ------------------------------------------------------------ backups

    def backups(self):
        """Every backup, newest first (pages of BACKUPS_PAGE)."""
        out, offset = [], 0
        while True:
            doc = self.call("backups", "backups", "--limit", str(BACKUPS_PAGE),
                            "--offset", str(offset))
            page = doc.get("backups") or []
            out += page
            offset += len(page)
            if not page or offset >= (doc.get("total") or 0):
                return out

    def restored(self):
        p = self.p
        st = self.status()
        backups = self.backups()
        self.out["result"] = None
        if p["latest"]:
            # Not those a restore made of the set it replaced, nor those of a set that failed
            # its TLS check and was rolled back (reason "rollback"): see the option's
            # documentation.
            cands = [b for b in backups if str(b.get("id", "")).startswith("certs-")
                     and b.get("reason") not in ("restore", "rollback")]
            if not cands:
                self.fail("no backup made by a rotation or by hand (carotatectl backups lists "
                          "them)", status="not_found")
            b = cands[0]
        else:
            found = [b for b in backups if b.get("id") == p["backup"]]
            if not found:
                self.fail("no backup %s (carotatectl backups lists them)" % p["backup"],
                          status="not_found")
            b = found[0]
        bid = b["id"]
        active = st.get("active") or {}
        have = ((active.get("server") or {}).get("sha256") or "").lower()
        want = (b.get("server_sha256") or "").lower()
        if have and want and have == want:
            self.out["result"] = st
            self.done("the active set is already %s's" % bid, False, backup=bid,
                      rolled_back=False, bundle=st.get("bundle"))
        if not b.get("restorable"):
            self.fail("backup %s cannot be restored: %s" % (bid, b.get("problem") or "unknown"),
                      status="failed_precondition", backup=bid)
        doc = self.swap("restore", bid)
        self.done("would restore %s (check mode: the backup passed its checks)" % bid
                  if self.module.check_mode else
                  "restored %s: the proxy serves its certificate" % bid, True,
                  backup=bid, kept_as=doc.get("backup"), bundle=doc.get("bundle"),
                  rolled_back=bool(doc.get("rolled_back")))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", required=True, choices=STATES),
            carotatectl=dict(type="path", default="carotatectl"),
            socket=dict(type="path"),
            timeout=dict(type="raw"),
            key_type=dict(type="str", choices=KEY_TYPES),
            ca_days=dict(type="int"),
            server_days=dict(type="int"),
            name=dict(type="str"),
            sans=dict(type="list", elements="str"),
            ca=dict(type="path"),
            cert=dict(type="path"),
            key=dict(type="path", no_log=False),
            chain=dict(type="path"),
            active_within=dict(type="raw"),
            min_percent=dict(type="int", default=0),
            verified=dict(type="bool", default=False),
            require_staged=dict(type="bool", default=False),
            force=dict(type="bool", default=False),
            reason=dict(type="str"),
            backup=dict(type="str"),
            latest=dict(type="bool", default=False),
            if_expires_within=dict(type="raw"),
        ),
        # Which generate and install options go together depends on the state: renew takes
        # cert and key without ca (Carotate.validate_files).
        mutually_exclusive=[["backup", "latest"]],
        supports_check_mode=True,
    )
    # required_if cannot say it: latest is a boolean, never unset.
    if module.params["state"] == "restored" and not module.params["latest"] \
            and module.params["backup"] is None:
        module.fail_json(msg="state=restored needs backup=ID or latest=true")
    task = Carotate(module)
    task.validate()
    getattr(task, module.params["state"])()


if __name__ == "__main__":
    main()
