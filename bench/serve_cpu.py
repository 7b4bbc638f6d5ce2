#!/usr/bin/env python3
"""Server CPU per syslog line, natively, with an optional perf profile.

Usage: bench/serve_cpu.py BINARY [--lines 2000000] [--dir DIR] [--perf]

Creates a realm in DIR (absent; default a temporary directory), starts
`sealog serve` with a syslog TCP listener bound to it, sends LINES RFC 5424
lines (bench/budget.py's) over one connection, waits until every one is
committed, and prints the rate and the server process's own CPU (user and
system, from /proc/PID/stat) per line. With --perf, `perf record -e
cpu-clock -g -p PID` runs during the load and its data is left in
DIR/perf.data for `perf report`.
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import budget  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--dir")
    ap.add_argument("--perf", action="store_true")
    a = ap.parse_args()
    work = a.dir or tempfile.mkdtemp(prefix="sealog-serve-cpu-")
    d = os.path.join(work, "data")
    q, _ = budget.realm(a.binary, d)
    payload = "".join(budget.syslog_line(i) for i in range(a.lines)).encode()
    p = budget.serve(a.binary, d, "syslog", [])
    perf = None
    try:
        info = budget.wait_server(d)
        if a.perf:
            perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "4000", "-g", "-p", str(p.pid),
                                     "-o", os.path.join(work, "perf.data")],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        host, port = info["syslog_tcp"][0].rsplit(":", 1)
        t0 = time.time()
        s = socket.create_connection((host, int(port)))
        s.sendall(payload)
        while budget.committed(info, q) < a.lines:
            if time.time() - t0 > 600:
                raise SystemExit("not every line was committed within 600 s")
            time.sleep(0.01)
        took = time.time() - t0
        s.close()
        stat = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        user, system = int(stat[11]) / tick, int(stat[12]) / tick
    finally:
        if perf:
            perf.send_signal(2)
            perf.wait()
        p.terminate()
        p.wait()
    print(f"{a.lines} lines in {took:.2f} s = {a.lines / took:.0f} lines/s; server CPU user {user:.2f} s, "
          f"system {system:.2f} s = {1e6 * (user + system) / a.lines:.2f} us per line (start-up included)")
    if a.perf:
        print(f"profile: perf report -i {os.path.join(work, 'perf.data')} --no-children --sort symbol")
    elif not a.dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
