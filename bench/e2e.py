"""End to end, Gridline and its peer alike: open-loop POSTs from the Go load generator,
notifications counted and timed by the Go webhook receiver, CPU per process from /proc.

One run = one system at one offered rate for a bounded time, then a bounded drain: it ends
when every accepted report (alert) has its first notification or the drain timeout passes.
"""

from __future__ import annotations

import math
import os
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from procs import Meter, delta, snapshot

LATE_NS = 10_000_000  # sent more than 10 ms after its due time: the generator fell behind


@dataclass(frozen=True)
class Arrival:
    kind: str  # gridline | alertmanager
    id: str  # webhook-id, or Alertmanager's groupKey
    key: str  # work_order_id, or the alert's id label
    type: str
    at_ns: int
    sig_ok: bool


class Receiver:
    """The Go webhook receiver, started and stopped by pid; keeps every arrival it served."""

    def __init__(self, binary: Path, port: int, secret: str, log: Path) -> None:
        self.binary, self.port, self.secret, self.log = binary, port, secret, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.arrivals: list[Arrival] = []

    def start(self) -> int:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(self.binary), "receive", "-listen", f"127.0.0.1:{self.port}"],
                env={**os.environ, "BENCH_WEBHOOK_SECRET": self.secret},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1):
                    return self.proc.pid
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"bench: the webhook receiver did not start; see {self.log}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def fetch(self) -> int:
        """Pull the arrivals not seen yet; returns how many came."""
        url = f"http://127.0.0.1:{self.port}/arrivals?from={len(self.arrivals)}"
        with urllib.request.urlopen(url, timeout=10) as r:
            text = r.read().decode()
        new = [line.split("\t") for line in text.splitlines() if line]
        self.arrivals.extend(
            Arrival(k, i, key, t, int(at), ok == "1") for k, i, key, t, at, ok in new
        )
        return len(new)

    def wait_quiet(self, quiet: float, limit: float) -> None:
        """Until nothing arrives for `quiet` seconds (a previous run's backlog), at most `limit`."""
        deadline, last = time.monotonic() + limit, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last < quiet:
            if self.fetch():
                last = time.monotonic()
            time.sleep(0.25)


@dataclass
class Run:
    system: str  # gridline | alertmanager
    label: str  # "100/s" ... or "max"
    seconds: float
    due: int = 0
    sent: int = 0
    not_sent: int = 0
    late: int = 0
    non2xx: int = 0
    no_answer: int = 0
    send_seconds: float = 0.0
    accepted: dict[str, int] = field(default_factory=dict)  # id -> answered at (ns)
    first_sent_ns: int = 0
    notified: dict[str, int] = field(default_factory=dict)  # id -> first notification (ns)
    window_seconds: float = 0.0
    cpu_ms: dict[str, float] = field(default_factory=dict)  # per accepted, idle subtracted
    loadgen_ms: float = 0.0  # the load generator's own CPU per request sent
    duplicates: int = 0
    bad_signatures: int = 0
    notified_after_drain: int = 0

    @property
    def offered_per_s(self) -> float:
        return (self.due if self.label != "max" else self.sent) / self.seconds

    @property
    def accepted_per_s(self) -> float:
        return len(self.accepted) / self.send_seconds if self.send_seconds else 0.0

    @property
    def delivered_per_s(self) -> float:
        if not self.notified:
            return 0.0
        return len(self.notified) / ((max(self.notified.values()) - self.first_sent_ns) / 1e9)

    @property
    def lost(self) -> int:
        return len(self.accepted) - len(self.notified)

    @property
    def latencies_ms(self) -> list[float]:
        """Accepted -> first notification; one never notified in the drain counts as infinite."""
        done = [(at - self.accepted[k]) / 1e6 for k, at in self.notified.items()]
        return sorted(done) + [math.inf] * self.lost

    def percentile(self, p: float) -> float | None:
        lat = self.latencies_ms
        return lat[max(0, math.ceil(p / 100 * len(lat)) - 1)] if lat else None

    @property
    def cpu_total_ms(self) -> float | None:
        # The receiver stands for the subscriber: not part of the system's cost.
        return sum(v for k, v in self.cpu_ms.items() if k != "receiver") if self.cpu_ms else None


def measure_idle(meters: Mapping[str, Meter], seconds: float) -> dict[str, float]:
    """CPU seconds per second of each process with no load: subtracted from every run."""
    before, t0 = snapshot(meters), time.monotonic()
    time.sleep(seconds)
    used, elapsed = delta(before, snapshot(meters)), time.monotonic() - t0
    return {name: s / elapsed for name, s in used.items()}


