#!/usr/bin/env python3
"""Repeats the security review's webhook attacks against a release build and prints the
figures side by side: delivery latency with and without slow uploads open, the time to
refuse 100,000 parts, and the server's peak memory under hostile bodies.

Usage: bench/abuse.py [path/to/mailroom]   (default target/release/mailroom)
Not part of the tests: the tests assert what must never happen; this measures how far
from it the server is. Only loopback is used.
"""

import concurrent.futures
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

BINARY = sys.argv[1] if len(sys.argv) > 1 else "target/release/mailroom"
KEY = "bench-api-key-0123456789abcdef"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def post(port, body, timeout=120):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhook", data=body, method="POST",
        headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def small(n):
    return json.dumps({"subject": f"bench {n}", "message-id": f"<{n}.{time.time()}@b>",
                       "text": "hello", "to": [{"email": "a@b.c"}]}).encode()


def latencies(port, count=30):
    times = []
    for n in range(count):
        started = time.perf_counter()
        assert post(port, small(n)) == 200
        times.append(time.perf_counter() - started)
    return times


def slow_upload(port, stop):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /webhook HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
              b"Content-Length: 73400000\r\n\r\n{")
    while not stop.is_set():
        try:
            s.sendall(b" ")
        except OSError:
            break
        stop.wait(2)
    s.close()


def main():
    work = tempfile.mkdtemp(prefix="mailroom-abuse.")
    port = free_port()
    env = dict(os.environ, PORT=str(port), DATA_DIR=work, API_KEY=KEY,
               DATABASE_URL=f"sqlite://{work}/mailroom.db", RATE_LIMIT_WEBHOOK="off",
               RATE_LIMIT_GLOBAL="off", RUST_LOG="warn")
    server = subprocess.Popen([BINARY], env=env, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.05)
        idle = status_kib(server.pid, "VmRSS")
        base = latencies(port)

        stop = threading.Event()
        slow = [threading.Thread(target=slow_upload, args=(port, stop)) for _ in range(6)]
        for t in slow:
            t.start()
        time.sleep(0.5)
        attacked = latencies(port)
        stop.set()

        parts = json.dumps({"attachments": [{"name": f"p{i}", "content": "AAAA"}
                                            for i in range(100_000)]}).encode()
        started = time.perf_counter()
        refused = post(port, parts)
        refuse_time = time.perf_counter() - started

        hostile = [b'{"attachments":[' + b",".join([b'{"content":""}'] * 1_000_000) + b"]}",
                   b"{" + b",".join(b'"k%d":0' % i for i in range(1_000_000)) + b"}"]
        in_flight = 4 * sum(len(b) for b in hostile)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda b: post(port, b), hostile * 4))
        peak = status_kib(server.pid, "VmHWM")
    finally:
        server.terminate()
        server.wait()

    ms = lambda xs: f"median {statistics.median(xs) * 1000:.1f} ms, max {max(xs) * 1000:.1f} ms"
    print(f"small delivery, quiet:              {ms(base)}")
    print(f"small delivery, 6 slow uploads open: {ms(attacked)}"
          f"  ({statistics.median(attacked) / statistics.median(base):.2f}x the quiet median)")
    print(f"100,000 parts: HTTP {refused} in {refuse_time * 1000:.0f} ms")
    print(f"4 x 1M parts + 4 x 1M keys at once: {sorted(set(statuses))}, "
          f"{in_flight / 2**20:.0f} MiB of bodies, idle RSS {idle // 1024} MiB, "
          f"peak RSS {peak // 1024} MiB ({peak * 1024 / in_flight:.2f}x the bodies)")


if __name__ == "__main__":
    main()
