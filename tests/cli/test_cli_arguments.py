"""The command line itself: option values that begin with '-'."""

from __future__ import annotations

import pytest

from airflow_provider_jira_auth.cli.main import parse_args


@pytest.mark.parametrize(
    "argv",
    [
        ["authorize", "--conn-id", "c", "--client-id", "-Xy3abc"],
        ["authorize", "--conn-id", "c", "--client-id=-Xy3abc"],
        ["authorize", "--client-id", "-Xy3abc", "--conn-id", "c", "--no-browser"],
    ],
    ids=["separate", "with =", "before other options"],
)
def test_a_client_id_that_begins_with_a_dash_is_taken_as_the_client_id(argv: list[str]) -> None:
    args = parse_args(argv)

    assert args.client_id == "-Xy3abc" and args.conn_id == "c"


def test_an_option_in_place_of_a_value_still_reports_the_missing_value(capsys) -> None:
    with pytest.raises(SystemExit):
        parse_args(["authorize", "--conn-id", "c", "--client-id", "--site-url", "https://x.atlassian.net"])

    assert "--client-id: expected one argument" in capsys.readouterr().err
