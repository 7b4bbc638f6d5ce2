#!/usr/bin/env bash
# Instructions per syslog TCP line through `sealog serve`, counted by
# valgrind's callgrind (repeatable on a noisy machine, unlike seconds).
#
#   bench/callgrind-syslog.sh BINARY [SMALL] [LARGE]
#
# Runs the server under callgrind twice, once fed SMALL lines and once LARGE
# (default 50,000 and 250,000 RFC 5424 lines of ~200 bytes over one TCP
# connection, realm bound by the listener), waits until every line is
# committed, stops it with SIGTERM, and prints the marginal instruction
# count per line: (Ir(LARGE) - Ir(SMALL)) / (LARGE - SMALL), which leaves out
# start-up and shutdown. Pass two binaries' results side by side to compare
# builds.
set -euo pipefail
bin=$(readlink -f "$1"); small=${2:-50000}; large=${3:-250000}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
command -v valgrind >/dev/null || { echo "needs valgrind" >&2; exit 2; }

run() {
  local n=$1 d="$work/data-$1"
  local q
  q=$("$bin" --data "$d" realm create bench | python3 -c 'import json,sys; print(json.load(sys.stdin)["query_token"])')
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.$n" \
    "$bin" --data "$d" serve --http 127.0.0.1:0 --syslog-tcp bench@127.0.0.1:0 \
    >"$work/log.$n" 2>&1 &
  local pid=$!
  python3 - "$d" "$n" "$q" <<'PY'
import json, socket, sys, time, urllib.error, urllib.request
d, n, q = sys.argv[1], int(sys.argv[2]), sys.argv[3]
deadline = time.time() + 120
while True:
    try:
        info = json.load(open(f"{d}/server.json")); break
    except Exception:
        if time.time() > deadline: sys.exit("server did not start")
        time.sleep(0.2)
apps = ["payments", "checkout", "auth", "ledger"]
buf = bytearray()
for i in range(n):
    buf += (f'<{8 + i % 8}>1 2026-11-22T08:{(i // 60000) % 60:02}:{(i // 1000) % 60:02}.{i % 1000:03}Z '
            f'web-{i % 16:02}.prod.example.net {apps[i % 4]} {1000 + i % 50} ID{i % 97} '
            f'[req@32473 id="{i:08x}" route="/api/v1/orders"] request {i} completed in {i % 2000} ms '
            f'for user u-{(i * 7919) % 1000000:06} with status 200\n').encode()
host, port = info["syslog_tcp"][0].rsplit(":", 1)
s = socket.create_connection((host, int(port))); s.sendall(buf)
url = f'http://{info["http"]}/v1/checkpoint'
deadline = time.time() + 1800
while True:
    req = urllib.request.Request(url, headers={"authorization": f"Bearer {q}"})
    try:  # 404 until the first commit
        size = int(urllib.request.urlopen(req).read().decode().split("\n")[1])
    except urllib.error.HTTPError:
        size = 0
    if size >= n: break
    if time.time() > deadline: sys.exit(f"only {size} of {n} committed")
    time.sleep(0.5)
s.close()
PY
  kill -TERM "$pid"; wait "$pid" || true
  grep -m1 '^summary:' "$work/cg.$n" | awk '{print $2}'
}
a=$(run "$small"); b=$(run "$large")
echo "$bin: Ir($small)=$a Ir($large)=$b per line: $(( (b - a) / (large - small) ))"
