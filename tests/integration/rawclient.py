#!/usr/bin/python3
"""Speaks raw bytes to carotated's control socket, for tests (no generated code needed).

usage: rawclient.py SOCKET SCENARIO [ARGS...]

Each scenario prints what it saw and exits 0 when the daemon behaved as the contract says,
1 (with "rawclient: FAIL: ...") otherwise, 2 on a usage error. Scenarios:

  ping [MAX_MS]            status RPC on a fresh connection, timed (connect to reply)
  frame HEX STATUS [close] one framed body (hex, may be empty); expect a reply with STATUS
                           (a number); with "close", also expect the daemon to close
  bigframe LEN             a header announcing LEN bytes; expect INVALID_ARGUMENT, then close
  truncated-close          half a frame, then we close (the daemon must not care)
  truncated-open SECONDS   half a frame, kept open: the daemon closes after ~SECONDS
  random                   4 KiB of random bytes (seeded), header included
  random-body              a 4092-byte frame of random bytes
  slowdrip SECONDS         a status request, one byte a second; the daemon closes after ~SECONDS
  flood [PID [FAIR_MS]]    pipelines status requests and never reads; the daemon must drop us
                           (with FAIR_MS: others are served within FAIR_MS meanwhile)
  maxclients MAX N         opens N connections; N-MAX get UNAVAILABLE, MAX are served
  capframe                 a status request padded (unknown field) to exactly 256 KiB: OK
  idle SECONDS             one request, then silence: the daemon closes after ~SECONDS
  pipeline N               N status requests in one write; N OK replies in order
  hold N SECONDS           opens N connections one after the other, a status request on
                           each; prints "served=S refused=R" and each refusal, then keeps
                           the served ones open for SECONDS (or until killed)
  repeat HEX STATUS N      N requests of one body (hex) on one connection, one at a time;
                           each must get a reply with STATUS
"""

import inspect
import random
import select
import socket
import struct
import sys
import time

OK, INVALID_ARGUMENT, PERMISSION_DENIED, UNAVAILABLE = 0, 1, 2, 7
STATUS_NAMES = {0: "OK", 1: "INVALID_ARGUMENT", 2: "PERMISSION_DENIED", 3: "FAILED_PRECONDITION",
                4: "NOT_FOUND", 5: "ALREADY_EXISTS", 6: "INTERNAL", 7: "UNAVAILABLE"}
MAX_REQUEST = 256 * 1024
STATUS_REQUEST = bytes.fromhex("08015200")  # Request{version: 1, status: StatusRequest{}}


class Fail(Exception):
    pass


def frame(body):
    return struct.pack(">I", len(body)) + body


# ---------------------------------------------------------------- minimal protobuf decoding

def read_varint(buf, i):
    shift = value = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError("bad varint")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def decode_fields(buf):
    """{field number: [values]}; varints as int, length-delimited as bytes."""
    fields, i = {}, 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(buf, i)
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 2:
            n, i = read_varint(buf, i)
            if i + n > len(buf):
                raise ValueError("truncated field %d" % num)
            v, i = buf[i:i + n], i + n
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wt)
        fields.setdefault(num, []).append(v)
    return fields


class Reply:
    def __init__(self, body):
        f = decode_fields(body)
        self.status = f.get(1, [0])[-1]
        self.message = f.get(2, [b""])[-1].decode("utf-8", "replace")
        self.status_reply = decode_fields(f[10][-1]) if 10 in f else None
        self.size = len(body)

    def __str__(self):
        s = "%s (%d) %r" % (STATUS_NAMES.get(self.status, "?"), self.status, self.message)
        if self.status_reply is not None:
            s += " with status_reply (pid %s)" % self.status_reply.get(2, ["?"])[-1]
        return s


# ---------------------------------------------------------------- socket helpers

