#!/usr/bin/python3
"""A carotate client written only from proto/carotate.proto, with Python's protobuf.

usage: pyclient.py GENDIR SOCKET [--expect-phase steady|staged] [--expect-ca-sha256 HEX]
                                 [--expect-pid PID] [--pipeline N]

GENDIR holds carotate_pb2.py (protoc --python_out=GENDIR -I proto proto/carotate.proto).
Sends Request{version: 1, status: StatusRequest{}}, checks the Response, prints a summary.
Exit 0 when every expectation holds, 1 otherwise.
"""

import argparse
import socket
import struct
import sys


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("daemon closed the connection after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gendir")
    ap.add_argument("socket")
    ap.add_argument("--expect-phase")
    ap.add_argument("--expect-ca-sha256")
    ap.add_argument("--expect-pid", type=int)
    ap.add_argument("--pipeline", type=int, default=1,
                    help="send this many requests in one write before reading")
    args = ap.parse_args()

    sys.path.insert(0, args.gendir)
    import carotate_pb2 as pb  # noqa: E402  (generated at test time)

    req = pb.Request(version=1, status=pb.StatusRequest())
    assert req.WhichOneof("call") == "status"
    body = req.SerializeToString()
    data = struct.pack(">I", len(body)) + body

    problems = []
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(args.socket)
    s.sendall(data * args.pipeline)
    replies = []
    for _ in range(args.pipeline):
        (n,) = struct.unpack(">I", recv_exact(s, 4))
        if n > 4 * 1024 * 1024:
            problems.append("reply announces %d bytes, more than 4 MiB" % n)
            break
        resp = pb.Response()
        resp.ParseFromString(recv_exact(s, n))
        replies.append(resp)
    s.close()

    for i, resp in enumerate(replies):
        if resp.status != pb.OK:
            problems.append("reply %d: status %s (%r)" % (i, pb.Status.Name(resp.status),
                                                          resp.message))
        elif resp.WhichOneof("result") != "status_reply":
            problems.append("reply %d: result is %r, not status_reply" % (i, resp.WhichOneof("result")))

    if replies and not problems:
        r = replies[0].status_reply
        phase = {pb.PHASE_STEADY: "steady", pb.PHASE_STAGED: "staged"}.get(r.phase, str(r.phase))
        print("status: OK, %d repl%s" % (len(replies), "y" if len(replies) == 1 else "ies"))
        print("version: %s  pid: %d  uptime: %d s  phase: %s  ssl_dir: %s"
              % (r.version, r.pid, r.uptime_seconds, phase, r.ssl_dir))
        if r.HasField("active"):
            print("active ca: %s %s" % (r.active.ca.subject, r.active.ca.sha256))
            print("active server: %s %s sans=%s days_left=%d key_present=%s"
                  % (r.active.server.subject, r.active.server.sha256, list(r.active.server.sans),
                     r.active.server_days_left, r.active.key_present))
        else:
            print("active: none")
        if r.HasField("bundle"):
            print("bundle: %s cas=%s" % (r.bundle.id, list(r.bundle.cas)))
        if not r.version:
            problems.append("status_reply.version is empty")
        if args.expect_phase and phase != args.expect_phase:
            problems.append("phase: expected %s, got %s" % (args.expect_phase, phase))
        if args.expect_pid is not None and r.pid != args.expect_pid:
            problems.append("pid: expected %d, got %d" % (args.expect_pid, r.pid))
        if args.expect_ca_sha256:
            got = r.active.ca.sha256 if r.HasField("active") and r.active.HasField("ca") else None
            if got != args.expect_ca_sha256:
                problems.append("active.ca.sha256: expected %s, got %s" % (args.expect_ca_sha256, got))
            if not r.HasField("bundle") or list(r.bundle.cas) != [args.expect_ca_sha256]:
                problems.append("bundle.cas: expected [%s], got %s"
                                % (args.expect_ca_sha256,
                                   list(r.bundle.cas) if r.HasField("bundle") else None))
        for i, other in enumerate(replies[1:], 1):
            if other.status_reply.active.ca.sha256 != r.active.ca.sha256:
                problems.append("reply %d disagrees with reply 0 on active.ca.sha256" % i)

    for p in problems:
        print("pyclient: FAIL: %s" % p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
