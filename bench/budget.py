#!/usr/bin/env python3
"""Per-stage CPU budget of an ingest path, in instructions per record.

Usage: bench/budget.py BINARY [BINARY ...] [--path syslog|http|all]
                       [--small 20000] [--large 100000] [--keep DIR]

For each binary and path, runs `sealog serve` under valgrind's callgrind
twice, fed SMALL and then LARGE records (syslog: RFC 5424 lines of about
200 bytes over one TCP connection; http: the same records as NDJSON in
POSTs of 1,000 to /v1/ingest), waits until every record is committed, and
stops it with SIGTERM. The marginal count, (Ir(LARGE) - Ir(SMALL)) /
(LARGE - SMALL), leaves start-up and shutdown out.

Each function's own (exclusive) instructions are put in one stage by its
name, so the stages add up to the whole:
  read      sockets and the runtime's I/O (tokio, mio, hyper, std::io)
  parse     the wire format (syslog, HTTP framing, NDJSON splitting)
  validate  the event checks (sealog_event)
  json      serde_json, wherever it runs (parsing fields, encoding records)
  hash      SHA-256 (sha2)
  compress  zstd
  copy      memcpy, memmove, memset
  alloc     malloc, free, realloc and the allocator
  journal   sealing, frames, the Merkle tree, checkpoints (sealog_journal)
  other     the rest (named in the top-5 list under it)
Instructions are user space only: callgrind does not see the kernel. The
write and fsync stages are therefore counted as system calls per record,
with strace on a native run of the same input.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

STAGES = [
    ("hash", r"sha2::|sha256|Sha256"),
    ("compress", r"zstd|ZSTD_|HUF_|FSE_|HIST_"),
    ("json", r"serde_json|serde::"),
    ("validate", r"sealog_event::"),
    ("parse", r"sealog_codec::|httparse|hyper::proto::h1::role|memchr"),
    ("journal", r"sealog_journal::"),
    ("copy", r"memcpy|memmove|memset|__mem"),
    ("alloc", r"malloc|free|realloc|calloc|_int_|tcache|alloc::alloc|__rust_alloc|__rust_dealloc|mi_|je_"),
    ("read", r"tokio::|mio::|hyper::|std::io|std::net|h2::|bytes::|axum::|tower::|recv|epoll|__libc_read|socket"),
]
ORDER = ["read", "parse", "validate", "json", "hash", "compress", "copy", "alloc", "journal", "other"]

APPS = ["payments", "checkout", "auth", "ledger"]


def syslog_line(i):
    return (f'<{8 + i % 8}>1 2026-11-22T08:{(i // 60000) % 60:02}:{(i // 1000) % 60:02}.{i % 1000:03}Z '
            f'web-{i % 16:02}.prod.example.net {APPS[i % 4]} {1000 + i % 50} ID{i % 97} '
            f'[req@32473 id="{i:08x}" route="/api/v1/orders"] request {i} completed in {i % 2000} ms '
            f'for user u-{(i * 7919) % 1000000:06} with status 200\n')


def ndjson_line(i):
    return json.dumps({
        "time": f"2026-11-22T08:{(i // 60000) % 60:02}:{(i // 1000) % 60:02}.{i % 1000:03}Z",
        "host": f"web-{i % 16:02}.prod.example.net", "app": APPS[i % 4], "level": "info",
        "msg": f"request {i} completed in {i % 2000} ms for user u-{(i * 7919) % 1000000:06} with status 200",
        "route": "/api/v1/orders", "id": f"{i:08x}",
    }, separators=(",", ":")) + "\n"


def wait_server(d, deadline=180):
    end = time.time() + deadline
    while time.time() < end:
        try:
            return json.load(open(os.path.join(d, "server.json")))
        except (OSError, ValueError):
            time.sleep(0.2)
    raise SystemExit("the server did not start")


def committed(info, q):
    req = urllib.request.Request(f'http://{info["http"]}/v1/checkpoint',
                                 headers={"authorization": f"Bearer {q}"})
    try:
        return int(urllib.request.urlopen(req).read().decode().split("\n")[1])
    except urllib.error.HTTPError:
        return 0


def feed(path, info, q, w, n):
    if path == "syslog":
        host, port = info["syslog_tcp"][0].rsplit(":", 1)
        s = socket.create_connection((host, int(port)))
        s.sendall("".join(syslog_line(i) for i in range(n)).encode())
    else:
        s = None
        for lo in range(0, n, 1000):
            body = "".join(ndjson_line(i) for i in range(lo, min(n, lo + 1000))).encode()
            req = urllib.request.Request(f'http://{info["http"]}/v1/ingest', data=body, method="POST",
                                         headers={"authorization": f"Bearer {w}"})
            urllib.request.urlopen(req, timeout=600).read()
    end = time.time() + 3600
    while committed(info, q) < n:
        if time.time() > end:
            raise SystemExit("not all committed")
        time.sleep(0.5)
    if s:
        s.close()


def serve(binary, d, path, prefix):
    args = [binary, "--data", d, "serve", "--http", "127.0.0.1:0"]
    if path == "syslog":
        args += ["--syslog-tcp", "bench@127.0.0.1:0"]
    env = dict(os.environ, SEALOG_LOG="warn")
    return subprocess.Popen(prefix + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def realm(binary, d):
    out = subprocess.run([binary, "--data", d, "realm", "create", "bench"], check=True,
                         capture_output=True).stdout
    c = json.loads(out)
    return c["query_token"], c["write_token"]


def callgrind(binary, path, n, work):
    d = os.path.join(work, f"cg-{path}-{n}")
    q, w = realm(binary, d)
    out = os.path.join(work, f"cg.{path}.{n}")
    p = serve(binary, d, path, ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"])
    try:
        feed(path, wait_server(d), q, w, n)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait()
    total = 0
    stages = {s: 0 for s in ORDER}
    others = {}
    ann = subprocess.run(["callgrind_annotate", "--threshold=100", "--inclusive=no", "--tree=none", "--auto=no", out],
                         capture_output=True, text=True, check=True).stdout
    for line in ann.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(.*)$", line)
        if not m:
            continue
        ir = int(m.group(1).replace(",", ""))
        name = m.group(2).strip()
        if name.startswith(("=>", "<", "*")) or "annotated" in name:
            continue  # a call edge or a summary, not a function's own cost
        if "PROGRAM TOTALS" in name:
            total = ir
            continue
        for stage, pat in STAGES:
            if re.search(pat, name):
                stages[stage] += ir
                break
        else:
            stages["other"] += ir
            key = name.split(":")[-1][:90] if name.startswith("/") or ":" not in name else name[:90]
            others[key] = others.get(key, 0) + ir
    return total, stages, others


def syscalls(binary, path, n, work):
    d = os.path.join(work, f"st-{path}-{n}")
    q, w = realm(binary, d)
    out = os.path.join(work, f"strace.{path}.{n}")
    p = serve(binary, d, path, ["strace", "-f", "-c", "-o", out])
    info = wait_server(d)
    try:
        feed(path, info, q, w, n)
    finally:
        # The server itself, not strace, is told to stop.
        os.kill(info["pid"], signal.SIGTERM)
        p.wait()
    calls = {}
    for line in open(out):
        f = line.split()
        if len(f) >= 5 and f[0][0].isdigit() and f[-1] not in ("total",):
            try:
                calls[f[-1]] = int(f[3])
            except ValueError:
                pass
    return calls


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binaries", nargs="+")
    ap.add_argument("--path", default="all", choices=["syslog", "http", "all"])
    ap.add_argument("--small", type=int, default=20000)
    ap.add_argument("--large", type=int, default=100000)
    ap.add_argument("--keep", metavar="DIR",
                    help="copy the callgrind profiles here (for callgrind_annotate)")
    a = ap.parse_args()
    for tool in ["valgrind", "callgrind_annotate", "strace"]:
        if not shutil.which(tool):
            raise SystemExit(f"needs {tool}")
    paths = ["syslog", "http"] if a.path == "all" else [a.path]
    span = a.large - a.small
    work = tempfile.mkdtemp(prefix="sealog-budget-")
    try:
        for path in paths:
            for b in a.binaries:
                b = os.path.abspath(b)
                # A directory of its own per binary: each makes its own realms.
                bwork = tempfile.mkdtemp(dir=work)
                t0, s0, _ = callgrind(b, path, a.small, bwork)
                t1, s1, o1 = callgrind(b, path, a.large, bwork)
                if a.keep:
                    os.makedirs(a.keep, exist_ok=True)
                    tag = os.path.basename(b)
                    for n in (a.small, a.large):
                        shutil.copy(os.path.join(bwork, f"cg.{path}.{n}"),
                                    os.path.join(a.keep, f"callgrind.{tag}.{path}.{n}"))
                c0 = syscalls(b, path, a.small, bwork)
                c1 = syscalls(b, path, a.large, bwork)
                per = {k: (s1[k] - s0[k]) / span for k in ORDER}
                listed = sum(per.values())
                print(f"{path} ingest, {b}: {(t1 - t0) / span:.0f} instructions per record "
                      f"(Ir {t0} for {a.small}, {t1} for {a.large})")
                print("  " + ", ".join(f"{k} {per[k]:.0f}" for k in ORDER)
                      + f"  (stages sum to {listed:.0f})")
                top = sorted(o1.items(), key=lambda kv: -kv[1])[:5]
                print("  'other', largest at LARGE: " + "; ".join(f"{k} {v}" for k, v in top))
                sc = {k: (c1.get(k, 0) - c0.get(k, 0)) / span for k in set(c0) | set(c1)}
                keep = [k for k in ("read", "recvfrom", "recvmsg", "readv", "write", "writev",
                                    "pwrite64", "pwritev", "fsync", "fdatasync", "sendto",
                                    "epoll_wait", "futex") if k in sc]
                print("  system calls per record: " + ", ".join(f"{k} {sc[k]:.4f}" for k in keep))
                sys.stdout.flush()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
