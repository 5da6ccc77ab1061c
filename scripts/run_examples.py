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
import subprocess
import sys
import time
import traceback
from datetime import datetime, timezone
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


def dags_test(dag_ids: list[str], env: dict[str, str], emu: JiraCloudEmulator) -> dict[str, tuple[int, float, list]]:
    """Run ``airflow dags test`` for each DAG in one Airflow process; per DAG: exit code, seconds, Jira calls.

    The output before the first DAG goes to ``dags-test.log``, each DAG's to ``<dag id>.log``.
    """
    results: dict[str, tuple[int, float, list]] = {}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--dags-test", *dag_ids]
    log = (HOME / "dags-test.log").open("w")
    current = None
    started, before = time.monotonic(), 0
    try:
        with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT,
                              text=True, errors="replace") as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith(MARK):
                    what, dag_id, *rest = line[len(MARK):].split()
                    log.close()
                    if what == "start":
                        current, started, before = dag_id, time.monotonic(), len(emu.requests)
                        log = (HOME / f"{dag_id}.log").open("w")
                    else:
                        results[dag_id] = (int(rest[0]), time.monotonic() - started, emu.requests[before:])
                        current, log = None, (HOME / "dags-test.log").open("a")
                    continue
                log.write(line)
        if proc.returncode and current is None and not results:
            print(f"\nthe Airflow process running the DAGs failed (exit {proc.returncode}); see {HOME / 'dags-test.log'}")
        if current is not None:  # it died inside a DAG
            results[current] = (proc.returncode or 1, time.monotonic() - started, emu.requests[before:])
    finally:
        log.close()
    return results


def _dags_test_here(dag_ids: list[str]) -> int:
    """In the Airflow process: ``airflow dags test <dag id>`` for each, through Airflow's CLI."""
    from airflow.cli import cli_parser

    parser = cli_parser.get_parser()

    def mark(text: str) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.write(1, f"{MARK} {text}\n".encode())

    for dag_id in dag_ids:
        mark(f"start {dag_id}")
        code = 0
        try:
            args = parser.parse_args(["dags", "test", dag_id])
            args.func(args)
        except SystemExit as exc:  # "DagRun failed", or an argument error
            if exc.code not in (None, 0):
                print(f"airflow dags test {dag_id}: {exc.code}", file=sys.stderr)
                code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
        mark(f"end {dag_id} {code}")
    return 0


def main() -> int:
    HOME.mkdir(exist_ok=True)
    for old_log in HOME.glob("*.log"):
        old_log.unlink()
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
        results = dags_test(list(EXAMPLES), env, emu)
        for dag_id, auth in EXAMPLES.items():
            returncode, seconds, calls = results.get(dag_id, (None, 0.0, []))
            log_text = (HOME / f"{dag_id}.log").read_text(errors="replace") if (HOME / f"{dag_id}.log").exists() else ""
            problems = [f"the log says {text!r}" for text in CALLBACK_FAILURES if text in log_text]
            if returncode is None:
                problems.append("airflow dags test never ran it (see dags-test.log)")
            if dag_id in OUTCOMES and (problem := OUTCOMES[dag_id](emu)):
                problems.append(problem)
            verdict = "succeeded" if returncode == 0 and not problems else "FAILED"
            print(f"\n{dag_id} ({auth} auth): {verdict} in {seconds:.1f}s, "
                  f"{len(calls)} Jira calls; log: {HOME / (dag_id + '.log')}")
            for call in calls:
                print(f"  {call.method:5} {call.path} -> {call.status}")
            for problem in problems:
                print(f"  problem: {problem}")
            if returncode != 0 and returncode is not None:
                tail = log_text.splitlines()[-40:]
                print(f"  airflow dags test {dag_id} failed (exit {returncode}); last lines of its log:")
                print("\n".join("    " + line for line in tail))
            if returncode or problems:
                failed.append(dag_id)

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

        created = [key for key in emu.issue_keys() if key not in set(keys)]
        for key in created:
            issue = emu.get_issue(key)
            comments = issue["fields"].get("comment", {}).get("comments", [])
            print(f"\nCreated {key}: {issue['fields']['summary']!r} with {len(comments)} comment(s)")
            print(json.dumps(issue["fields"]["description"], indent=None)[:200] + " ...")
    if failed:
        print(f"\nFailed: {', '.join(failed)}")
        return 1
    print(f"\nAll {len(EXAMPLES)} example DAG(s) ran against the emulator.")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--dags-test"]:
        sys.exit(_dags_test_here(sys.argv[2:]))
    sys.exit(main())
