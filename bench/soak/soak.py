#!/usr/bin/env python3
"""bench/soak: `wharf serve` under wrk (256 connections, 10 minutes by
default) while the tenant's current deployment flips between v1 and v2
every second through the API.  Standard library only; run by
bench/soak/run.sh.

    soak.py WHARF WORK [--duration S] [--conns N]
            [--stop-at S --stop-for S]

Reports the lowest per-second rate of responses next to the median (a
stall cannot hide in an average), non-2xx responses, socket errors, the
flips (each must answer 200, and the edge must serve the activated
version on the next request) and torn bodies (a body that is not v1 or
v2 in full; bench/soak/soak.lua checks every one).

--stop-at/--stop-for are for checking the checker: the server is
SIGSTOPped S seconds into the run for S seconds, then SIGCONTed, and
the report must show the collapsed seconds."""
import argparse
import os
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True     # leave no __pycache__ in bench/edge
sys.path.insert(0, os.path.join(HERE, "..", "edge"))
import wharf_site  # noqa: E402  (bench/edge/wharf_site.py)

TENANT = "soak"


def page(version, filler):
    """A page that names its version and its own length."""
    body = ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<title>Soak {version}</title></head><body>"
            f"<h1>Deployment {version}</h1>\n"
            + filler +
            "<p>wharf-soak-version=%s length=%s</p></body></html>\n")
    # The length field's own digits count: settle it by iteration.
    n = 0
    while True:
        text = body % (version, n)
        if len(text.encode()) == n:
            return text.encode()
        n = len(text.encode())


def machine_load():
    with open("/proc/loadavg") as f:
        text = "load average " + " ".join(f.read().split()[:3])
    try:
        with open("/proc/pressure/cpu") as f:
            text += ", CPU pressure " + f.readline().split()[1]
    except (OSError, IndexError):
        pass
    return text


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


class Flipper(threading.Thread):
    """Activates v1 and v2 alternately, once a second, until stopped.
    After each activation, asks the edge which version it serves."""

    def __init__(self, wharf, ids, bodies):
        super().__init__(daemon=True)
        self.wharf, self.ids, self.bodies = wharf, ids, bodies
        self.stop = threading.Event()
        self.ok = self.failed = self.unseen = 0
        self.slowest = 0.0
        self.errors = []
        self.log = []       # (wall time, version, status, seconds)

    def run(self):
        tick = time.monotonic()
        which = 0           # v2 is current after the deploys: v1 first
        while not self.stop.is_set():
            version = ("v1", "v2")[which]
            t0 = time.monotonic()
            try:
                status = self.wharf.activate(TENANT, self.ids[version])
            except OSError as e:
                status = f"{type(e).__name__}: {e}"
            took = time.monotonic() - t0
            self.slowest = max(self.slowest, took)
            self.log.append((time.time() - took, version, status, took))
            if status == 200:
                self.ok += 1
                try:
                    code, body = self.wharf.edge_get(TENANT, "/")
                except OSError:
                    code, body = 0, b""
                if code != 200 or body != self.bodies[version]:
                    self.unseen += 1
            else:
                self.failed += 1
                if len(self.errors) < 5:
                    self.errors.append(str(status))
            which ^= 1
            tick += 1.0
            self.stop.wait(max(0.0, tick - time.monotonic()))


def stopper(pid, at, length, log):
    time.sleep(at)
    log.append(time.time())
    os.kill(pid, signal.SIGSTOP)
    time.sleep(length)
    os.kill(pid, signal.SIGCONT)
    log.append(time.time())