def connect(path, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def recv_exact(s, n, deadline):
    buf = b""
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout()
        s.settimeout(left)
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError(len(buf))
        buf += chunk
    return buf


def read_event(s, timeout):
    """('frame', Reply) | ('eof', partial_bytes) | ('reset', None) | ('timeout', None)."""
    deadline = time.monotonic() + timeout
    try:
        hdr = recv_exact(s, 4, deadline)
        (n,) = struct.unpack(">I", hdr)
        if n > 4 * 1024 * 1024:
            raise Fail("reply frame announces %d bytes (more than 4 MiB)" % n)
        body = recv_exact(s, n, deadline)
    except socket.timeout:
        return ("timeout", None)
    except EOFError as e:
        return ("eof", e.args[0])
    except (ConnectionResetError, BrokenPipeError):
        return ("reset", None)
    try:
        return ("frame", Reply(body))
    except ValueError as e:
        raise Fail("reply does not decode as a Response: %s (%s)" % (e, body[:64].hex()))


def expect_reply(s, status, timeout=5.0, what="reply", message_contains=None):
    kind, v = read_event(s, timeout)
    if kind != "frame":
        raise Fail("%s: expected a %s reply, got %s" % (what, STATUS_NAMES[status], kind))
    print("  %s: %s" % (what, v))
    if v.status != status:
        raise Fail("%s: expected status %s, got %s" % (what, STATUS_NAMES[status], v))
    if status != OK and not v.message:
        raise Fail("%s: error reply carries no message" % what)
    if message_contains and message_contains.lower() not in v.message.lower():
        raise Fail("%s: expected message containing %r, got %r" % (what, message_contains, v.message))
    return v


def expect_close(s, timeout=5.0, what="connection"):
    t0 = time.monotonic()
    kind, v = read_event(s, timeout)
    if kind == "frame":
        raise Fail("%s: expected the daemon to close, got another reply: %s" % (what, v))
    if kind == "timeout":
        raise Fail("%s: daemon did not close the connection within %.1f s" % (what, timeout))
    print("  %s: closed by the daemon (%s) after %.2f s" % (what, kind, time.monotonic() - t0))


def send_all(s, data, timeout=5.0):
    s.settimeout(timeout)
    s.sendall(data)


# ---------------------------------------------------------------- scenarios

def ping(path, max_ms=None):
    t0 = time.monotonic()
    s = connect(path)
    send_all(s, frame(STATUS_REQUEST))
    kind, v = read_event(s, 5.0)
    ms = (time.monotonic() - t0) * 1000
    s.close()
    if kind != "frame" or v.status != OK:
        raise Fail("status RPC: expected an OK reply, got %s %s" % (kind, v if v else ""))
    if v.status_reply is None:
        raise Fail("status RPC: OK reply without status_reply")
    print("  status RPC answered in %.1f ms" % ms)
    if max_ms is not None and ms > max_ms:
        raise Fail("status RPC took %.1f ms, more than %s ms" % (ms, max_ms))
    return ms


def sc_ping(path, max_ms="100"):
    ping(path, float(max_ms))


def sc_frame(path, hexbody, status, close=None):
    s = connect(path)
    try:
        send_all(s, frame(bytes.fromhex(hexbody)))
    except (BrokenPipeError, ConnectionResetError):
        print("  (the daemon closed before our request went out; reading its reply)")
    expect_reply(s, int(status), what="reply to %s" % (hexbody or "an empty body"))
    if close == "close":
        expect_close(s)
    s.close()


def sc_bigframe(path, length):
    s = connect(path)
    send_all(s, struct.pack(">I", int(length)))
    expect_reply(s, INVALID_ARGUMENT, what="reply to a header announcing %s bytes" % length)
    expect_close(s)
    s.close()


def sc_truncated_close(path):
    s = connect(path)
    send_all(s, struct.pack(">I", 100) + b"\x08\x01" + b"\x00" * 8)
    s.close()
    print("  sent 14 of 104 bytes and closed")


def sc_truncated_open(path, seconds):
    seconds = float(seconds)
    s = connect(path)
    t0 = time.monotonic()
    send_all(s, struct.pack(">I", 100) + b"\x08\x01" + b"\x00" * 8)
    kind, v = read_event(s, seconds + 3)
    if kind == "frame":
        print("  reply before closing: %s" % v)
        if v.status == OK:
            raise Fail("half a frame got an OK reply")
        kind, v = read_event(s, seconds + 3 - (time.monotonic() - t0))
    took = time.monotonic() - t0
    if kind == "timeout":
        raise Fail("half a frame: the daemon did not close within request_timeout (%.1f s) + 3 s"
                   % seconds)
    if kind == "frame":
        raise Fail("half a frame: a second reply %s" % v)
    print("  closed by the daemon (%s) after %.2f s (request_timeout %.1f s)" % (kind, took, seconds))
    if took < seconds * 0.5:
        raise Fail("half a frame: closed after %.2f s, long before request_timeout (%.1f s)"
                   % (took, seconds))
    s.close()


def sc_random(path):
    data = bytearray(random.Random(20261126).randbytes(4096))
    if struct.unpack(">I", data[:4])[0] <= MAX_REQUEST:
        data[0] |= 0x80
    print("  header announces %d bytes" % struct.unpack(">I", data[:4])[0])
    s = connect(path)
    try:
        send_all(s, bytes(data))
    except (BrokenPipeError, ConnectionResetError):
        pass  # the daemon may already have replied and closed
    expect_reply(s, INVALID_ARGUMENT, what="reply to 4 KiB of random bytes")
    expect_close(s)
    s.close()


def sc_random_body(path):
    body = random.Random(4092).randbytes(4092)
    s = connect(path)
    send_all(s, frame(body))
    expect_reply(s, INVALID_ARGUMENT, what="reply to a frame of 4092 random bytes")
    expect_close(s)
    s.close()


def sc_slowdrip(path, seconds):
    seconds = float(seconds)
    data = frame(STATUS_REQUEST)
    s = connect(path)
    t0 = time.monotonic()
    closed = None
    for i, b in enumerate(data):
        try:
            send_all(s, bytes([b]))
        except (BrokenPipeError, ConnectionResetError):
            closed = "send failed"
            break
        if i == 1:
            ping(path, 100)  # others are served meanwhile
        kind, v = read_event(s, 1.0)
        if kind == "frame":
            print("  reply during the drip: %s" % v)
            if v.status == OK:
                raise Fail("slow drip: got an OK reply for a request that took %.1f s to arrive"
                           % (time.monotonic() - t0))
            kind, v = read_event(s, 1.0)
        if kind in ("eof", "reset"):
            closed = kind
            break
    took = time.monotonic() - t0
    if closed is None:
        raise Fail("slow drip: the daemon kept the connection for %.1f s (request_timeout %.1f s)"
                   % (took, seconds))
    print("  closed by the daemon (%s) after %.2f s, %d of %d bytes sent"
          % (closed, took, i + 1, len(data)))
    if took > seconds + 2.5:
        raise Fail("slow drip: closed only after %.1f s (request_timeout %.1f s)" % (took, seconds))
    s.close()


def rss_kb(pid, key):
    try:
        for line in open("/proc/%s/status" % pid):
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def sc_flood(path, pid=None, fair_ms=None):
    """Pipelines status requests without reading until the daemon drops us. Meanwhile a
    second client sends a status request every 100 ms; its latencies are printed, and with
    fair_ms each must be answered within fair_ms (one client must not starve the others)."""
    import threading
    lat, errors, done = [], [], threading.Event()

    def pinger():
        while not done.is_set():
            t0 = time.monotonic()
            try:
                c = connect(path, timeout=30)
                send_all(c, frame(STATUS_REQUEST), timeout=30)
                kind, v = read_event(c, 30.0)
                c.close()
                if kind != "frame" or v.status != OK:
                    errors.append("%s %s" % (kind, v or ""))
            except (OSError, Fail) as e:
                errors.append(str(e))
            lat.append((time.monotonic() - t0) * 1000)
            done.wait(0.1)

    s = connect(path)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setblocking(False)
    batch = frame(STATUS_REQUEST) * 1000
    sent = 0
    t0 = time.monotonic()
    result = None
    pending = b""
    th = threading.Thread(target=pinger, daemon=True)
    th.start()
    while time.monotonic() - t0 < 60:
        if not pending:
            pending = batch
        _, w, _ = select.select([], [s], [], 10.0)
        if not w:
            result = "blocked"
            break
        try:
            n = s.send(pending)
        except (BrokenPipeError, ConnectionResetError) as e:
            result = "dropped (%s)" % e.__class__.__name__
            break
        except BlockingIOError:
            continue
        pending = pending[n:]
        sent += n
    took = time.monotonic() - t0
    done.set()
    th.join(35)
    nreq = sent // len(frame(STATUS_REQUEST))
    print("  sent %d status requests (%d bytes) in %.1f s without reading: %s"
          % (nreq, sent, took, result or "still accepted"))
    if pid:
        print("  daemon VmRSS %d kB, VmHWM (peak) %d kB" % (rss_kb(pid, "VmRSS"), rss_kb(pid, "VmHWM")))
    s.close()
    if lat:
        srt = sorted(lat)
        print("  meanwhile, another client's status RPCs: %d, p50 %.1f ms, max %.1f ms%s"
              % (len(srt), srt[len(srt) // 2], srt[-1],
                 ", %d failed: %s" % (len(errors), errors[0]) if errors else ""))
    if result is None:
        raise Fail("flood: the daemon accepted requests for %.0f s without dropping us" % took)
    if result == "blocked":
        raise Fail("flood: the daemon stopped reading for 10 s but did not drop the client "
                   "(expected: dropped once its queued output exceeds max_output)")
    if fair_ms is not None:
        if errors:
            raise Fail("flood: another client's status RPC failed meanwhile: %s" % errors[0])
        if lat and max(lat) > float(fair_ms):
            raise Fail("flood: another client waited %.0f ms for a status reply (limit %s ms): "
                       "one client starves the others" % (max(lat), fair_ms))


def sc_maxclients(path, maximum, count):
    maximum, count = int(maximum), int(count)
    conns = [connect(path) for _ in range(count)]
    # Within a second, the refused ones get their reply and are closed; the others stay quiet.
    replies = {}
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        waiting = [c for i, c in enumerate(conns) if i not in replies]
        r, _, _ = select.select(waiting, [], [], max(0.0, deadline - time.monotonic()))
        for c in r:
            replies[conns.index(c)] = read_event(c, 2.0)
    quiet = [i for i in range(count) if i not in replies]
    print("  %d connections: %d got a reply or were closed, %d kept quietly open"
          % (count, len(replies), len(quiet)))
    for i, (kind, v) in sorted(replies.items()):
        if kind != "frame":
            raise Fail("connection %d was closed (%s) without an UNAVAILABLE reply" % (i, kind))
        if v.status != UNAVAILABLE or "too many connections" not in v.message.lower():
            raise Fail("connection %d: expected UNAVAILABLE 'too many connections', got %s"
                       % (i, v))
        expect_close(conns[i], what="refused connection %d" % i)
    if len(quiet) != maximum:
        raise Fail("expected %d connections served and %d refused, got %d and %d (refused: %s)"
                   % (maximum, count - maximum, len(quiet), len(replies), sorted(replies)))
    print("  refused: connections %s, each with %s" % (sorted(replies), replies[max(replies)][1]))
    for i in quiet:
        send_all(conns[i], frame(STATUS_REQUEST))
        expect_reply(conns[i], OK, what="status on kept connection %d" % i)
    for c in conns:
        c.close()


def sc_capframe(path):
    # A valid status request padded with an unknown bytes field (100) to exactly 256 KiB.
    head = STATUS_REQUEST + bytes([0xA2, 0x06])
    pad = 262144 - len(head) - 3
    body = head + bytes([0x80 | (pad & 0x7F), 0x80 | ((pad >> 7) & 0x7F), pad >> 14]) + b"x" * pad
    assert len(body) == 262144
    s = connect(path)
    send_all(s, frame(body))
    expect_reply(s, OK, what="status request of exactly 262144 bytes (unknown field 100 padding)")
    s.close()


def sc_idle(path, seconds):
    seconds = float(seconds)
    s = connect(path)
    send_all(s, frame(STATUS_REQUEST))
    expect_reply(s, OK, what="status")
    t0 = time.monotonic()
    kind, v = read_event(s, seconds + 3)
    took = time.monotonic() - t0
    if kind == "timeout":
        raise Fail("idle connection still open %.1f s after its last reply (idle_timeout %.1f s)"
                   % (took, seconds))
    if kind == "frame":
        print("  message before closing: %s" % v)
    print("  idle connection closed by the daemon (%s) after %.2f s (idle_timeout %.1f s)"
          % (kind, took, seconds))
    if took < seconds * 0.5:
        raise Fail("idle connection closed after %.2f s, before idle_timeout (%.1f s)"
                   % (took, seconds))
    s.close()


def sc_pipeline(path, count):
    count = int(count)
    s = connect(path)
    send_all(s, frame(STATUS_REQUEST) * count, timeout=10)
    for i in range(count):
        kind, v = read_event(s, 5.0)
        if kind != "frame" or v.status != OK or v.status_reply is None:
            raise Fail("pipelined request %d of %d: expected an OK status reply, got %s %s"
                       % (i + 1, count, kind, v or ""))
    print("  %d pipelined status requests answered OK on one connection" % count)
    s.close()


def sc_hold(path, count, seconds):
    served, refused = [], 0
    for i in range(int(count)):
        c = connect(path)
        try:
            send_all(c, frame(STATUS_REQUEST))
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused at accept: its reply may already wait to be read
        kind, v = read_event(c, 5.0)
        if kind == "frame" and v.status == OK:
            served.append(c)
            continue
        refused += 1
        print("  connection %d refused: %s %s" % (i, kind, v if v else ""))
        c.close()
    print("served=%d refused=%d" % (len(served), refused), flush=True)
    time.sleep(float(seconds))
    for c in served:
        c.close()


def sc_repeat(path, hexbody, status, count):
    s = connect(path)
    body, status = frame(bytes.fromhex(hexbody)), int(status)
    for i in range(int(count)):
        send_all(s, body)
        kind, v = read_event(s, 5.0)
        if kind != "frame" or v.status != status:
            raise Fail("request %d: expected %s, got %s %s" % (i, STATUS_NAMES[status], kind, v))
    print("  %s requests answered %s" % (count, STATUS_NAMES[status]))
    s.close()


SCENARIOS = {
    "ping": sc_ping, "frame": sc_frame, "bigframe": sc_bigframe,
    "truncated-close": sc_truncated_close, "truncated-open": sc_truncated_open,
    "random": sc_random, "random-body": sc_random_body, "slowdrip": sc_slowdrip,
    "flood": sc_flood, "maxclients": sc_maxclients, "capframe": sc_capframe, "idle": sc_idle, "pipeline": sc_pipeline,
    "hold": sc_hold, "repeat": sc_repeat,
}


def main(argv):
    if len(argv) < 3 or argv[2] not in SCENARIOS:
        print(__doc__, file=sys.stderr)
        return 2
    fn = SCENARIOS[argv[2]]
    try:
        inspect.signature(fn).bind(argv[1], *argv[3:])
    except TypeError as e:
        print("rawclient: usage: %s: %s" % (argv[2], e), file=sys.stderr)
        return 2
    try:
        fn(argv[1], *argv[3:])
    except Fail as e:
        print("rawclient: FAIL: %s" % e)
        return 1
    except OSError as e:
        print("rawclient: FAIL: %s: %s" % (argv[2], e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
