"""Where an export goes: a local path, a URL or an ``ObjectStoragePath``, written so that no reader
ever sees a half-written file.

``output_path`` may be:

* a plain path (``/data/jira/eng.jsonl``): the local disk of the worker;
* a URL (``s3://bucket/jira/eng.jsonl``, ``file:///data/eng.jsonl``, ...) or an
  :class:`airflow.sdk.ObjectStoragePath`: any scheme Airflow's object storage knows, i.e. ``file``
  and whatever an installed provider registers (s3 by the Amazon provider, gs by Google, abfs by
  Microsoft Azure, ...). A URL may name an Airflow connection for the store
  (``s3://aws_default@bucket/key``), as ``ObjectStoragePath`` reads it.

:func:`resolve_output` checks the scheme before any Jira call, so a scheme nobody registered fails
at once, naming it; nothing is ever written to a local file whose name merely looks like a URL.
:func:`write_jsonl` writes to a partial file next to the target and moves it into place at the
end (a rename on a local disk; a move in the store on object storage), deleting the partial
object if the export fails.

On a local disk the output directory may be shared with other users, who can plant names in it.
The partial file is therefore a new, unique name (``.<name>.<random>.part``) created with
``O_CREAT | O_EXCL | O_NOFOLLOW``: an existing file or a symbolic link at that name is never
opened, so nothing the export writes goes anywhere but into a file it has just created itself,
and only that file is renamed into place (a link planted at the target is replaced, not followed).
The file is created with mode ``0644`` less the process's umask: readable by whoever the
deployment's umask lets read what the worker writes (an export is data for other readers, often
running as other users, as it was before), never writable by anyone but the worker's user, so
another user cannot alter an export after it was written.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Union

from airflow_provider_jira_auth.client.errors import JiraArgumentError

_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
# Schemes that some providers register: a hint for the error when none is.
_PROVIDER_OF = {
    "s3": "apache-airflow-providers-amazon",
    "s3a": "apache-airflow-providers-amazon",
    "gs": "apache-airflow-providers-google",
    "gcs": "apache-airflow-providers-google",
    "abfs": "apache-airflow-providers-microsoft-azure",
    "abfss": "apache-airflow-providers-microsoft-azure",
    "adl": "apache-airflow-providers-microsoft-azure",
    "msgraph": "apache-airflow-providers-microsoft-azure",
    "sftp": "apache-airflow-providers-sftp",
    "ftp": "apache-airflow-providers-ftp",
    "hdfs": "apache-airflow-providers-apache-hdfs",
}

Target = Union[Path, Any]  # a local Path, or an airflow.sdk.ObjectStoragePath


def resolve_output(value: str | os.PathLike[str] | Any, *, field: str = "output_path") -> Target:
    """The target ``value`` names: a local :class:`~pathlib.Path` or an ``ObjectStoragePath``.

    Raises :class:`JiraArgumentError` naming ``field`` when the scheme has no filesystem.
    """
    if _is_object_storage_path(value):
        target = value
    else:
        text = os.fspath(value) if isinstance(value, os.PathLike) else value
        if not isinstance(text, str) or not text.strip():
            raise JiraArgumentError(field, f"must be a path, a URL or an ObjectStoragePath, not {value!r}")
        match = _URL.match(text)
        if match is None:
            return Path(text)
        from airflow.sdk import ObjectStoragePath

        try:
            target = ObjectStoragePath(text)
        except ValueError:  # a scheme fsspec itself does not know
            raise _unregistered(field, match["scheme"].lower(), text) from None
    scheme = (getattr(target, "protocol", None) or "file").lower()
    if scheme in ("file", "local"):
        return Path(target.path)
    try:
        target.fs  # resolves the scheme's filesystem (and its connection) now, before any Jira call
    except ValueError as exc:
        if "registered" not in str(exc):
            raise
        raise _unregistered(field, scheme, str(target)) from None
    return target


def _unregistered(field: str, scheme: str, where: str) -> JiraArgumentError:
    hint = f": install {_PROVIDER_OF[scheme]}" if scheme in _PROVIDER_OF else (
        ": install the Airflow provider that serves it, or attach a filesystem for it (airflow.sdk.io.store.attach)"
    )
    return JiraArgumentError(field, f"no filesystem is registered for the scheme {scheme!r} of {where!r}{hint}")


def describe(target: Target) -> str:
    """The target as a user wrote it: a path, or a URL with its scheme."""
    return str(target)


def write_jsonl(target: Target, records: Iterable[Mapping[str, Any]]) -> int:
    """Write ``records`` to ``target`` as JSON Lines, all or nothing; returns how many."""
    if _is_object_storage_path(target):  # first: on Airflow 3.1 (universal-pathlib 0.2) it is a Path too
        if (getattr(target, "protocol", None) or "file").lower() in ("file", "local"):
            return _write_local(Path(target.path), records)  # the local disk's safeguards, not fsspec's open
        return _write_object(target, records)
    return _write_local(target, records)


def _dump(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


#: the final file's mode before the umask: others may read an export (as the umask allows), never change it
FILE_MODE = 0o644
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_NAME_ATTEMPTS = 16


def _create_partial(path: Path) -> tuple[int, Path]:
    """A new file next to ``path``, opened for writing: never an existing file, never through a link.

    ``O_EXCL`` refuses any existing name, a symbolic link included (dangling or not), so a name
    another user planted is skipped, not followed; the random part makes guessing it useless.
    """
    for _ in range(_NAME_ATTEMPTS):
        partial = path.with_name(f".{path.name}.{secrets.token_hex(8)}.part")
        try:
            return os.open(partial, _CREATE, FILE_MODE), partial
        except FileExistsError:
            continue
    raise FileExistsError(
        f"could not create a partial file next to {str(path)!r}: {_NAME_ATTEMPTS} fresh names were all taken; "
        "check who else writes to that directory"
    )


def _write_local(path: Path, records: Iterable[Mapping[str, Any]]) -> int:
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, partial = _create_partial(path)
    count = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            for record in records:
                out.write(_dump(record))
                count += 1
            out.flush()
            os.fsync(out.fileno())  # on disk before the rename makes it the export
        # Readers never see a half-written file, even if the task dies midway; a link at ``path``
        # is replaced by the file, not followed.
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)  # ours: created above under a fresh name
        raise
    _fsync_directory(directory)
    return count


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; best effort (some file systems refuse to sync a directory)."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def _write_object(target: Any, records: Iterable[Mapping[str, Any]]) -> int:
    fs = target.fs
    partial_path = target.path + ".part"
    parent = target.path.rsplit("/", 1)[0]
    if parent:
        fs.makedirs(parent, exist_ok=True)
    count = 0
    try:
        with fs.open(partial_path, "w", encoding="utf-8") as out:
            for record in records:
                out.write(_dump(record))
                count += 1
        fs.mv(partial_path, target.path)
    finally:
        try:
            if fs.exists(partial_path):
                fs.rm(partial_path)
        except OSError:
            pass
    return count


def _is_object_storage_path(value: Any) -> bool:
    from airflow.sdk import ObjectStoragePath

    return isinstance(value, ObjectStoragePath)


def uri_of(target: Target) -> str:
    """The target as a URL that ``ObjectStoragePath(uri)`` opens: ``file://`` for a local file."""
    if _is_object_storage_path(target):  # first: on Airflow 3.0/3.1 it is a pathlib.Path too
        return str(target)
    return Path(target).resolve().as_uri()


def describe_outlets(outlets: Iterable[Any] | None, context: Mapping[str, Any], extra: Mapping[str, Any]) -> None:
    """Put ``extra`` on the event of every ``Asset`` among ``outlets`` (what was written, and where)."""
    events = context.get("outlet_events")
    if events is None:
        return
    from airflow.sdk import Asset

    for outlet in outlets or ():
        if isinstance(outlet, Asset):
            events[outlet].extra.update(extra)