def _load(binary: Path, argv: list[str], env: Mapping[str, str]) -> float:
    """Run the load generator to its end; its own CPU seconds (from wait4's rusage)."""
    proc = subprocess.Popen([str(binary), "send", *argv], env={**os.environ, **env})
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"bench: loadgen {' '.join(argv)} failed ({proc.returncode})")
    return usage.ru_utime + usage.ru_stime


@dataclass
class Target:
    """Where one system's load goes and how its notifications are recognised."""

    system: str
    kind: str  # the loadgen's -kind
    url: str
    notification: tuple[str, str]  # (receiver kind, type) of the first notification
    meters: Mapping[str, Meter]
    idle: Mapping[str, float]
    env: Mapping[str, str]
    extra: list[str]


# Where the next Open311 run starts in the points file: runs continue through the points, so
# a point comes round again only after all the others (the duplicate window, run.py).
_next_point = 0


def run(
    target: Target,
    receiver: Receiver,
    loadgen: Path,
    rate: float | None,
    seconds: float,
    drain_timeout: float,
    out: Path,
    concurrency: int,
) -> Run:
    label = "max" if rate is None else f"{rate:g}/s"
    r = Run(target.system, label, seconds)
    receiver.wait_quiet(quiet=2.0, limit=drain_timeout)
    cursor = len(receiver.arrivals)
    before, t0 = snapshot(target.meters), time.monotonic()
    argv = [
        "-kind", target.kind, "-url", target.url, "-seconds", str(seconds), "-out", str(out),
        "-rate", "0" if rate is None else str(rate), "-concurrency", str(concurrency),
        "-grace", f"{drain_timeout}s", *target.extra,
    ]  # fmt: skip
    global _next_point
    if target.kind == "open311":
        argv += ["-first", str(_next_point)]
    loadgen_s = _load(loadgen, argv, target.env)
    drain_from = time.monotonic()
    sent_ns: list[int] = []
    due_ns: list[int] = []
    for line in out.read_text().splitlines():
        _, due, sent, ack, status, rid = [*line.split("\t"), ""][:6]
        r.due += 1
        if target.kind == "open311":
            _next_point += 1
        due_ns.append(int(due))
        if status == "-1":
            r.not_sent += 1
            continue
        r.sent += 1
        sent_ns.append(int(sent))
        r.late += int(sent) - int(due) > LATE_NS
        if status.startswith("2") and rid:
            r.accepted[rid] = int(ack)
        elif status == "0":
            r.no_answer += 1
        else:
            r.non2xx += 1
    if sent_ns:
        r.first_sent_ns = min(sent_ns)
        r.send_seconds = max(seconds, (max(sent_ns) - min(due_ns)) / 1e9)
    kind, typ = target.notification
    scanned = cursor
    while True:
        receiver.fetch()
        for a in receiver.arrivals[scanned:]:
            if a.kind == kind and a.type == typ and a.key in r.accepted and a.key not in r.notified:
                r.notified[a.key] = a.at_ns
        scanned = len(receiver.arrivals)
        if len(r.notified) == len(r.accepted) or time.monotonic() - drain_from > drain_timeout:
            break
        time.sleep(0.25)
    used, r.window_seconds = delta(before, snapshot(target.meters)), time.monotonic() - t0
    if r.accepted:
        for name, s in used.items():
            busy = max(0.0, s - target.idle.get(name, 0.0) * r.window_seconds)
            r.cpu_ms[name] = busy * 1000 / len(r.accepted)
    r.loadgen_ms = loadgen_s * 1000 / max(1, r.sent)
    return r


def settle(runs: list[Run], receiver: Receiver) -> None:
    """After every run: duplicates, bad signatures and late notifications over all arrivals."""
    receiver.fetch()
    by_key: dict[str, list[Arrival]] = {}
    for a in receiver.arrivals:
        by_key.setdefault(a.key, []).append(a)
    for r in runs:
        mine = [a for k in r.accepted for a in by_key.get(k, [])]
        if r.system != "alertmanager":  # Gridline and the pipeline floor: webhook ids
            ids = Counter(a.id for a in mine)
        else:  # one alert, one group: a second notification of an alert id is a duplicate
            ids = Counter(a.key for a in mine)
        r.duplicates = sum(n - 1 for n in ids.values() if n > 1)
        r.bad_signatures = sum(not a.sig_ok for a in mine)
        first = {a.key for a in mine if a.type in ("workorder.assigned", "alert")}
        r.notified_after_drain = len(first - set(r.notified))
