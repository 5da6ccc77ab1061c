#!/usr/bin/env python
"""Search throughput: stream issues to JSONL several ways, side by side, against the Jira Cloud emulator.

    python bench/search_throughput.py [--issues 50000] [--runs 3] [--page-size 100] [--strict]
    python bench/search_throughput.py --latency 0.15,0.002 --issues 5000 --variants plain,provider,parallel

What runs (each run of each variant in a fresh subprocess, so imports and memory do not leak from
one into the next; the emulator runs in this, the parent, process):

(a) ``plain``: a bare ``requests.Session`` loop over ``POST /rest/api/3/search/jql`` with
    ``nextPageToken``: the floor nothing can beat by much.
(b) ``provider``: ``JiraClient.search_issues`` with ``JiraBasicAuth``.
(c) ``atlassian``: atlassian-python-api, the library under apache-airflow-providers-atlassian-jira,
    as ``Jira(url, username, password, cloud=True).enhanced_jql_get_list_of_tickets(...)``. It
    returns one list, so it cannot stream: the issues are written once it has them all.
(c2) ``atlassian-pages``: the same library's ``enhanced_jql`` called page by page in a loop the
    caller writes, which can stream: it separates the library's per-request cost from the list.
(d) the official provider's ``JiraHook`` tried against the emulator: it cannot search Jira Cloud.
(e) ``parallel-N``: ``JiraClient.search_issues(parallelism=N)`` for each N of ``--parallelism``
    (default 8): ids listed 5,000 a page, fields fetched with ``issue/bulkfetch`` on N threads.
(f) ``partition-N`` (only with ``--variants``): the other strategy considered, JQL partitioning:
    the id range split into N parts (``AND id >= a AND id < b``), each part searched page by
    page on its own thread, the parts yielded one after the other. To keep the order, the parts
    after the one being read are held in memory: its memory grows with the result.

Rate-limit mode (``--rate-limit PER_SECOND``, see bench/rate_limits.py): ``GET /myself`` calls under
Jira's burst limit, on one thread and several sharing a client, the plain ``requests`` loop beside
the client without and with its pacer; then a spent quota (a ``jira-quota-global-based`` 429 with
its reset ahead) met by threads sharing a client.

Latency mode (``--latency PER_CALL,PER_ISSUE[,PER_ID]``): the emulator answers like Jira Cloud,
each REST answer ``PER_CALL`` seconds late plus ``PER_ISSUE`` per issue with fields (and ``PER_ID``
per issue listed by id only, default 0). Then the checks are the parallel search's: at least
``MIN_PARALLEL_RATIO`` times the plain loop's issues/s, and its memory growth below the ceiling.

Every variant asks for the same fields and writes each issue with the same ``json.dumps`` call to
a JSONL file; the files are compared byte for byte afterwards.

Figures: issues/s (best and median of the runs), the worker's own CPU time, and peak memory growth
while streaming: the kernel's peak RSS of the worker (``VmHWM``) after streaming minus its RSS after
imports, the peak having been reset to the current RSS through ``/proc/self/clear_refs`` right
before streaming; the worst run is reported. Not ``ru_maxrss``: a child inherits its parent's peak
through fork and exec, and the parent here holds the emulator's issues, so the child's
``ru_maxrss`` starts above anything it does itself. (Where ``/proc`` is missing, the ``ru_maxrss``
delta is used instead and the output says it may read low.) Wall-clock figures include the
emulator's own time to answer, the same for every variant; on a busy machine compare the best runs
and the CPU column.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # measure the working tree, installed or not
if str(REPO / "bench") not in sys.path:
    sys.path.insert(0, str(REPO / "bench"))

import rate_limits  # noqa: E402 - bench/rate_limits.py: the rate-limit mode

JQL = "project = ENG ORDER BY key"
FIELDS = ["summary", "status", "labels"]
TARGET_ENV = "SEARCH_BENCH_TARGET"  # the worker's connection details, as JSON (kept out of argv)
HOOK_CONN_ID = "jira_bench"

#: Throughput floor and memory ceiling for the provider (the task's targets).
MIN_THROUGHPUT_RATIO = 0.9
MAX_MEMORY_GROWTH_MB = 50.0
#: In latency mode: the parallel search's floor, in multiples of the plain loop's issues/s.
MIN_PARALLEL_RATIO = 4.0


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    needs: str | None = None  # an importable module the variant needs


VARIANTS = (
    Variant("plain", "(a) plain requests.Session loop, POST search/jql"),
    Variant("provider", "(b) this provider: JiraClient.search_issues"),
    Variant("atlassian", "(c) atlassian Jira(cloud=True).enhanced_jql_get_list_of_tickets", "atlassian"),
    Variant("atlassian-pages", "(c2) atlassian Jira(cloud=True).enhanced_jql, page loop", "atlassian"),
)


def _variant(name: str) -> Variant:
    """A fixed variant, or ``parallel-N`` / ``partition-N``."""
    for variant in VARIANTS:
        if variant.name == name:
            return variant
    kind, _, threads = name.partition("-")
    if kind == "parallel" and threads.isdigit():
        return Variant(name, f"(e) this provider: search_issues(parallelism={threads}), ids + bulkfetch")
    if kind == "partition" and threads.isdigit():
        return Variant(name, f"(f) JQL partitioning: {threads} id ranges searched side by side")
    raise SystemExit(f"unknown variant {name!r}")


# -- the worker: one variant, one run, in its own process -----------------------------------------


def _reset_peak_rss() -> bool:
    """Make the kernel's RSS high-water mark (what ru_maxrss reads) the current RSS."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def _max_rss_kb() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss // 1024 if sys.platform == "darwin" else rss  # bytes on macOS, KiB on Linux


