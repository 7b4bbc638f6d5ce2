#!/usr/bin/env python3
"""The web console's speed over a large realm (issue 14's targets).

Usage: bench/console.py [--records 10000000] [--dir /tmp/sealog-bench-console]
                        [--bin target/release/sealog] [--rounds 5]

Setup (untimed): a realm of --records records spread over the last 24 hours
(20 apps, 4 levels, 50 hosts) appended with `sealog ingest`, a server on it,
and Debian's headless Chromium through chromedriver at 1280x800.

Timed, in the browser (the console marks `sealog:rows` when a page of rows
is painted, `sealog:stats` when the histogram and facets are, and
`sealog:click` when a facet is clicked):
- first results painted after a fresh page load (ms from navigation start);
- the histogram and facets painted after load;
- a facet click until the filtered rows are painted;
- the console's assets as sent, gzip-compressed;
- the live tail while 5,000 records/s are ingested for 10 s: the page's
  rate indicator, how current its newest row is, and the main thread's
  long tasks (over 50 ms), i.e. whether the page froze.

The WebDriver calls are a few JSON requests written here (standard library
only), as the Rust browser tests do; no client package is needed.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta, timezone

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(method, url, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=300) as r:
        return r.read(), r.headers


class Browser:
    def __init__(self):
        port = free_port()
        self.driver = subprocess.Popen(
            ["chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.root = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                v = json.loads(call("GET", f"{self.root}/status")[0])
                if v["value"]["ready"]:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,800"],
            },
        }}}
        v = json.loads(call("POST", f"{self.root}/session", caps)[0])
        self.base = f"{self.root}/session/{v['value']['sessionId']}"

    def post(self, path, body):
        return json.loads(call("POST", self.base + path, body)[0])["value"]

    def goto(self, url):
        self.post("/url", {"url": url})

    def js(self, script):
        return self.post("/execute/sync", {"script": script, "args": []})

    def until(self, what, script, within=60.0):
        deadline = time.time() + within
        while time.time() < deadline:
            v = self.js(script)
            if v:
                return v
            time.sleep(0.01)
        raise SystemExit(f"{what}: not within {within} s")

    def click(self, css):
        e = self.post("/element", {"using": "css selector", "value": css})[ELEMENT]
        self.post(f"/element/{e}/click", {})

    def close(self):
        try:
            call("DELETE", self.base)
        finally:
            self.driver.kill()


def generate(sealog, env, realm, records):
    """Appends `records` records over the last 24 hours, 1,000,000 a run."""
    apps = [f"app{i:02d}" for i in range(20)]
    levels = ["info", "info", "info", "warn", "error"]
    now = datetime.now(timezone.utc)
    start = now - timedelta(hours=24)
    step = timedelta(hours=24) / records
    chunk = 1_000_000
    for lo in range(0, records, chunk):
        hi = min(records, lo + chunk)
        lines = []
        for i in range(lo, hi):
            t = (start + step * i).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            lines.append(
                f'{{"time":"{t}","app":"{apps[i % 20]}","level":"{levels[i % 5]}",'
                f'"host":"h{i % 50:02d}","msg":"request {i} served in {i % 997} ms"}}\n'
            )
        r = subprocess.run([sealog, "ingest", "--realm", realm, "-"], input="".join(lines).encode(),
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if r.returncode != 0:
            raise SystemExit(f"sealog ingest: {r.stderr.decode()}")
        print(f"  {hi} records appended", file=sys.stderr)


def mark(b, name, after=0.0):
    """The first `name` mark after `after` (ms), waited for."""
    return b.until(
        name,
        f"const m = performance.getEntriesByName('{name}').find(e => e.startTime > {after});"
        " return m ? m.startTime : null",
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=10_000_000)
    ap.add_argument("--dir", default="/tmp/sealog-bench-console")
    ap.add_argument("--bin", default="target/release/sealog")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep --dir afterwards")
    a = ap.parse_args()
    sealog = os.path.abspath(a.bin)
    if os.path.exists(a.dir):
        raise SystemExit(f"{a.dir} exists; pass an absent --dir")
    os.makedirs(a.dir)
    env = dict(os.environ, SEALOG_DATA=os.path.join(a.dir, "data"), SEALOG_LOG="warn")
    server = None
    b = None
    try:
        out = subprocess.run([sealog, "realm", "create", "con"], env=env, check=True,
                             capture_output=True).stdout
        created = json.loads(out)
        token, write = created["query_token"], created["write_token"]
        t = time.time()
        print(f"generating {a.records} records over the last 24 hours ...", file=sys.stderr)
        generate(sealog, env, "con", a.records)
        print(f"setup took {time.time() - t:.1f} s", file=sys.stderr)
        server = subprocess.Popen([sealog, "serve", "--http", "127.0.0.1:0"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        info = os.path.join(a.dir, "data", "server.json")
        for _ in range(600):
            if os.path.exists(info):
                try:
                    base = "http://" + json.load(open(info))["http"]
                    break
                except (ValueError, KeyError):
                    pass
            time.sleep(0.1)
        else:
            raise SystemExit("the server did not start")
        gz = 0
        for path in ["/ui", "/ui/console.js", "/ui/console.css"]:
            body, headers = call("GET", base + path, headers={"accept-encoding": "gzip"})
            assert headers.get("content-encoding") == "gzip", path
            gz += len(body)

        b = Browser()
        b.goto(f"{base}/ui")
        b.js(f"sessionStorage.setItem('sealog.token', {json.dumps(token)})")
        loads, stats, clicks = [], [], []
        for i in range(a.rounds):
            # A fresh document each round (the query string differs).
            b.goto(f"{base}/ui?round={i}#/explore?range=24h")
            loads.append(mark(b, "sealog:rows"))
            stats.append(mark(b, "sealog:stats"))
        shown = b.js("return document.querySelector('#status').textContent")
        for i in range(a.rounds):
            before = b.js("return performance.now()")
            b.click(".facet-field[data-field='app'] button.facet")
            click = mark(b, "sealog:click", before)
            rows = mark(b, "sealog:rows", click)
            clicks.append(rows - click)
            mark(b, "sealog:stats", rows)
        filtered = b.js("return document.querySelector('#status').textContent")

        # Live tail under 5,000 records/s for 10 s: the page's own rate
        # indicator, how far behind its newest row is at the end, and the
        # main thread's long tasks (over 50 ms) meanwhile.
        b.goto(f"{base}/ui?tail#/explore?range=24h")
        mark(b, "sealog:rows")
        b.js("window.__lt = []; new PerformanceObserver(l => window.__lt.push("
             "...l.getEntries().map(e => e.duration))).observe({type: 'longtask'})")
        b.click("#tail")
        b.until("tail connected", "return document.querySelector('#tail').dataset.live === '1'")
        rate, batch, seconds = 5000, 500, 10
        sent = 0
        rates = []
        t0 = time.time()
        next_sample = t0 + 1.5
        while time.time() - t0 < seconds:
            due = int((time.time() - t0) * rate)
            while sent < due:
                body = "".join(
                    f'{{"app":"tail","level":"info","host":"h","msg":"live {sent + k}"}}\n'
                    for k in range(batch)
                ).encode()
                req = urllib.request.Request(base + "/v1/ingest", data=body, method="POST",
                                             headers={"authorization": f"Bearer {write}"})
                urllib.request.urlopen(req, timeout=30).read()
                sent += batch
            if time.time() >= next_sample:
                r = b.js("return document.querySelector('#rate').textContent")
                try:
                    rates.append(int(r.split()[0]))
                except (ValueError, IndexError, AttributeError):
                    pass
                next_sample += 1.0
            time.sleep(0.01)
        elapsed = time.time() - t0
        time.sleep(2.0)
        newest = b.js("const r = document.querySelector('li.row'); return r ? r.textContent : ''")
        long_tasks = b.js("return window.__lt")
        rows_now = b.js("return document.querySelectorAll('li.row').length")

        def fig(v):
            return f"first {v[0]:.0f} ms, median {statistics.median(v):.0f} ms (rounds: {', '.join(f'{x:.0f}' for x in v)})"

        print(f"sealog bench console: {a.records} records over 24 h, {os.cpu_count()} cores, "
              f"headless Chromium at 1280x800")
        print(f"first results painted after load: {fig(loads)}  (target < 1000 ms)  [{shown}]")
        print(f"histogram and facets painted after load: {fig(stats)}")
        print(f"facet click to filtered rows painted: {fig(clicks)}  (target < 500 ms)  [{filtered}]")
        print(f"console assets as sent (gzip): {gz} bytes ({gz / 1024:.1f} KiB)  (target < 300 KB)")
        print(f"live tail: {sent} records sent at {sent / elapsed:.0f}/s for {elapsed:.1f} s; "
              f"the page's rate indicator each second: {rates}; "
              f"newest row 2 s after the last send: {newest[:40]!r}; rows kept: {rows_now}; "
              f"long tasks: {len(long_tasks)}, longest {max(long_tasks, default=0):.0f} ms")
    finally:
        if b is not None:
            b.close()
        if server is not None:
            server.terminate()
            server.wait()
        if not a.keep:
            shutil.rmtree(a.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
