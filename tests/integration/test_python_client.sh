#!/bin/bash
# proto/carotate.proto is the real API: a Python client generated from it by protoc talks to
# the daemon and understands its replies.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

command -v protoc >/dev/null || fail "protoc is not installed (packaging/install-deps test)"
"$PY" -c 'import google.protobuf' 2>/dev/null ||
	fail "$PY has no google.protobuf (python3-protobuf; packaging/install-deps test)"

t_init
mkdir "$T/gen"
protoc --python_out="$T/gen" -I "$REPO_ROOT/proto" "$REPO_ROOT/proto/carotate.proto"
[ -f "$T/gen/carotate_pb2.py" ] || fail "protoc generated carotate_pb2.py"
ok "protoc generated carotate_pb2.py from proto/carotate.proto"

make_active_set
write_config
start_daemon

pyclient() { "$PY" "$IT_DIR/pyclient.py" "$T/gen" "$SOCK" "$@"; }
ca_sum=$(cert_sha256 "$SSL_DIR/ca.crt")

assert_exit 0 "Python client: status OK, phase steady, active.ca.sha256 = openssl's" -- \
	pyclient --expect-phase steady --expect-ca-sha256 "$ca_sum" --expect-pid "$DAEMON_PID"
printf '%s\n' "$OUT" | sed 's/^/  | /'

assert_exit 0 "Python client: 20 pipelined requests on one connection, all answered" -- \
	pyclient --pipeline 20 --expect-ca-sha256 "$ca_sum"

mkdir -m 0700 "$SSL_DIR/new"
assert_exit 0 "Python client: phase staged once ssl/new/ exists" -- \
	pyclient --expect-phase staged --expect-ca-sha256 "$ca_sum"
rmdir "$SSL_DIR/new"

# A request built with generated code but version 2 is refused with INVALID_ARGUMENT.
rc=0
"$PY" - "$T/gen" "$SOCK" <<'EOF' || rc=$?
import socket, struct, sys
sys.path.insert(0, sys.argv[1])
import carotate_pb2 as pb
body = pb.Request(version=2, status=pb.StatusRequest()).SerializeToString()
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[2])
s.sendall(struct.pack(">I", len(body)) + body)
hdr = b""
while len(hdr) < 4:
    hdr += s.recv(4 - len(hdr)) or sys.exit("closed without a reply")
(n,) = struct.unpack(">I", hdr)
data = b""
while len(data) < n:
    data += s.recv(n - len(data)) or sys.exit("closed mid-reply")
r = pb.Response()
r.ParseFromString(data)
print("  | version 2 -> %s %r" % (pb.Status.Name(r.status), r.message))
sys.exit(0 if r.status == pb.INVALID_ARGUMENT and r.message else 1)
EOF
[ "$rc" -eq 0 ] || fail "version 2 from the generated client gets INVALID_ARGUMENT with a message"
ok "version 2 from the generated client gets INVALID_ARGUMENT with a message"
assert_daemon_alive "at the end"
