"""Run the example DAGs end to end against the Jira Cloud emulator and say what happened.

Used by ``make demo``, and by ``make compat`` with each older Airflow's virtualenv (run this
script with that virtualenv's python). Airflow keeps its metadata in SQLite under
``.airflow-demo/`` (or ``$JIRA_DEMO_HOME``), and the emulator listens on 127.0.0.1.

Every DAG runs through Airflow's own ``airflow dags test`` command (its CLI parser and command
function), one DAG after the other in a single Airflow process: each ``airflow dags test``
process would otherwise spend most of its time starting Airflow and building the in-process
execution API, which the command builds once per process. That process's output is split into
one log per DAG.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from datetime import datetime, timedelta, timezone
from pathlib import Path

from airflow_provider_jira_auth.testing import JiraCloudEmulator

ROOT = Path(__file__).resolve().parents[1]
HOME = Path(os.environ.get("JIRA_DEMO_HOME") or ROOT / ".airflow-demo").resolve()
AIRFLOW = str(Path(sys.executable).with_name("airflow"))

# dag id -> the connection it uses
EXAMPLES = {
    "jira_basic_triage": "basic",
    "jira_operators_basic": "basic",
    "jira_operators_notifier": "basic",
    "jira_oauth_keepalive": "oauth2",
    "jira_operators_oauth": "oauth2",
    # Scheduled on an asset a JiraIssuesChangedTrigger watches: `dags test` runs it by hand, with
    # no triggering event (it then does nothing); the event path needs a triggerer (tests/events).
    "jira_issue_events": "basic",
    # Two simulated days: each day's export, then the reader of its asset event (see INCREMENTAL_RUNS).
    "jira_incremental_export": "basic",
    "jira_incremental_export_reader": "basic",
}
OAUTH_CONN_ID = "jira_cloud_oauth"
#: Airflow logs a failing callback and carries on: a run can succeed with its callback broken.
CALLBACK_FAILURES = ("Failed to run task callback", "Failed to send notification", "NO Jira ticket was opened")


def notifier_ticket_problem(emu: JiraCloudEmulator) -> str | None:
    """What is wrong with the ticket the notifier example must leave (None: it is there, with the error)."""
    label = "airflow:jira_operators_notifier:flaky_extract"
    for key in emu.issue_keys("ENG"):
        fields = emu.get_issue(key)["fields"]
        if label in fields.get("labels", []):
            if "the source database did not answer" not in json.dumps(fields.get("description")):
                return f"{key} does not carry the task's error"
            return None
    return f"the notifier opened no ticket labelled {label}"


#: Written by the Airflow process between DAGs: "<MARK> start <dag id>", "<MARK> end <dag id> <exit code>".
MARK = "#### run_examples"


class TwoDays:
    """``jira_incremental_export`` over two simulated days (logical dates two and one days ago).

    Before day 1 the project has three issues changed on day 1, one in its last minute; between
    the runs, day 2 brings an edit in its first minute, a new issue and an edit in its last
    minute. The Jira user is in Asia/Kolkata. Each day's export must hold exactly that day's
    changes, and the reader (run after each export) must read the file the event names.
    """

    def __init__(self) -> None:
        midnight = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        self.day1, self.day2 = midnight - timedelta(days=2), midnight - timedelta(days=1)
        self.expected: dict[str, set[str]] = {}
        self.seeded: set[str] = set()

    def runs(self) -> list[tuple[str, list[str]]]:
        """(label, `airflow dags test` arguments) in order."""
        reader = "jira_incremental_export_reader"
        return [
            ("jira_incremental_export@day1", ["jira_incremental_export", self.day1.isoformat()]),
            (f"{reader}@day1", [reader]),
            ("jira_incremental_export@day2", ["jira_incremental_export", self.day2.isoformat()]),
            (f"{reader}@day2", [reader]),
        ]

    def before(self, label: str, emu: JiraCloudEmulator) -> None:
        """What happens in Jira before the run ``label``."""
        s = timedelta(seconds=1)
        if label == "jira_incremental_export@day1":
            emu.default_user.time_zone = "Asia/Kolkata"
            d1 = self.day1
            self.early = emu.seed_issue(summary="Changed on day 1", created=d1 - timedelta(days=3), updated=d1 - timedelta(hours=20))
            self.last = emu.seed_issue(summary="Changed in day 1's last minute", created=d1 - timedelta(days=3), updated=d1 - 30 * s)
            self.moved = emu.seed_issue(summary="Changed on day 1, again on day 2", created=d1 - timedelta(hours=2))
            self.expected["day1"] = {self.early, self.last, self.moved}
            self.seeded |= self.expected["day1"]
        elif label == "jira_incremental_export@day2":
            d1, d2 = self.day1, self.day2
            emu.edit_issue(self.moved, {"labels": ["edited"]}, at=d1 + 20 * s)
            fresh = emu.seed_issue(summary="Opened on day 2", created=d1 + timedelta(hours=12), assignee=emu.default_user)
            emu.edit_issue(self.early, status="Done", at=d2 - 10 * s)
            self.expected["day2"] = {self.moved, fresh, self.early}
            self.seeded.add(fresh)

    def problem(self, label: str, emu: JiraCloudEmulator) -> str | None:
        """What is wrong with the file of the export ``label`` (None: exactly the day's changes)."""
        day = label.rpartition("@")[2]
        if not label.startswith("jira_incremental_export@"):
            return None
        when = self.day1 if day == "day1" else self.day2
        path = HOME / "exports" / "eng" / f"{when:%Y%m%dT%H%M%S}.jsonl"
        if not path.exists():
            return f"no export at {path}"
        keys = [json.loads(line)["key"] for line in path.read_text().splitlines()]
        if sorted(keys) != sorted(self.expected[day]):
            return f"{path.name} holds {sorted(keys)}, expected {sorted(self.expected[day])}"
        return None


TWO_DAYS = TwoDays()

# dag id -> what must hold afterwards, besides `airflow dags test` succeeding
OUTCOMES = {"jira_operators_notifier": notifier_ticket_problem}


def _iso(epoch: float | None) -> str:
    return "-" if epoch is None else datetime.fromtimestamp(float(epoch), tz=timezone.utc).isoformat(timespec="seconds")


def airflow_env(emu: JiraCloudEmulator) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AIRFLOW_HOME=str(HOME),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags_examples"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{HOME / 'airflow.db'}",
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
        AIRFLOW_CONN_JIRA_CLOUD_DEFAULT=emu.connection_json(auth_type="basic"),
        JIRA_EXPORT_BASE_URL=(HOME / "exports").as_uri(),
    )
    return env


