#!/bin/bash
# RSA-4096 generation runs off the event loop: while it runs, status keeps
# answering fast (p99 under 50 ms).
. "$(dirname "$0")/lib.sh"

t_init
make_active_set
write_config
start_daemon

ctl --timeout 600 generate --key-type rsa-4096 >"$T/gen.out" 2>"$T/gen.err" &
gen=$!
t_track_pid "$gen"

# Status round trips on fresh connections until generate returns.
"$PY" - "$SOCK" "$gen" >"$T/lat.txt" <<'PY'
import os, socket, struct, sys, time
path, gen = sys.argv[1], int(sys.argv[2])
req = bytes.fromhex("08015200")
lat = []
def alive(pid):
    try:
        os.kill(pid, 0)
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False
while alive(gen) and len(lat) < 200000:
    t0 = time.monotonic()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    s.sendall(struct.pack(">I", len(req)) + req)
    hdr = b""
    while len(hdr) < 4:
        hdr += s.recv(4 - len(hdr))
    n = struct.unpack(">I", hdr)[0]
    body = b""
    while len(body) < n:
        body += s.recv(n - len(body))
    s.close()
    lat.append((time.monotonic() - t0) * 1000)
    time.sleep(0.005)
lat.sort()
print(len(lat), "%.2f" % lat[len(lat) // 2], "%.2f" % lat[min(len(lat) - 1, int(len(lat) * 0.99))])
PY
wait "$gen" || fail "generate rsa-4096 failed" "$(cat "$T/gen.err")"
read -r count p50 p99 <"$T/lat.txt"
t_log "status during rsa-4096 generate: $count calls, p50 ${p50} ms, p99 ${p99} ms"
[ "$count" -ge 10 ] || fail "too few status calls during generate ($count)"
awk -v p="$p99" 'BEGIN { exit !(p < 50) }' || fail "status p99 ${p99} ms during generate (limit 50 ms)"
ok "status p99 ${p99} ms (p50 ${p50} ms) over $count calls while RSA-4096 was generated"
ctl --json status >"$T/st.json"
assert_eq staged "$(json_get phase "$T/st.json")" "generate finished and staged"
assert_eq rsa-4096 "$(json_get staged.server.key_type "$T/st.json")" "staged key is RSA-4096"