def _proc_status_kb(key: str) -> int | None:
    """``VmRSS`` (current) or ``VmHWM`` (peak) of this process from ``/proc``, in KiB."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _write_jsonl(issues: Iterable[dict[str, Any]], out: Path) -> int:
    dumps = json.dumps
    count = 0
    with out.open("w", encoding="utf-8") as sink:
        for issue in issues:
            sink.write(dumps(issue))
            sink.write("\n")
            count += 1
    return count


def _import_variant(name: str) -> None:
    """Import what the variant needs before the memory baseline is taken."""
    import requests  # noqa: F401

    if name == "provider" or name.startswith("parallel-"):
        import airflow_provider_jira_auth.auth.basic
        import airflow_provider_jira_auth.client
        import airflow_provider_jira_auth.client.http  # noqa: F401
    elif name.startswith("atlassian"):
        import atlassian  # noqa: F401


def _plain(target: dict[str, Any], page_size: int) -> Iterable[dict[str, Any]]:
    import requests

    url = f"{target['url']}/rest/api/3/search/jql"
    body: dict[str, Any] = {"jql": JQL, "fields": FIELDS, "maxResults": page_size}
    with requests.Session() as session:
        session.auth = (target["email"], target["token"])
        session.headers["Accept"] = "application/json"
        while True:
            response = session.post(url, json=body, timeout=30)
            response.raise_for_status()
            page = response.json()
            yield from page.get("issues") or []
            token = page.get("nextPageToken")
            if page.get("isLast") or not token:
                return
            body["nextPageToken"] = token


def _provider(target: dict[str, Any], page_size: int, parallelism: int = 1) -> Iterable[dict[str, Any]]:
    from airflow_provider_jira_auth.auth.basic import JiraBasicAuth
    from airflow_provider_jira_auth.client import JiraClient, site_rest_url

    auth = JiraBasicAuth(target["email"], target["token"])
    with JiraClient(site_rest_url(target["url"]), auth) as client:
        yield from client.search_issues(JQL, fields=FIELDS, page_size=page_size, parallelism=parallelism)


def _partitioned(target: dict[str, Any], page_size: int, parts: int) -> Iterable[dict[str, Any]]:
    """JQL partitioning: the id range cut in ``parts``, each searched on its own thread, read in order.

    Order is kept only because the JQL orders by key, which the ids follow here; for any other
    ORDER BY the parts would have to be merged on Jira's sort keys. The parts after the one being
    read pile up in memory (unbounded queues): bounding them would stall their threads.
    """
    import queue
    import threading

    import requests

    url = f"{target['url']}/rest/api/3/search/jql"
    auth = (target["email"], target["token"])
    base = JQL.partition(" ORDER BY ")[0]

    def first_id(order: str) -> int:
        body = {"jql": f"{base} ORDER BY id {order}", "fields": ["id"], "maxResults": 1}
        response = requests.post(url, json=body, auth=auth, timeout=30)
        response.raise_for_status()
        return int(response.json()["issues"][0]["id"])

    low, high = first_id("ASC"), first_id("DESC") + 1
    step = -(-(high - low) // parts)
    queues: list[queue.Queue[list[dict[str, Any]] | None]] = [queue.Queue() for _ in range(parts)]

    def read(part: int) -> None:
        start = low + part * step
        body: dict[str, Any] = {
            "jql": f"{base} AND id >= {start} AND id < {start + step} ORDER BY key",
            "fields": FIELDS,
            "maxResults": page_size,
        }
        with requests.Session() as session:
            session.auth = auth
            while True:
                response = session.post(url, json=body, timeout=30)
                response.raise_for_status()
                page = response.json()
                queues[part].put(page.get("issues") or [])
                token = page.get("nextPageToken")
                if page.get("isLast") or not token:
                    break
                body["nextPageToken"] = token
        queues[part].put(None)

    threads = [threading.Thread(target=read, args=(n,), daemon=True) for n in range(parts)]
    for thread in threads:
        thread.start()
    for part in queues:
        while (issues := part.get()) is not None:
            yield from issues


def _atlassian_client(target: dict[str, Any]) -> Any:
    from atlassian import Jira

    return Jira(url=target["url"], username=target["email"], password=target["token"], cloud=True)


def _atlassian_list(target: dict[str, Any], issues: int) -> list[dict[str, Any]]:
    # Its ``limit`` is both maxResults (the page size) and a cap on the total: limit=100 would stop
    # after one page. So it gets the total and Jira's own per-page cap sets the page size.
    return _atlassian_client(target).enhanced_jql_get_list_of_tickets(JQL, fields=FIELDS, limit=issues)


def _atlassian_pages(target: dict[str, Any], page_size: int) -> Iterable[dict[str, Any]]:
    jira = _atlassian_client(target)
    token = None
    while True:
        page = jira.enhanced_jql(JQL, fields=FIELDS, nextPageToken=token, limit=page_size) or {}
        yield from page.get("issues") or []
        token = page.get("nextPageToken")
        if page.get("isLast") or not token:
            return


def run_worker(name: str, issues: int, page_size: int, out: Path) -> dict[str, Any]:
    target = json.loads(os.environ[TARGET_ENV])
    _import_variant(name)
    gc.collect()
    reset = _reset_peak_rss()
    baseline_kb = _proc_status_kb("VmRSS") if reset else None
    if baseline_kb is None:
        reset, baseline_kb = False, _max_rss_kb()

    started, cpu_started = time.perf_counter(), time.process_time()
    if name == "plain":
        written = _write_jsonl(_plain(target, page_size), out)
    elif name == "provider":
        written = _write_jsonl(_provider(target, page_size), out)
    elif name.startswith("parallel-"):
        written = _write_jsonl(_provider(target, page_size, int(name.partition("-")[2])), out)
    elif name.startswith("partition-"):
        written = _write_jsonl(_partitioned(target, page_size, int(name.partition("-")[2])), out)
    elif name == "atlassian":
        written = _write_jsonl(_atlassian_list(target, issues), out)
    elif name == "atlassian-pages":
        written = _write_jsonl(_atlassian_pages(target, page_size), out)
    else:
        raise SystemExit(f"unknown variant {name!r}")
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    peak_kb = _proc_status_kb("VmHWM") if reset else None

    return {
        "variant": name,
        "issues": written,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "baseline_kb": baseline_kb,
        "growth_kb": max(0, (peak_kb if peak_kb is not None else _max_rss_kb()) - baseline_kb),
        "peak_reset": reset and peak_kb is not None,
    }


# -- (d): the official provider's JiraHook ----------------------------------------------------------


def _attempt(call: str, fn: Any) -> dict[str, Any]:
    try:
        result = fn()
    except Exception as exc:  # noqa: BLE001 - the point is to show which error comes back
        response = getattr(exc, "response", None)
        return {
            "call": call,
            "error": type(exc).__name__,
            "message": str(exc),
            "status": getattr(response, "status_code", None),
        }
    return {"call": call, "error": None, "result": f"{type(result).__name__} of {len(result or [])}"}


def run_official_hook_worker() -> dict[str, Any]:
    target = json.loads(os.environ[TARGET_ENV])
    report: dict[str, Any] = {}
    try:
        provider_version = version("apache-airflow-providers-atlassian-jira")
        from airflow.providers.atlassian.jira.hooks.jira import JiraHook
    except (PackageNotFoundError, ImportError) as exc:
        report["installed"] = False
        report["why"] = f"{type(exc).__name__}: {exc}"
        from atlassian import Jira

        # Exactly what JiraHook.get_conn() builds (provider 3.4.1): no ``cloud`` argument.
        clients = {
            "atlassian.Jira(url, username, password, verify_ssl=True, proxies=None, api_version='2', "
            "api_root='rest/api', cloud=False)": Jira(
                url=target["url"],
                username=target["email"],
                password=target["token"],
                verify_ssl=True,
                proxies=None,
                api_version="2",
                api_root="rest/api",
                cloud=False,
            )
        }
    else:
        report["installed"] = True
        report["version"] = provider_version
        # A connection like a user would write, even asking for cloud in extra: the hook reads
        # only ``verify`` from extra and never passes ``cloud=True`` to atlassian.Jira.
        os.environ[f"AIRFLOW_CONN_{HOOK_CONN_ID.upper()}"] = json.dumps(
            {
                "conn_type": "jira",
                "host": target["url"],
                "login": target["email"],
                "password": target["token"],
                "extra": {"cloud": True},
            }
        )
        clients = {
            f"JiraHook(jira_conn_id={HOOK_CONN_ID!r}).get_conn()": JiraHook(jira_conn_id=HOOK_CONN_ID).get_conn(),
            f"JiraHook(jira_conn_id={HOOK_CONN_ID!r}, api_version=3).get_conn()": JiraHook(
                jira_conn_id=HOOK_CONN_ID, api_version=3
            ).get_conn(),
        }
    report["clients"] = []
    for how, client in clients.items():
        report["clients"].append(
            {
                "how": how,
                "class": f"{type(client).__module__}.{type(client).__qualname__}",
                "cloud": client.cloud,
                "attempts": [
                    _attempt("jql", lambda c=client: c.jql(JQL, fields=FIELDS, limit=100)),
                    _attempt("enhanced_jql", lambda c=client: c.enhanced_jql(JQL, fields=FIELDS, limit=100)),
                    _attempt(
                        "enhanced_jql_get_list_of_tickets",
                        lambda c=client: c.enhanced_jql_get_list_of_tickets(JQL, fields=FIELDS, limit=100),
                    ),
                ],
            }
        )
    return report


# -- the parent: emulator, runs, table ----------------------------------------------------------------


@dataclass
class Results:
    variant: Variant
    rates: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    growth_mb: list[float] = field(default_factory=list)
    requests: set[str] = field(default_factory=set)  # "POST x500"
    peak_reset: bool = True
    digests: set[str] = field(default_factory=set)
    skipped: str | None = None
    concurrency: int = 0  # most REST calls the emulator served at once in any run

    @property
    def best_rate(self) -> float:
        return max(self.rates)

    @property
    def worst_growth(self) -> float:
        return max(self.growth_mb)


def _spawn(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"worker {' '.join(args[:2])} failed with exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _importable(module: str) -> bool:
    probe = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, check=False)
    return probe.returncode == 0


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _search_calls(recorded: list[Any]) -> tuple[str, list[int]]:
    calls = [r for r in recorded if r.path.endswith("/search/jql")]
    fetches = [r for r in recorded if r.path.endswith("/issue/bulkfetch")]
    methods = sorted({r.method for r in calls})
    statuses = sorted({r.status for r in calls + fetches if r.status is not None})
    said = f"{'/'.join(methods)} x{len(calls)}"
    if fetches:
        said += f" + bulkfetch x{len(fetches)}"
    return said, statuses


def _digest(path: Path) -> tuple[str, int]:
    sha, lines = hashlib.sha256(), 0
    with path.open("rb") as data:
        for line in data:
            sha.update(line)
            lines += 1
    return sha.hexdigest(), lines


def _load() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.1f} (1 min), {five:.1f} (5 min)"


def _print_machine(args: argparse.Namespace) -> None:
    print("Rate limits: calls under Jira's burst limit and a spent quota" if getattr(args, "rate_limit", None)
          else "Search throughput: streaming Jira issues to JSONL")
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.machine()}, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()} ({platform.python_implementation()}); load average {_load()}"
    )
    print(
        f"versions: requests {_package_version('requests')}, atlassian-python-api "
        f"{_package_version('atlassian-python-api')}, apache-airflow-providers-atlassian-jira "
        f"{_package_version('apache-airflow-providers-atlassian-jira')}"
    )
    if getattr(args, "rate_limit", None):
        return  # the rate-limit mode prints its own workload
    print(
        f"workload: {args.issues:,} issues, JQL {JQL!r}, fields {','.join(FIELDS)}, page size {args.page_size}, "
        f"best of {args.runs} run(s); each run of each variant in a fresh subprocess, the emulator in the parent"
    )


def _fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def _print_table(results: list[Results], plain: Results) -> None:
    header = (
        f"{'variant':<64} {'issues/s best':>13} {'median':>8} {'wall s':>6} {'CPU s':>6} {'vs plain':>8} "
        f"{'peak MB':>7} {'at once':>7} {'calls':>12}"
    )
    print()
    print(header)
    print("-" * len(header))
    for res in results:
        if res.skipped:
            print(f"{res.variant.label:<64} skipped: {res.skipped}")
            continue
        print(
            f"{res.variant.label:<64} {_fmt_rate(res.best_rate):>13} {_fmt_rate(statistics.median(res.rates)):>8} "
            f"{min(res.seconds):>6.2f} {min(res.cpu_seconds):>6.2f} {res.best_rate / plain.best_rate:>7.2f}x "
            f"{res.worst_growth:>7.1f} {res.concurrency:>7} {', '.join(sorted(res.requests)):>12}"
        )
    print()
    for res in results:
        if not res.skipped:
            runs = " ".join(_fmt_rate(r) for r in res.rates)
            print(f"  {res.variant.name:<16} issues/s of each run: {runs}")


def _print_notes(results: list[Results], args: argparse.Namespace) -> None:
    active = [r for r in results if not r.skipped]
    method = (
        "the worker's VmHWM after streaming minus its VmRSS after imports (peak reset via /proc/self/clear_refs)"
        if all(r.peak_reset for r in active)
        else "ru_maxrss delta from after imports (no /proc peak reset here: may read low)"
    )
    print("  issues/s best: wall clock, fastest run; wall s / CPU s: fastest run's wall time and the worker's CPU time")
    print(f"  peak MB: peak RSS growth while streaming, worst of the runs: {method}")
    print(
        "  calls: what the emulator saw in each run (method x count); at once: most calls it served at the same time; "
        "vs plain: best issues/s over the plain loop's"
    )
    if any(r.variant.name == "atlassian" for r in active):
        print(
            "  (c) cannot stream: enhanced_jql_get_list_of_tickets() returns one list of every issue, written "
            "afterwards. Its `limit` is both maxResults and the cap on the total (limit=100 stops after 100 issues), "
            f"so it was called with limit={args.issues}, sending maxResults={args.issues}; Jira's per-page cap "
            "set the page size (see search calls)"
        )


def _print_ratios(results: list[Results], plain: Results) -> None:
    print()
    for res in results:
        if res is plain or res.skipped:
            continue
        # A difference, not a ratio: the plain loop's growth is close to zero.
        extra = res.worst_growth - plain.worst_growth
        print(
            f"ratio {res.variant.name}/plain issues/s: {res.best_rate / plain.best_rate:.2f}x; "
            f"CPU time {min(res.cpu_seconds) / min(plain.cpu_seconds):.2f}x; "
            f"peak memory growth {res.worst_growth:.1f} MB vs {plain.worst_growth:.1f} MB ({extra:+.1f} MB)"
        )


def _describe(recorded: Any) -> str:
    query = f"?{urlencode(recorded.query)}" if recorded.query else ""
    return f"{recorded.method} {recorded.path}{query} -> {recorded.status}"


def _print_official_hook(report: dict[str, Any], recorded: list[Any]) -> None:
    print()
    if report["installed"]:
        print(
            f"(d) apache-airflow-providers-atlassian-jira {report['version']}, its real JiraHook; connection "
            f"{HOOK_CONN_ID!r} from AIRFLOW_CONN_{HOOK_CONN_ID.upper()}: the emulator's URL, Basic auth, "
            'extra {"cloud": true}'
        )
    else:
        print(
            f"(d) apache-airflow-providers-atlassian-jira is not installed ({report['why']}): reproduced with "
            "the atlassian.Jira that JiraHook.get_conn() builds (provider 3.4.1), whose arguments have no cloud=True"
        )
    for client in report["clients"]:
        print(f"    {client['how']} -> {client['class']}, cloud={client['cloud']}")
        for attempt in client["attempts"]:
            if attempt["error"] is None:
                print(f"      .{attempt['call']}(JQL, fields, limit=100) -> returned {attempt['result']} (UNEXPECTED)")
                continue
            status = f"HTTP {attempt['status']} " if attempt["status"] else ""
            message = " ".join(attempt["message"].split())
            print(f"      .{attempt['call']}(JQL, fields, limit=100) -> {status}{attempt['error']}: {message[:100]}")
    seen = [_describe(r) for r in recorded if r.path.startswith("/rest/")]
    print("    the emulator saw: " + ("; ".join(seen) if seen else "no REST call"))
    searched = any(r.path.endswith("/search/jql") and r.status == 200 for r in recorded)
    refused = all(a["error"] for c in report["clients"] for a in c["attempts"])
    if refused and not searched:
        verdict = (
            "cannot search Jira Cloud: jql() calls the removed startAt search (410 Gone) and enhanced_jql*() "
            "refuse before sending anything, because the hook never sets cloud=True (extra is ignored but for verify)"
        )
    else:
        verdict = "searched the emulator after all: read the lines above"
    print(f"    => JiraHook {verdict}")


def _latency(text: str | None) -> tuple[float, float, float] | None:
    if not text:
        return None
    try:
        parts = [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("--latency takes PER_CALL,PER_ISSUE[,PER_ID] in seconds") from None
    if not 1 <= len(parts) <= 3 or min(parts) < 0:
        raise argparse.ArgumentTypeError("--latency takes PER_CALL,PER_ISSUE[,PER_ID] in seconds, each >= 0")
    return (parts + [0.0, 0.0])[0], (parts + [0.0, 0.0])[1], (parts + [0.0, 0.0])[2]


def _chosen_variants(args: argparse.Namespace) -> list[Variant]:
    threads = [int(n) for n in str(args.parallelism).split(",") if n.strip()]
    names: list[str] = []
    wanted = args.variants.split(",") if args.variants else [v.name for v in VARIANTS] + ["parallel"]
    for name in (n.strip() for n in wanted if n.strip()):
        if name in ("parallel", "partition"):
            names += [f"{name}-{n}" for n in threads]
        else:
            names.append(name)
    if "plain" not in names:
        names.insert(0, "plain")  # every ratio is to the plain loop
    return [_variant(name) for name in dict.fromkeys(names)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issues", type=int, default=50_000, help="issues to seed and stream (default 50000)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each variant; the best counts (default 3)")
    parser.add_argument("--page-size", type=int, default=100, help="issues per search request (default 100)")
    parser.add_argument(
        "--latency",
        type=_latency,
        metavar="PER_CALL,PER_ISSUE[,PER_ID]",
        help="emulator answer delays in seconds, like Jira Cloud's: e.g. 0.15,0.002 (default: none)",
    )
    parser.add_argument(
        "--parallelism", default="8", help="threads of the parallel variants, comma-separated (default 8)"
    )
    parser.add_argument(
        "--variants",
        help="comma-separated: plain, provider, atlassian, atlassian-pages, parallel, partition, parallel-N, "
        "partition-N (default: all but partition; plain is always run)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    rate_limits.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.rate_limit:
        _print_machine(args)
        return rate_limits.run(args.rate_limit, args.calls, args.threads, args.quota_reset, args.strict)
    if args.issues < 1 or args.runs < 1 or not 1 <= args.page_size <= 5000:
        parser.error("--issues and --runs must be >= 1, --page-size 1..5000")

    if args.worker == "official-hook":
        print(json.dumps(run_official_hook_worker()))
        return 0
    if args.worker:
        print(json.dumps(run_worker(args.worker, args.issues, args.page_size, Path(args.out))))
        return 0

    from airflow_provider_jira_auth.testing import JiraCloudEmulator

    _print_machine(args)
    if args.latency:
        per_call, per_issue, per_id = args.latency
        print(
            f"latency mode: every REST answer {per_call:g} s late + {per_issue * 1000:g} ms an issue with fields "
            f"+ {per_id * 1000:g} ms an issue listed by id only"
        )
    results = [Results(v) for v in _chosen_variants(args)]
    by_name = {res.variant.name: res for res in results}
    for res in results:
        if res.variant.needs and not _importable(res.variant.needs):
            res.skipped = f"{res.variant.needs} is not installed (pip install -e '.[bench]')"

    with JiraCloudEmulator() as emu, tempfile.TemporaryDirectory(prefix="search-bench-") as tmp:
        started = time.perf_counter()
        emu.seed_issues(project="ENG", count=args.issues)
        print(f"emulator: {emu.url}, {args.issues:,} issues seeded in {time.perf_counter() - started:.1f} s")
        gc.freeze()  # the seeded issues are permanent: keep the emulator's collector from rescanning them
        if args.latency:
            emu.set_answer_delays(args.latency[0], args.latency[1], per_id=args.latency[2])
        user = emu.default_user
        env = dict(os.environ)
        env[TARGET_ENV] = json.dumps({"url": emu.url, "email": user.email, "token": user.api_token})
        env["AIRFLOW_HOME"] = str(Path(tmp) / "airflow-home")  # for (d): keep Airflow out of ~/airflow

        active = [res for res in results if not res.skipped]
        for run in range(args.runs):
            shift = run % len(active)  # rotate the order so no variant always goes first
            for res in active[shift:] + active[:shift]:
                out = Path(tmp) / f"{res.variant.name}.jsonl"
                emu.reset_requests()
                emu.reset_stats()
                got = _spawn(
                    [
                        "--worker",
                        res.variant.name,
                        "--issues",
                        str(args.issues),
                        "--page-size",
                        str(args.page_size),
                        "--out",
                        str(out),
                    ],
                    env,
                )
                calls, statuses = _search_calls(emu.requests)
                digest, lines = _digest(out)
                out.unlink()
                if got["issues"] != args.issues or lines != args.issues or statuses != [200]:
                    raise SystemExit(
                        f"{res.variant.name}: wrote {got['issues']} issues ({lines} lines) of {args.issues}; "
                        f"search statuses {statuses}"
                    )
                res.digests.add(digest)
                res.requests.add(calls)
                res.concurrency = max(res.concurrency, emu.stats.peak_concurrent_calls)
                res.rates.append(got["issues"] / got["seconds"])
                res.seconds.append(got["seconds"])
                res.cpu_seconds.append(got["cpu_seconds"])
                res.growth_mb.append(got["growth_kb"] / 1024)
                res.peak_reset = res.peak_reset and got["peak_reset"]

        emu.reset_requests()
        atlassian = by_name.get("atlassian")
        has_atlassian = atlassian is not None and not atlassian.skipped
        hook_report = _spawn(["--worker", "official-hook"], env) if has_atlassian else None
        hook_requests = emu.requests

    plain = by_name["plain"]
    _print_table(results, plain)
    print(f"  load average after the runs: {_load()}")
    _print_notes(results, args)
    digests = {d for res in active for d in res.digests}
    print(f"  JSONL written: byte-identical across variants and runs: {'yes' if len(digests) == 1 else 'NO'}")
    _print_ratios(results, plain)

    checks = []
    provider = by_name.get("provider")
    if provider is not None:
        ratio = provider.best_rate / plain.best_rate
        checks += [
            (
                ratio >= MIN_THROUGHPUT_RATIO,
                f"provider issues/s >= {MIN_THROUGHPUT_RATIO}x the plain loop: {ratio:.2f}x",
            ),
            (
                provider.worst_growth < MAX_MEMORY_GROWTH_MB,
                (
                    f"provider peak memory growth < {MAX_MEMORY_GROWTH_MB:.0f} MB streaming {args.issues:,} issues "
                    f"to JSONL: {provider.worst_growth:.1f} MB"
                ),
            ),
        ]
    for res in results:
        if not res.variant.name.startswith("parallel-"):
            continue
        ratio = res.best_rate / plain.best_rate
        if args.latency and int(res.variant.name.partition("-")[2]) >= 8:  # the target is for 8 threads
            checks.append(
                (
                    ratio >= MIN_PARALLEL_RATIO,
                    f"{res.variant.name} issues/s >= {MIN_PARALLEL_RATIO:g}x the plain loop with latency: {ratio:.2f}x",
                )
            )
        checks.append(
            (
                res.worst_growth < MAX_MEMORY_GROWTH_MB,
                f"{res.variant.name} peak memory growth < {MAX_MEMORY_GROWTH_MB:.0f} MB streaming {args.issues:,} "
                f"issues to JSONL: {res.worst_growth:.1f} MB",
            )
        )
    print()
    for ok, text in checks:
        print(f"{'PASS' if ok else 'FAIL'} {text}")

    if hook_report is not None:
        _print_official_hook(hook_report, hook_requests)
    elif atlassian is not None:
        print("\n(d) skipped: neither apache-airflow-providers-atlassian-jira nor atlassian-python-api is installed")

    if len(digests) != 1:
        print("error: the variants wrote different JSONL", file=sys.stderr)
        return 1
    return 1 if args.strict and not all(ok for ok, _ in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
