#!/usr/bin/env python
"""Rate limits: calls under Jira's burst limit and through a spent quota, side by side, against the emulator.

    python bench/rate_limits.py [--rate-limit 10] [--calls 300] [--threads 4] [--quota-reset 5] [--strict]
    python bench/search_throughput.py --rate-limit 10 ...      (the same, from the search benchmark)

Burst: the emulator allows ``--rate-limit`` Jira REST calls a second (a token bucket that starts
full, 429 with Jira's headers beyond) and sends Jira's ``X-RateLimit-*`` headers on every answer.
Each variant makes ``--calls`` ``GET /myself`` calls, on one thread and on ``--threads`` threads
sharing one client (or session), against a fresh bucket:

* ``plain``: a bare ``requests.Session`` loop that sleeps ``Retry-After`` on a 429 and sends again;
* ``unpaced``: ``JiraClient(pacer=False)``: the retry policy alone (it honours 429s, no pacing);
* ``paced``: ``JiraClient`` with its site's pacer (``client/pacing.py``).

Figures: seconds, calls/s, the share of the allowed rate reached, 429 answers and failures. The
allowed rate is the best any client can do against the limit: the bucket's first ``limit`` calls
at once, then ``limit`` a second, so ``calls`` take ``(calls - limit) / limit`` seconds at best;
the share is that over the time taken.

Quota: ``--threads`` threads sharing a client call in a loop (staggered, 0.2 s between a thread's
calls); after a second the emulator
answers every call 429 ``jira-quota-global-based`` with the reset ``--quota-reset`` seconds ahead.
Figures: the 429s, the calls the emulator received between the first quota 429 and the reset
(the ones already on the wire when that 429 was sent aside: within 50 ms of it), and how long
after the reset each thread's next call went.

Targets (``--strict`` exits 1 when one is missed): the paced client reaches >= 0.95 of the allowed
rate on one thread and on ``--threads`` threads, with <= 3% of calls answered 429 and no failure;
in the quota run no thread sends between the first 429 and the reset.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # measure the working tree, installed or not

MIN_SHARE = 0.95
MAX_429_SHARE = 0.03
THINK = 0.2  # seconds each thread of the quota run waits between its calls
IN_FLIGHT = 0.05  # seconds: calls this close after the first quota 429 were sent before it was seen


@dataclass
class BurstResult:
    variant: str
    threads: int
    calls: int
    seconds: float
    refused: int
    failures: int
    limit: float

    @property
    def rate(self) -> float:
        return self.calls / self.seconds

    @property
    def share(self) -> float:
        best = max(0.0, (self.calls - self.limit) / self.limit)
        return best / self.seconds if self.seconds else 0.0

    @property
    def refused_share(self) -> float:
        return self.refused / (self.calls + self.refused)


def _plain_call(session: Any, url: str, auth: tuple[str, str]) -> None:
    while True:
        answer = session.get(url, auth=auth, timeout=30)
        if answer.status_code != 429:
            answer.raise_for_status()
            return
        time.sleep(float(answer.headers.get("Retry-After") or 1))


def _threads(count: int, calls: int, call: Callable[[], None]) -> tuple[float, int]:
    """``calls`` calls split over ``count`` threads; (seconds, failures)."""
    failures = [0]
    lock = threading.Lock()
    start = threading.Barrier(count + 1)

    def run(share: int) -> None:
        start.wait()
        for _ in range(share):
            try:
                call()
            except Exception:  # noqa: BLE001 - counted
                with lock:
                    failures[0] += 1

    shares = [calls // count + (1 if n < calls % count else 0) for n in range(count)]
    workers = [threading.Thread(target=run, args=(share,)) for share in shares]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    return time.perf_counter() - began, failures[0]


def run_burst(emu: Any, variant: str, threads: int, calls: int, limit: float) -> BurstResult:
    import requests

    from airflow_provider_jira_auth.auth.basic import JiraBasicAuth
    from airflow_provider_jira_auth.client.http import JiraClient
    from airflow_provider_jira_auth.client.pacing import SitePacer

    user = emu.default_user
    rest = emu.url + "/rest/api/3"
    emu.limit_request_rate(limit)  # a fresh, full bucket
    emu.reset_stats()
    if variant == "plain":
        session = requests.Session()
        url = rest + "/myself"

        def call() -> None:
            _plain_call(session, url, (user.email, user.api_token))

        closer: Callable[[], None] = session.close
    else:
        client = JiraClient(
            rest,
            JiraBasicAuth(user.email, user.api_token),
            pacer=SitePacer(rest) if variant == "paced" else False,
        )
        call, closer = client.myself, client.close
    try:
        seconds, failures = _threads(threads, calls, call)
    finally:
        closer()
    refused = emu.stats["rate_limited"]
    emu.limit_request_rate(None)
    return BurstResult(variant, threads, calls, seconds, refused, failures, limit)


@dataclass
class QuotaResult:
    variant: str
    refused: int
    sent_during_pause: int
    resumed_after_reset: list[float]
    failures: int


def run_quota(emu: Any, variant: str, threads: int, reset_in: float) -> QuotaResult:
    from airflow_provider_jira_auth.auth.basic import JiraBasicAuth
    from airflow_provider_jira_auth.client.http import JiraClient
    from airflow_provider_jira_auth.client.pacing import SitePacer

    user = emu.default_user
    rest = emu.url + "/rest/api/3"
    client = JiraClient(
        rest, JiraBasicAuth(user.email, user.api_token), pacer=SitePacer(rest) if variant == "paced" else False
    )
    emu.reset_requests()
    stop = threading.Event()
    failures = [0]

    def loop(offset: float) -> None:
        time.sleep(offset)  # staggered: the threads are not all on the wire at the same moment
        while not stop.is_set():
            try:
                client.myself()
            except Exception:  # noqa: BLE001 - counted
                failures[0] += 1
            time.sleep(THINK)

    workers = [threading.Thread(target=loop, args=(n * THINK / threads,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    time.sleep(1.0)
    reset = emu.exhaust_quota(reset_in)
    time.sleep(reset_in + 2.0)
    stop.set()
    for worker in workers:
        worker.join()
    client.close()
    calls = [r for r in emu.requests if "/rest/api/" in r.path]
    refusals = [r.time for r in calls if r.status == 429]
    first = min(refusals) if refusals else reset
    during = [r for r in calls if first + IN_FLIGHT < r.time < reset]
    after = sorted(r.time - reset for r in calls if r.time >= reset)
    return QuotaResult(variant, len(refusals), len(during), after[:threads], failures[0])


def run(limit: float, calls: int, threads: int, reset_in: float, strict: bool) -> int:
    from airflow_provider_jira_auth.testing import JiraCloudEmulator

    print(f"burst limit: {limit:g} calls/s; {calls} GET /myself per variant; 1 and {threads} threads sharing a client")
    results: list[BurstResult] = []
    with JiraCloudEmulator() as emu:
        for variant in ("plain", "unpaced", "paced"):
            for count in (1, threads):
                results.append(run_burst(emu, variant, count, calls, limit))
        print(f"{'variant':<10} {'threads':>7} {'seconds':>8} {'calls/s':>8} {'of allowed':>10} {'429s':>6} {'429 share':>9} {'failed':>6}")
        for res in results:
            print(
                f"{res.variant:<10} {res.threads:>7} {res.seconds:>8.2f} {res.rate:>8.2f} {res.share:>10.3f} "
                f"{res.refused:>6} {res.refused_share:>9.1%} {res.failures:>6}"
            )
        plain = {r.threads: r for r in results if r.variant == "plain"}
        for res in results:
            if res.variant != "plain":
                print(f"ratio {res.variant}-{res.threads}/plain calls/s: {res.rate / plain[res.threads].rate:.2f}x")

        print(f"\nquota: {threads} threads calling; after 1 s every call is answered 429 jira-quota-global-based, reset {reset_in:g} s ahead")
        quota = [run_quota(emu, variant, threads, reset_in) for variant in ("unpaced", "paced")]
        for q in quota:
            resumed = ", ".join(f"{s:+.2f}" for s in q.resumed_after_reset)
            print(
                f"{q.variant:<10} 429s {q.refused:>3}; calls sent during the pause: {q.sent_during_pause:>3}; "
                f"first calls after the reset at [{resumed}] s; failed {q.failures}"
            )

    paced = [r for r in results if r.variant == "paced"]
    missed = [
        f"paced-{r.threads}: {r.share:.3f} of the allowed rate, {r.refused_share:.1%} answered 429, {r.failures} failed"
        for r in paced
        if r.share < MIN_SHARE or r.refused_share > MAX_429_SHARE or r.failures
    ]
    paced_quota = quota[-1]
    if paced_quota.sent_during_pause or paced_quota.failures:
        missed.append(f"quota: {paced_quota.sent_during_pause} calls sent during the pause, {paced_quota.failures} failed")
    print("\ntargets (paced): >= %.2f of the allowed rate, <= %.0f%% 429, 0 failures, no call during a quota pause: %s"
          % (MIN_SHARE, MAX_429_SHARE * 100, "met" if not missed else "MISSED: " + "; ".join(missed)))
    return 1 if missed and strict else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run(args.rate_limit or 10.0, args.calls, args.threads, args.quota_reset, args.strict)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the rate-limit mode (the search benchmark takes them too)."""
    parser.add_argument("--rate-limit", type=float, default=None, help="burst limit, calls/s (default 10)")
    parser.add_argument("--calls", type=int, default=300, help="calls per burst variant (default 300)")
    parser.add_argument("--threads", type=int, default=4, help="threads sharing a client (default 4)")
    parser.add_argument("--quota-reset", type=float, default=5.0, help="seconds to the quota's reset (default 5)")
    if not any(action.dest == "strict" for action in parser._actions):  # noqa: SLF001
        parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")


if __name__ == "__main__":
    sys.exit(main())
