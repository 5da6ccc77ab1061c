#!/usr/bin/env bash
# The compatibility stage (`make compat`): for each older Airflow minor this provider supports,
# install its latest patch with the known-good pins in constraints/airflow-<minor>.txt plus this
# package, then check on it what a user needs:
#   1. every module of the package imports and the fast test suites pass (COMPAT_TESTS);
#   2. `airflow providers hooks` loads JiraCloudHook;
#   3. every example DAG runs with `airflow dags test` against the Jira Cloud emulator.
# The full suite runs on the newest Airflow (`make test`, in .venv).
#
#   scripts/compat.sh [MINOR ...]          check these minors (default: each constraints/airflow-*.txt;
#                                          the newest minor has none: `make test` runs it in .venv)
#   scripts/compat.sh --freeze MINOR PATCH [REQ ...]
#                                          install PATCH with only the given requirements pinned
#                                          (e.g. 'cadwyn==5.4.6'), run the checks, and write
#                                          constraints/airflow-MINOR.txt from `pip freeze`
#
# Virtualenvs live under $COMPAT_DIR (default .compat/, git-ignored) and are reused while their
# constraints file is unchanged. Each stage's time is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
COMPAT_DIR=${COMPAT_DIR:-$ROOT/.compat}
# The fast suites: no browser, no real executor, no multi-process stress (measured: see README).
COMPAT_TESTS=${COMPAT_TESTS:-tests/unit tests/client tests/hook tests/oauth tests/contract tests/operators tests/emulator tests/cli tests/history tests/transition tests/pacing}
# Spread over COMPAT_WORKERS pytest-xdist workers (each with its own metadata DB and Airflow
# home, see tests/conftest.py): most of these tests wait on sockets and subprocesses, not the CPU.
COMPAT_WORKERS=${COMPAT_WORKERS:-4}
PYTEST_ARGS=${PYTEST_ARGS:--q -p no:cacheprovider}

TIMES=()
FAILED=()
stage() {  # stage NAME COMMAND...: run it and record its time; returns its exit code
  local name=$1 start rc=0
  shift
  echo "==> $name"
  start=$(date +%s)
  "$@" || rc=$?
  TIMES+=("$(printf '%-52s %4ss %s' "$name" "$(($(date +%s) - start))" "$([ $rc = 0 ] && echo ok || echo FAILED)")")
  if [ $rc != 0 ]; then
    echo "compat: $name failed (exit $rc)" >&2
    FAILED+=("$name")
  fi
  return $rc
}
report() {
  echo
  echo "compat stage times:"
  printf '  %s\n' "${TIMES[@]}"
}

minor_requirements() {  # what a minor needs beside Airflow and this package, as its users install it
  case $1 in
    # 3.0's api-server builds every provider's connection form with wtforms, which only the FAB
    # provider installs; without it the form shows no extra fields (3.1+ builds it without wtforms).
    3.0) echo "wtforms" ;;
  esac
}

airflow_pin() {  # the apache-airflow version a constraints file pins
  sed -n 's/^apache-airflow==\(.*\)$/\1/p' "$1"
}

install() {  # install VENV PATCH [CONSTRAINTS [REQ ...]]
  local venv=$1 patch=$2 constraints=${3:-}
  shift 3 || shift $#
  local stamp="$patch $( [ -n "$constraints" ] && sha256sum "$constraints" | cut -c1-16) $(sha256sum pyproject.toml | cut -c1-16)"
  if [ -f "$venv/.installed" ] && [ "$(cat "$venv/.installed")" = "$stamp" ]; then
    echo "$venv is up to date (apache-airflow==$patch)"
    return
  fi
  # (each step checked: `set -e` does not apply inside a function run as `stage`'s command)
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv" || return
  "$venv/bin/python" -m pip install --quiet --upgrade pip uv || return
  "$venv/bin/uv" pip install --quiet --python "$venv/bin/python" \
    ${constraints:+--constraint "$constraints"} "apache-airflow==$patch" -e ".[test]" "$@" || return
  echo "$stamp" >"$venv/.installed"
}

providers_hooks() {  # `airflow providers hooks` lists the jira_cloud hook, loaded without error
  local venv=$1 out
  out=$(AIRFLOW_HOME="$venv/airflow-home" "$venv/bin/airflow" providers hooks -o plain 2>&1)
  if ! grep -q "jira_cloud.*airflow_provider_jira_auth.hooks.jira_cloud.JiraCloudHook" <<<"$out" \
    || grep -qi "error when importing hook" <<<"$out"; then
    echo "$out" | tail -n 40
    echo "airflow providers hooks did not load JiraCloudHook" >&2
    return 1
  fi
  grep "jira_cloud" <<<"$out"
}