def run(cmd: list[str], env: dict[str, str], log_name: str, *, may_fail: bool = False) -> subprocess.CompletedProcess:
    log = HOME / log_name
    with log.open("a") as out:
        proc = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    if proc.returncode != 0 and not may_fail:
        tail = log.read_text().splitlines()[-40:]
        print(f"\n$ {' '.join(cmd)} failed (exit {proc.returncode}); last lines of {log}:")
        print("\n".join(tail))
    return proc


def dags_test(
    runs: list[tuple[str, list[str]]], env: dict[str, str], emu: JiraCloudEmulator
) -> dict[str, tuple[int, float, list]]:
    """Run ``airflow dags test <args>`` for each run in one Airflow process; per run label: exit code, seconds, Jira calls.

    Before each run the emulator gets what happens in Jira then (:meth:`TwoDays.before`); the
    Airflow process waits for it. The output before the first run goes to ``dags-test.log``,
    each run's to ``<label>.log``.
    """
    results: dict[str, tuple[int, float, list]] = {}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--dags-test", json.dumps(runs)]
    log = (HOME / "dags-test.log").open("w")
    current = None
    started, before = time.monotonic(), 0
    try:
        with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.PIPE,
                              cwd=ROOT, text=True, errors="replace") as proc:
            assert proc.stdout is not None and proc.stdin is not None
            for line in proc.stdout:
                if line.startswith(MARK):
                    what, label, *rest = line[len(MARK):].split()
                    log.close()
                    if what == "ready":
                        TWO_DAYS.before(label, emu)
                        proc.stdin.write("go\n")
                        proc.stdin.flush()
                    elif what == "start":
                        current, started, before = label, time.monotonic(), len(emu.requests)
                        log = (HOME / f"{label}.log").open("w")
                        continue
                    else:
                        results[label] = (int(rest[0]), time.monotonic() - started, emu.requests[before:])
                        current = None
                    log = (HOME / "dags-test.log").open("a")
                    continue
                log.write(line)
        if proc.returncode and current is None and not results:
            print(f"\nthe Airflow process running the DAGs failed (exit {proc.returncode}); see {HOME / 'dags-test.log'}")
        if current is not None:  # it died inside a DAG
            results[current] = (proc.returncode or 1, time.monotonic() - started, emu.requests[before:])
    finally:
        log.close()
    return results


def _dags_test_here(runs: list[tuple[str, list[str]]]) -> int:
    """In the Airflow process: ``airflow dags test <args>`` for each run, through Airflow's CLI."""
    from airflow.cli import cli_parser

    parser = cli_parser.get_parser()

    def mark(text: str) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.write(1, f"{MARK} {text}\n".encode())

    from airflow_provider_jira_auth._compat import AIRFLOW_V_3_1_PLUS

    if not AIRFLOW_V_3_1_PLUS:
        # Airflow 3.0's `dags test` does not write the DAG to the metadata DB, so the assets a task
        # produces are unknown there and the task fails ("inactive assets"); the DAG processor
        # would register them, and `airflow dags reserialize` does the same once.
        parsed = parser.parse_args(["dags", "reserialize"])
        parsed.func(parsed)

    for label, args in runs:
        mark(f"ready {label}")
        sys.stdin.readline()  # Jira is as it should be for this run
        mark(f"start {label}")
        code = 0
        try:
            parsed = parser.parse_args(["dags", "test", *args])
            parsed.func(parsed)
        except SystemExit as exc:  # "DagRun failed", or an argument error
            if exc.code not in (None, 0):
                print(f"airflow dags test {' '.join(args)}: {exc.code}", file=sys.stderr)
                code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
        mark(f"end {label} {code}")
    return 0