def parse_wrk(text):
    out = {"seconds": [], "bodies": {}, "errors": {}, "torn_samples": []}
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "SOAK-SECOND":
            out["seconds"].append((int(parts[1]), int(parts[2])))
        elif parts[0] == "SOAK-BODIES":
            out["bodies"] = dict(p.split("=") for p in parts[1:])
        elif parts[0] == "SOAK-ERRORS":
            out["errors"] = dict(p.split("=") for p in parts[1:])
        elif parts[0] == "SOAK-TORN-SAMPLE":
            out["torn_samples"].append(" ".join(parts[1:]))
        elif parts[0] == "Requests/sec:":
            out["rps"] = float(parts[1])
        elif len(parts) > 3 and parts[1] == "requests" and parts[2] == "in":
            out["requests"] = int(parts[0])
        elif parts[0] == "99%":
            out["p99"] = parts[1]
        elif line.strip().startswith("Non-2xx"):
            out["wrk_non2xx"] = int(parts[-1])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("wharf")
    ap.add_argument("work")
    ap.add_argument("--duration", type=int, default=600)
    ap.add_argument("--conns", type=int, default=256)
    ap.add_argument("--stop-at", type=float, default=None)
    ap.add_argument("--stop-for", type=float, default=2.0)
    a = ap.parse_args()

    os.makedirs(a.work, exist_ok=True)
    filler1 = "<p>Version one of the soak site.</p>\n" * 80
    filler2 = "<p>Version two, a little longer than one.</p>\n" * 110
    bodies = {"v1": page("v1", filler1), "v2": page("v2", filler2)}
    for v, b in bodies.items():
        with open(os.path.join(a.work, f"{v}.html"), "wb") as f:
            f.write(b)

    load_start = machine_load()
    wharf = wharf_site.Wharf(a.wharf, a.work, workers=1)
    try:
        wharf.add_tenant(TENANT)
        ids = {}
        for v in ("v1", "v2"):
            ids[v] = wharf.deploy(TENANT, {"/index.html": bodies[v]})
            wharf.wait_served(TENANT, {"/": bodies[v]})
        rss_start = rss_kib(wharf.proc.pid)
        print(f"soak: wharf serve pid {wharf.proc.pid}, edge :{wharf.edge}, "
              f"api :{wharf.api}; v1 {len(bodies['v1'])} B "
              f"(deployment {ids['v1']}), v2 {len(bodies['v2'])} B "
              f"(deployment {ids['v2']})", flush=True)
        print(f"soak: wrk -t2 -c{a.conns} -d{a.duration}s against "
              f"http://127.0.0.1:{wharf.edge}/ (Host: {TENANT}.localhost), "
              "activating v1 and v2 alternately every second; "
              f"{os.cpu_count()} CPUs", flush=True)
        print(f"at start: {load_start}", flush=True)

        flipper = Flipper(wharf, ids, bodies)
        stops = []
        wrk = subprocess.Popen(
            ["wrk", "-t2", f"-c{a.conns}", f"-d{a.duration}s", "--latency",
             "-H", f"Host: {TENANT}.localhost",
             "-s", os.path.join(HERE, "soak.lua"),
             f"http://127.0.0.1:{wharf.edge}/", "--",
             os.path.join(a.work, "v1.html"),
             os.path.join(a.work, "v2.html")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        started = time.time()
        flipper.start()
        if a.stop_at is not None:
            threading.Thread(target=stopper, daemon=True,
                             args=(wharf.proc.pid, a.stop_at, a.stop_for,
                                   stops)).start()
        try:
            text, _ = wrk.communicate(timeout=a.duration + 120)
        except subprocess.TimeoutExpired:
            wrk.kill()
            text, _ = wrk.communicate()
            text += "\nsoak: wrk did not finish; killed\n"
        flipper.stop.set()
        flipper.join()
        rss_end = rss_kib(wharf.proc.pid)
    finally:
        wharf.stop()
    load_end = machine_load()

    with open(os.path.join(a.work, "wrk.txt"), "w") as f:
        f.write(text)
    r = parse_wrk(text)
    if not r["seconds"] or "requests" not in r:
        print(text)
        sys.exit("soak: no result from wrk")

    # Full seconds only: the first and the last are partial.
    secs = r["seconds"][1:-1]
    rates = [n for _, n in secs]
    median = statistics.median(rates)
    low_sec, low = min(secs, key=lambda s: s[1])
    base = int(started)     # offsets count from the second wrk began in
    collapsed = [(s - base, n) for s, n in secs if n < median / 10]
    with open(os.path.join(a.work, "per-second.txt"), "w") as f:
        f.write("# second since the start of wrk, responses in it\n")
        for s, n in r["seconds"]:
            f.write(f"{s - base:4d} {n}\n")
    with open(os.path.join(a.work, "flips.txt"), "w") as f:
        f.write("# seconds since the start of wrk's first second, version, "
                "status, "
                "seconds the activation took\n")
        for t, v, st, took in flipper.log:
            f.write(f"{t - base:8.3f} {v} {st} {took:.3f}\n")

    b, e = r["bodies"], r["errors"]
    socket_errors = sum(int(e[k]) for k in
                        ("connect", "read", "write", "timeout"))
    print(f"requests: {r['requests']} in {a.duration} s, "
          f"{r['rps']:.0f}/s on average (wrk), p99 {r.get('p99')}")
    print(f"per second ({len(rates)} full seconds): lowest {low} "
          f"(in second {low_sec - base}), median {median:.0f}; "
          f"lowest/median = {low / median:.2f}")
    lowest5 = sorted(secs, key=lambda s: s[1])[:5]
    print("five lowest seconds: " + ", ".join(
        f"second {s - base}: {n}" for s, n in sorted(lowest5)))
    if stops:
        print(f"server stopped from {stops[0] - base:.1f} s to "
              f"{stops[-1] - base:.1f} s (SIGSTOP/SIGCONT)")
    if collapsed:
        print("collapsed seconds (< median/10): " +
              ", ".join(f"second {t}: {n}" for t, n in collapsed))
    else:
        print("collapsed seconds (< median/10): none")
    print(f"responses: v1 {b['v1']}, v2 {b['v2']}, torn or mixed bodies "
          f"{b['torn']}, non-2xx {b['non2xx']}")
    for s in r["torn_samples"]:
        print(f"  torn body sample: {s}")
    print(f"socket errors: connect {e['connect']}, read {e['read']}, "
          f"write {e['write']}, timeout {e['timeout']}")
    print(f"flips: {flipper.ok} answered 200, {flipper.failed} failed"
          f"{' (' + '; '.join(flipper.errors) + ')' if flipper.errors else ''}"
          f", {flipper.unseen} not served on the next request; slowest "
          f"flip {flipper.slowest * 1000:.0f} ms")
    print(f"wharf serve RSS: {rss_start} KiB at start, {rss_end} KiB at end")
    print(f"at end: {load_end}")
    failed = [why for why, bad in (
        ("a collapsed second", collapsed),
        ("torn bodies", int(b["torn"]) > 0),
        ("non-2xx responses", int(b["non2xx"]) > 0),
        ("socket errors", socket_errors > 0),
        ("failed flips", flipper.failed > 0 or flipper.ok == 0),
        ("flips not seen on the next request", flipper.unseen > 0))
        if bad]
    print("soak: " + ("FAIL: " + ", ".join(failed) if failed else
                      "PASS (no collapsed second, no torn body, no non-2xx, "
                      "no socket error, every flip answered and seen)"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
