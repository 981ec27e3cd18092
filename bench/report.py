"""docs/benchmarks.md from the figures of one run: targets with PASS/MISS next to the peer,
end to end per rate, CPU per process, floors, intake alone. Nothing here is hard-coded."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from e2e import Run
from floors import Floor
from intake_bench import IntakeVsBare, Round

GRIDLINE_PROCS = ("intake", "routing", "sla", "notify", "kafka", "postgres")
FLOOR_PROCS = ("floor front", "floor route", "floor notify")  # bench/floor_pipeline.py


@dataclass
class Context:
    command: str
    commit: str
    started: str
    machine: list[str]
    settings: list[str]
    idle: dict[str, float]
    idle_seconds: float


def _ms(v: float | None) -> str:
    if v is None:
        return "–"
    return "lost" if math.isinf(v) else f"{v:.1f}" if v < 100 else f"{v:.0f}"


def _find(runs: Sequence[Run], system: str, label: str) -> Run | None:
    return next((r for r in runs if r.system == system and r.label == label), None)


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else "**PASS**" if ok else "**MISS**"


def _best(runs: Sequence[Run], system: str) -> Run | None:
    """The run with the highest delivered rate among those that lost and duplicated nothing."""
    clean = [
        r for r in runs if r.system == system and r.accepted and r.lost == 0 and r.duplicates == 0
    ]
    return max(clean, key=lambda r: r.delivered_per_s, default=None)


def targets(runs: Sequence[Run], intake: IntakeVsBare | None) -> list[str]:
    """Each target against its bound from the peer, and the pipeline floor's own figure (a
    bound the floor misses too is out of reach of the architecture on this machine)."""
    rows = [
        "| target | Gridline | Alertmanager, same run | bound | verdict | pipeline floor, same run |",
        "|---|---:|---:|---:|---|---:|",
    ]
    has_floor = any(r.system == "floor" for r in runs)

    def floor_cell(value: str, ok: bool | None) -> str:
        if not has_floor or ok is None:
            return "–"
        return f"{value} ({'meets the bound' if ok else 'misses the bound too'})"

    best, floor_best = _best(runs, "gridline"), _best(runs, "floor")
    am_max = _find(runs, "alertmanager", "max") or max(
        (r for r in runs if r.system == "alertmanager"),
        key=lambda r: r.delivered_per_s,
        default=None,
    )
    if am_max:
        bound = 0.7 * am_max.delivered_per_s
        got = best.delivered_per_s if best else 0.0
        where = f" (at {best.label})" if best else " (no run without loss)"
        fl = floor_best.delivered_per_s if floor_best else 0.0
        rows.append(
            f"| end to end, sustained delivered/s, zero lost and duplicated (stretch 1.0×: {am_max.delivered_per_s:.0f}) "
            f"| {got:.0f}{where} | {am_max.delivered_per_s:.0f} (at {am_max.label}) | ≥ {bound:.0f} (0.7×) | {_verdict(got >= bound)} "
            f"| {floor_cell(f'{fl:.0f}' + (f' (at {floor_best.label})' if floor_best else ''), fl >= bound)} |"
        )
    else:
        rows.append(
            "| end to end, sustained delivered/s ≥ 0.7× peer | – | – | – | not measured | – |"
        )
    g100, a100, f100 = (_find(runs, s, "100/s") for s in ("gridline", "alertmanager", "floor"))
    p = g100.percentile(99) if g100 else None
    fp = f100.percentile(99) if f100 else None
    rows.append(
        f"| report → first notification p99 at 100/s | {_ms(p)} ms | {_ms(a100.percentile(99) if a100 else None)} ms "
        f"| < 100 ms | {_verdict(None if p is None else p < 100)} | {floor_cell(f'{_ms(fp)} ms', None if fp is None else fp < 100)} |"
    )
    g500, a500, f500 = (_find(runs, s, "500/s") for s in ("gridline", "alertmanager", "floor"))
    if g500 and a500:
        gp, ap = g500.percentile(99), a500.percentile(99)
        fp = f500.percentile(99) if f500 else None
        bound = min(3 * (ap or 0), 250.0)
        rows.append(
            f"| report → first notification p99 at 500/s | {_ms(gp)} ms | {_ms(ap)} ms "
            f"| ≤ {bound:.1f} ms (3× peer, never > 250) | {_verdict(gp is not None and gp <= bound)} "
            f"| {floor_cell(f'{_ms(fp)} ms', None if fp is None else fp <= bound)} |"
        )
        gc, ac = g500.cpu_total_ms, a500.cpu_total_ms
        fc = f500.cpu_total_ms if f500 else None
        if gc is not None and ac is not None:
            rows.append(
                f"| CPU per report at 500/s, all processes | {gc:.2f} ms | {ac:.2f} ms per alert "
                f"| ≤ {1.5 * ac:.2f} ms (1.5×) | {_verdict(gc <= 1.5 * ac)} "
                f"| {floor_cell(f'{fc:.2f} ms' if fc is not None else '–', None if fc is None else fc <= 1.5 * ac)} |"
            )
    else:
        rows.append("| p99 and CPU at 500/s against the peer | – | – | – | not measured | – |")
    if intake:
        i, b = intake.median("intake", "ok_per_second"), intake.median("bare", "ok_per_second")
        rows.append(
            f"| intake alone against the bare endpoint | {i:.0f}/s | (bare FastAPI: {b:.0f}/s) "
            f"| ratio ≥ 0.5 | {_verdict(intake.ratio >= 0.5)} (ratio {intake.ratio:.2f}) | – |"
        )
    return rows


def e2e_table(runs: Sequence[Run]) -> list[str]:
    rows = [
        "| system | offered/s | late / not sent | accepted/s | non-2xx / no answer | delivered/s "
        "| p50 ms | p90 ms | p99 ms | max ms | lost | notified after drain | duplicate ids | bad signatures | CPU ms per report |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        cpu = r.cpu_total_ms
        rows.append(
            f"| {r.system} {r.label} | {r.offered_per_s:.0f} | {r.late} / {r.not_sent} | {r.accepted_per_s:.0f} "
            f"| {r.non2xx} / {r.no_answer} | {r.delivered_per_s:.0f} | {_ms(r.percentile(50))} | {_ms(r.percentile(90))} "
            f"| {_ms(r.percentile(99))} | {_ms(r.percentile(100))} | {r.lost} | {r.notified_after_drain} "
            f"| {r.duplicates} | {r.bad_signatures if r.system != 'alertmanager' else '–'} | {'–' if cpu is None else f'{cpu:.2f}'} |"
        )
    return rows


def cpu_table(runs: Sequence[Run], idle: dict[str, float]) -> list[str]:
    names = [
        *GRIDLINE_PROCS,
        *(n for n in FLOOR_PROCS if any(n in r.cpu_ms for r in runs)),
        "alertmanager",
    ]
    rows = [
        "| run | "
        + " | ".join(names)
        + " | total | receiver | load generator (per request sent) |",
        "|---|" + "---:|" * (len(names) + 3),
    ]
    rows.append(
        "| idle, ms per second | "
        + " | ".join(f"{idle[n] * 1000:.1f}" if n in idle else "–" for n in names)
        + f" | {sum(idle.get(n, 0) for n in names) * 1000:.1f} | {idle.get('receiver', 0) * 1000:.1f} | – |"
    )
    for r in runs:
        cells = [f"{r.cpu_ms[n]:.2f}" if n in r.cpu_ms else "–" for n in names]
        total = r.cpu_total_ms
        rows.append(
            f"| {r.system} {r.label} | "
            + " | ".join(cells)
            + f" | {'–' if total is None else f'{total:.2f}'} | {r.cpu_ms.get('receiver', 0):.2f} | {r.loadgen_ms:.3f} |"
        )
    return rows


def floors_table(floors: Sequence[Floor], intake: IntakeVsBare | None) -> list[str]:
    rows = [
        "| floor | per second | count | seconds | CPU ms each: driver (client) | broker / PostgreSQL | notes |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for f in floors:
        server = f.cpu_ms.get("kafka" if "kafka" in f.name else "postgres")
        rows.append(
            f"| {f.name} | {f.per_s:.0f} | {f.count} | {f.seconds:.1f} | {f.cpu_ms.get('driver', 0):.3f} "
            f"| {'–' if server is None else f'{server:.3f}'} | {f.note} |"
        )
    if intake:
        rows.append(
            f"| bare FastAPI form endpoint (uvloop + httptools), wrk {intake.connections} connections "
            f"| {intake.median('bare', 'ok_per_second'):.0f} | | {intake.seconds} × {len(intake.rounds['bare'])} | | | "
            "median of the rounds below |"
        )
    return rows


def _rounds(label: str, rounds: Sequence[Round]) -> str:
    return label + ", ".join(f"{r.ok_per_second:.0f}" for r in rounds) if rounds else ""


def intake_section(x: IntakeVsBare) -> list[str]:
    def m(name: str, attr: str) -> float:
        return x.median(name, attr)

    return [
        f"wrk, {x.connections} connections, {len(x.rounds['intake'])} rounds of {x.seconds} s per server, "
        "alternating, the rest of the stack running beside it.",
        "",
        "| endpoint | accepted/s (median) | p50 ms | p99 ms | non-2xx |",
        "|---|---:|---:|---:|---:|",
        f"| intake `POST /open311/v2/requests.json`: validated, stored with its outbox event, committed "
        f"| {m('intake', 'ok_per_second'):.0f} | {m('intake', 'p50_ms'):.1f} | {m('intake', 'p99_ms'):.1f} "
        f"| {sum(r.non_2xx for r in x.rounds['intake'])} |",
        f"| bare FastAPI endpoint: form parsed, JSON answered, nothing stored | {m('bare', 'ok_per_second'):.0f} "
        f"| {m('bare', 'p50_ms'):.1f} | {m('bare', 'p99_ms'):.1f} | {sum(r.non_2xx for r in x.rounds['bare'])} |",
        *(
            [
                f"| intake `POST /v1/reports`, signed partner tip-offs: key, rate limiter, "
                f"HMAC-SHA256 signature over the body, rider id, stored with its outbox event "
                f"| {m('partner', 'ok_per_second'):.0f} | {m('partner', 'p50_ms'):.1f} "
                f"| {m('partner', 'p99_ms'):.1f} | {sum(r.non_2xx for r in x.rounds['partner'])} |"
            ]
            if "partner" in x.rounds
            else []
        ),
        *(
            [
                f"| intake `POST /v1/reports/batch`: {x.batch.size} reports a request, one client, "
                f"{x.batch.batches} requests one after another, each batch one transaction "
                f"| {x.batch.reports_per_second:.0f} | | | |"
            ]
            if x.batch
            else []
        ),
        "",
        f"Ratio intake / bare: **{x.ratio:.2f}**. Durability check: {x.acknowledged} reports were acknowledged "
        f"with 200 and {x.stored} new rows are in `intake.requests`"
        + (
            " (every acknowledged report is stored)."
            if x.stored >= x.acknowledged
            else " (**MISMATCH**)."
        ),
        "",
        "Per round (accepted/s): intake "
        + ", ".join(f"{r.ok_per_second:.0f}" for r in x.rounds["intake"])
        + "; bare "
        + ", ".join(f"{r.ok_per_second:.0f}" for r in x.rounds["bare"])
        + _rounds("; signed tip-offs ", x.rounds.get("partner", []))
        + ".",
    ]


def render(
    ctx: Context,
    runs: Sequence[Run],
    floors: Sequence[Floor],
    intake: IntakeVsBare | None,
    where: Sequence[str] = (),
) -> str:
    out = [
        "# Benchmarks",
        "",
        "Written by `make bench` (scripts/bench.sh, bench/run.py); every figure below comes from",
        "the one run described here. Rerun the command to reproduce them; machines of this kind",
        "differ by up to 2× from day to day, so every target is judged against the peer",
        "(Prometheus Alertmanager) and the floors measured in the same run.",
        "",
        "## This run",
        "",
        f"- command: `{ctx.command}`",
        f"- commit: `{ctx.commit}`; started {ctx.started}",
        *[f"- {line}" for line in ctx.machine],
        *[f"- {line}" for line in ctx.settings],
        "",
        "## Targets (issue 6)",
        "",
        *targets(runs, intake),
        "",
        "Where the time goes for a missed target, and what would move it:",
        "[performance.md](performance.md).",
        "",
    ]
    if runs:
        out += [
            "## End to end: report accepted → first signed webhook, next to Alertmanager",
            "",
            "Gridline: `POST /open311/v2/requests.json` (form-encoded, spread over the demo city's",
            "comprehensive grids) → intake → Kafka → routing → Kafka → notify → signed webhook",
            "`workorder.assigned`. Alertmanager: `POST /api/v2/alerts` (one alert, unique `id`",
            "label) → routing tree (group_by `id`, group_wait 0s) → webhook. Latency is from the",
            "load generator's 2xx answer to the receiver's arrival time (one clock); a report",
            "never notified within the drain counts as infinite (shown as `lost`) in the percentiles.",
            "",
            "`floor` is the pipeline floor (bench/floor_pipeline.py): the same POSTs through three",
            "Python processes that do only the hops every report must take (group commit of the",
            "report, produce with acks=all, one INSERT per poll at the next two hops, a signed",
            "webhook), with no validation, outbox, inbox, sla or envelopes, so it is a lower bound",
            "for this architecture on this machine, not an alternative to it.",
            "",
            *e2e_table(runs),
            "",
            f"### CPU per report (alert) by process, ms, idle subtracted (idle measured over {ctx.idle_seconds:.0f} s first)",
            "",
            *cpu_table(runs, ctx.idle),
            "",
            *where,
        ]
    if floors or intake:
        out += ["## Floors, same run", "", *floors_table(floors, intake), ""]
    if intake:
        out += ["## Intake alone against the bare endpoint", "", *intake_section(intake), ""]
    out += HOW_TO_READ
    return "\n".join(out) + "\n"


HOW_TO_READ = [
    "## How to read this page, what is measured",
    "",
    "- **Open loop.** The load generator (`bench/loadgen`, Go, standard library) sends request",
    "  *i* at start + *i*/rate whatever the answers, one goroutine per request, at most",
    "  `--max-inflight` waiting; a request due while that many wait is *not sent* and counted,",
    "  one sent more than 10 ms behind schedule is *late*. `max` is closed loop instead: a",
    "  fixed number of requests kept in flight for the same duration (as fast as possible).",
    "- **offered/s** = requests due ÷ duration; **accepted/s** = 2xx answers ÷ send duration;",
    "  **delivered/s** = first notifications ÷ (last arrival − first send), so for a saturated",
    "  stack it is the rate the pipeline drains at.",
    "- **Drain.** After sending, the run waits until every accepted report has its first",
    "  notification, at most the drain timeout. **lost** = accepted but not notified by then;",
    "  **notified after drain** = of those, how many arrived later in the bench (late, not",
    "  lost). Before each run the bench waits until the receiver has been quiet for 2 s",
    "  (bounded by the drain timeout) so a previous run's backlog is not billed to the next.",
    "- **Duplicates**: notification ids (`webhook-id`) received more than once for the run's",
    "  reports (for Alertmanager: an alert id notified more than once), over the whole bench.",
    "  **Bad signatures**: webhooks whose Standard Webhooks signature (HMAC-SHA256 over",
    "  `id.timestamp.body`, see docs/api.md) did not verify; the receiver checks every one.",
    "- **CPU** is utime + stime from `/proc/<pid>/stat` over the run's window (send + drain):",
    "  each uvicorn service, the Kafka broker JVM, PostgreSQL (the postmaster, every live",
    "  child, plus its cutime + cstime so backends that exited are counted), Alertmanager.",
    "  The idle rate of each process (measured first, nothing sent) × the window is",
    "  subtracted; the remainder is divided by the reports (alerts) accepted in the run.",
    "  The receiver and the load generator are shown apart and are in no total.",
    "- **The pipeline floor** (`floor` rows) is the building blocks composed: what any",
    "  implementation of these four-services-over-Kafka hops pays at least (bench/floor_pipeline.py",
    "  lists what it leaves out). It batches whatever has arrived and never waits for more, so",
    "  its latency is a floor at every rate, and its CPU and rate at `max` (full batches); at a",
    "  fixed rate its CPU per report is what batches of that rate's size cost, which waiting",
    "  for fuller batches (Gridline's 5 ms lingers) lowers at the price of latency.",
    "- **Floors** are what the building blocks cost alone: aiokafka produce and consume of",
    "  CloudEvents of the stack's real sizes with the stack's client settings, asyncpg writes",
    "  of intake's own row + outbox row (tables copied with `LIKE intake.…`), one report per",
    "  transaction, batched and COPY, and the bare FastAPI form endpoint.",
    "- Everything shares 2 cores: the load generator, the receiver, the peer and the stack",
    "  (Gridline's stack keeps running, idle, while Alertmanager is measured). The end-to-end",
    "  figures are one round per rate (runs alternate Gridline / Alertmanager / the pipeline",
    "  floor per rate; each system's processes idle while another is measured);",
    "  intake-alone figures are medians of alternating rounds.",
    "",
    "### Installs and options",
    "",
    "`make bench` installs what is missing: `wrk` and `prometheus-alertmanager` (Debian",
    "packages, `apt-get install`; on a machine with systemd the package may also start its own",
    "service on :9093, which this bench does not use, stop it if it clashes with `make up`), and",
    "builds the Go load generator and receiver with `/usr/local/go/bin/go build` (Go 1.26, no",
    "modules fetched) into `.run/bench/`. It starts a private stack on bench ports (intake",
    "28000 … notify 28003, Kafka 29092, PostgreSQL 25434, receiver 28020, Alertmanager 28030,",
    "the pipeline floor's front 28040; its tables are in the schema `bench_floor`, its topics `bench.floor.*`)",
    "and stops everything at the end. Quick trials:",
    '`make bench BENCH_ARGS="--rates 100,500 --seconds 5 --skip peer,floors,intake"`',
    "(`--skip` any of `e2e`, `peer`, `pipeline`, `floors`, `intake`, `deadlines`, `profile`;",
    "`--drain-timeout`, `--profile-seconds`, `--out`; see `.venv/bin/python bench/run.py --help`).",
    "The profiled run uses py-spy (a dev dependency, in `.venv/bin/`), which attaches to the",
    "services with ptrace: where that is not permitted the page says so instead of a profile.",
    "After the end-to-end figures the",
    "bench appends its own sections: routing alone, sla's reads with ten million resolved",
    "orders stored (several minutes to load; `BENCH_READS_ORDERS=0 make bench` leaves it out,",
    "`BENCH_READS_ORDERS=1000000` loads fewer) and sla's deadline scheduler with a million",
    "open deadlines.",
    "",
]