def main() -> int:
    HOME.mkdir(exist_ok=True)
    for old_log in HOME.glob("*.log"):
        old_log.unlink()
    shutil.rmtree(HOME / "exports", ignore_errors=True)
    with JiraCloudEmulator() as emu:
        keys = emu.seed_issues(project="ENG", count=250, labels=["backend", "frontend", "infra", "docs"])
        print(f"Jira Cloud emulator at {emu.url}: project ENG with {len(keys)} issues")
        env = airflow_env(emu)
        started = time.monotonic()
        if run([AIRFLOW, "db", "migrate"], env, "db-migrate.log").returncode:
            return 1
        print(f"Airflow metadata DB ready in {time.monotonic() - started:.1f}s ({HOME / 'airflow.db'})")

        # The 3LO connection lives in the metadata DB, where the provider writes rotated tokens back.
        oauth_json = emu.connection_json("oauth2")
        run([AIRFLOW, "connections", "delete", OAUTH_CONN_ID], env, "connections.log", may_fail=True)
        if run([AIRFLOW, "connections", "add", OAUTH_CONN_ID, "--conn-json", oauth_json], env, "connections.log").returncode:
            return 1
        seed_token = json.loads(oauth_json)["extra"]["refresh_token"]

        failed = []
        runs = [(dag_id, [dag_id]) for dag_id in EXAMPLES if not dag_id.startswith("jira_incremental_export")]
        runs += TWO_DAYS.runs()
        results = dags_test(runs, env, emu)
        for label, _args in runs:
            dag_id = label.partition("@")[0]
            auth = EXAMPLES[dag_id]
            returncode, seconds, calls = results.get(label, (None, 0.0, []))
            log_text = (HOME / f"{label}.log").read_text(errors="replace") if (HOME / f"{label}.log").exists() else ""
            problems = [f"the log says {text!r}" for text in CALLBACK_FAILURES if text in log_text]
            if returncode is None:
                problems.append("airflow dags test never ran it (see dags-test.log)")
            if dag_id in OUTCOMES and (problem := OUTCOMES[dag_id](emu)):
                problems.append(problem)
            if returncode == 0 and (problem := TWO_DAYS.problem(label, emu)):
                problems.append(problem)
            verdict = "succeeded" if returncode == 0 and not problems else "FAILED"
            print(f"\n{label} ({auth} auth): {verdict} in {seconds:.1f}s, "
                  f"{len(calls)} Jira calls; log: {HOME / (label + '.log')}")
            for call in calls:
                print(f"  {call.method:5} {call.path} -> {call.status}")
            for line in log_text.splitlines():
                if "issue(s) changed in" in line and "wrote" not in line:
                    print("  " + line.strip())
            for problem in problems:
                print(f"  problem: {problem}")
            if returncode != 0 and returncode is not None:
                tail = log_text.splitlines()[-40:]
                print(f"  airflow dags test {label} failed (exit {returncode}); last lines of its log:")
                print("\n".join("    " + line for line in tail))
            if returncode or problems:
                failed.append(label)

        stored = json.loads(
            subprocess.run(
                [AIRFLOW, "connections", "get", OAUTH_CONN_ID, "-o", "json"], env=env, capture_output=True, text=True
            ).stdout
        )[0]["extra_dejson"]
        print(
            f"\n{OAUTH_CONN_ID}: Atlassian rotated the refresh token {emu.stats.token_refreshes} time(s); "
            f"the connection now holds the live one: {stored['refresh_token'] != seed_token} "
            f"(rotated at {_iso(stored.get('refresh_rotated_at'))}, access token cached until "
            f"{_iso(stored.get('access_expires_at'))})"
        )

        created = [key for key in emu.issue_keys() if key not in set(keys) | TWO_DAYS.seeded]
        for key in created:
            issue = emu.get_issue(key)
            comments = issue["fields"].get("comment", {}).get("comments", [])
            print(f"\nCreated {key}: {issue['fields']['summary']!r} with {len(comments)} comment(s)")
            print(json.dumps(issue["fields"]["description"], indent=None)[:200] + " ...")
    if failed:
        print(f"\nFailed: {', '.join(failed)}")
        return 1
    print(f"\nAll {len(EXAMPLES)} example DAG(s) ran against the emulator ({len(runs)} runs).")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--dags-test"]:
        sys.exit(_dags_test_here(json.loads(sys.argv[2])))
    sys.exit(main())