check() {  # check MINOR PATCH [CONSTRAINTS [REQ ...]]: the checks of one minor, up to its first failure
  local minor=$1 patch=$2 constraints=${3:-} venv="$COMPAT_DIR/airflow-$1"
  shift 3 || shift $#
  stage "$minor: install apache-airflow==$patch" install "$venv" "$patch" "$constraints" "$@" || return 1
  # shellcheck disable=SC2086
  stage "$minor: fast tests ($COMPAT_WORKERS workers)" \
    "$venv/bin/python" -m pytest $PYTEST_ARGS -n "$COMPAT_WORKERS" $COMPAT_TESTS || return 1
  stage "$minor: airflow providers hooks" providers_hooks "$venv" || return 1
  # The example DAGs run in one Airflow process, which keeps one core busy at most: they run in
  # the background while the next minor installs and runs its fast tests (see finish_examples).
  (
    start=$(date +%s) rc=0
    env JIRA_DEMO_HOME="$venv/demo" "$venv/bin/python" scripts/run_examples.py >"$venv/examples.log" 2>&1 || rc=$?
    printf '%-52s %4ss %s\n' "$minor: example DAGs (airflow dags test, one process)" "$(($(date +%s) - start))" \
      "$([ $rc = 0 ] && echo ok || echo FAILED)" >"$venv/examples.time"
    exit $rc
  ) &
  EXAMPLES+=("$minor $!")
}

EXAMPLES=()  # "MINOR PID" of the example-DAG runs under way
finish_examples() {  # wait for every example-DAG run, print its output, record its time and outcome
  local job minor pid venv rc
  for job in "${EXAMPLES[@]}"; do
    read -r minor pid <<<"$job"
    venv="$COMPAT_DIR/airflow-$minor"
    rc=0
    wait "$pid" || rc=$?
    echo "==> $minor: example DAGs (airflow dags test, one process)"
    cat "$venv/examples.log"
    TIMES+=("$(cat "$venv/examples.time")")
    if [ $rc != 0 ]; then
      echo "compat: $minor: example DAGs failed (exit $rc)" >&2
      FAILED+=("$minor: example DAGs")
    fi
  done
  EXAMPLES=()
}

if [ "${1:-}" = "--freeze" ]; then
  minor=$2 patch=$3 venv="$COMPAT_DIR/airflow-$2" out="constraints/airflow-$2.txt"
  shift 3
  rm -f "$venv/.installed"
  # shellcheck disable=SC2046
  check "$minor" "$patch" "" "$@" $(minor_requirements "$minor") || true
  finish_examples
  if [ ${#FAILED[@]} != 0 ]; then
    report
    exit 1
  fi
  pyver=$("$venv/bin/python" -c 'import sys; print(".".join(map(str, sys.version_info[:2])))')
  {
    echo "# Known-good pins for apache-airflow $patch (Airflow $minor) with airflow-provider-jira-auth, Python $pyver."
    echo "# Produced $(date -u +%Y-%m-%d) by \`uv pip freeze --exclude-editable\` of a virtualenv in which \`scripts/compat.sh $minor\`"
    echo "# passed: every module imports and the fast tests pass, \`airflow providers hooks\` loads JiraCloudHook, every"
    echo "# example DAG runs with \`airflow dags test\` against the emulator. CI (.ci/run, make compat) re-checks these pins."
    echo "# Regenerate: scripts/compat.sh --freeze $minor $patch [REQ ...] (installs with only REQ pinned, checks, freezes)."
    echo "# Use: pip install \"apache-airflow==$patch\" airflow-provider-jira-auth $(minor_requirements "$minor") --constraint $out"
    "$venv/bin/uv" pip freeze --python "$venv/bin/python" --exclude-editable | grep -v '^airflow-provider-jira-auth'
  } >"$out"
  echo "wrote $out"
  report
  exit 0
fi

minors=("$@")
if [ ${#minors[@]} = 0 ]; then
  for file in $(ls constraints/airflow-*.txt | sort -V); do
    minors+=("$(basename "$file" .txt | sed 's/^airflow-//')")
  done
fi
for minor in "${minors[@]}"; do  # every minor is checked, whatever the previous one did
  file="constraints/airflow-$minor.txt"
  # shellcheck disable=SC2046
  check "$minor" "$(airflow_pin "$file")" "$file" $(minor_requirements "$minor") || true
done
finish_examples
report
if [ ${#FAILED[@]} != 0 ]; then
  echo "compat failed: ${FAILED[*]}" >&2
  exit 1
fi
