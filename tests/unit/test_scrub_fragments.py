"""scrub() removes every run of 8 or more characters of a known secret, not only whole secrets.

A database message that quotes a cut-off piece of the stored extra carries part of a secret
that a search for the whole secret never finds (docs/security.md).
"""

from __future__ import annotations

from airflow_provider_jira_auth.client.errors import REDACTED, scrub

SECRET = "s3cr3t-" + "Q7xK2pLm9vRt4WzA"


def fragments(secret: str, size: int = 8) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def test_a_quoted_piece_of_a_secret_is_removed_wherever_it_is_cut():
    for start in range(len(SECRET) - 8):
        for size in (8, 9, 12):
            piece = SECRET[start : start + size]
            text = f'new row violates check: {{"client_secret": "{piece}'
            scrubbed = scrub(text, [SECRET])
            assert not any(f in scrubbed for f in fragments(SECRET)), (piece, scrubbed)
            assert scrubbed.startswith("new row violates check") and REDACTED in scrubbed


def test_whole_secrets_and_neighbouring_text_read_as_before():
    assert scrub(f"Bearer {SECRET} refused", [SECRET, None, ""]) == f"Bearer {REDACTED} refused"
    assert scrub("short abcdef here", ["abcdef"]) == f"short {REDACTED} here"
    assert scrub("nothing to hide", [SECRET]) == "nothing to hide"


def test_two_secrets_in_one_run_become_one_redaction():
    other = "Zz9" + "y" * 13
    assert scrub(f"<{SECRET}{other}>", [SECRET, other]) == f"<{REDACTED}>"


def test_fewer_than_eight_characters_of_a_long_secret_stay():
    assert scrub(f"id {SECRET[:7]}", [SECRET]) == f"id {SECRET[:7]}"
