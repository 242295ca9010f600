"""The local workspace: one small TOML file of settings that later commands use by default.

``phantomlab demo`` leaves ``$PHANTOMLAB_WORKSPACE/config.toml`` (default
``./.phantomlab/config.toml``, relative to the working directory) naming the stores it filled
and its local signing key *file* (never the key itself). Every later command, library call and
pipeline kernel started in that directory resolves its settings through
:meth:`research.config.Settings.resolve` — flag > environment > workspace file > default — so
the README's commands after ``make demo`` read the demo's stores with nothing exported.

The file is written atomically (temporary file with mode 0600, fsynced, renamed over the old
one), only by the demo and ``phantomlab config set``; values the environment supplied are never
copied into it (a URL's password stays where the user put it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

WORKSPACE_ENV = "PHANTOMLAB_WORKSPACE"
DEFAULT_WORKSPACE = ".phantomlab"  # relative to the working directory; git-ignored
CONFIG_FILE = "config.toml"
KEY_FILE = "signing_key"


@dataclass(frozen=True, kw_only=True, slots=True)
class SettingSpec:
    """One setting a workspace file may hold: its environment variable and meaning."""

    name: str
    env: str
    help: str
    kind: str = "str"  # str, path or seconds


#: The settings of :class:`research.config.Settings`, in display order.
SPECS = (
    SettingSpec(
        name="redis_url",
        env="PHANTOMLAB_REDIS_URL",
        help="state store and model registry (redis:// or sqlite:///)",
    ),
    SettingSpec(
        name="database_url",
        env="PHANTOMLAB_DATABASE_URL",
        help="SQL audit trail (postgresql:// or sqlite:///)",
    ),
    SettingSpec(
        name="signing_key_file",
        env="PHANTOMLAB_SIGNING_KEY_FILE",
        kind="path",
        help="file holding the model signing key (PHANTOMLAB_SIGNING_KEY wins)",
    ),
    SettingSpec(
        name="data_dir",
        env="PHANTOMLAB_DATA_DIR",
        kind="path",
        help="folder of candle files (none: the synthetic market)",
    ),
    SettingSpec(
        name="replay_dir",
        env="PHANTOMLAB_REPLAY_DIR",
        kind="path",
        help="replay frames the report reads when not given (the demo's)",
    ),
    SettingSpec(
        name="journal_path",
        env="PHANTOMLAB_JOURNAL",
        kind="path",
        help="outcome journal used while SQL is down",
    ),
    SettingSpec(
        name="connect_timeout_sec",
        env="PHANTOMLAB_CONNECT_TIMEOUT",
        kind="seconds",
        help="seconds to open a store connection",
    ),
    SettingSpec(
        name="io_timeout_sec",
        env="PHANTOMLAB_IO_TIMEOUT",
        kind="seconds",
        help="seconds a store may take to answer",
    ),
)
SPEC = {s.name: s for s in SPECS}
#: Names accepted by ``phantomlab config set`` besides the field names.
ALIASES = {"state_url": "redis_url", "key_file": "signing_key_file"}


def workspace_dir(environ=None) -> Path:
    """``$PHANTOMLAB_WORKSPACE``, else ``./.phantomlab`` (relative to the working directory)."""
    env = os.environ if environ is None else environ
    return Path(env.get(WORKSPACE_ENV) or DEFAULT_WORKSPACE)


def config_path(environ=None) -> Path:
    """The workspace file: ``<workspace>/config.toml``."""
    return workspace_dir(environ) / CONFIG_FILE


def canonical_name(name: str) -> str:
    """The setting ``name`` (or an alias) names; ValueError with a fix for an unknown one."""
    name = ALIASES.get(name, name)
    if name not in SPEC:
        known = ", ".join(SPEC)
        raise ValueError(f"unknown setting {name!r}. Fix: use one of {known}.")
    return name


def read_workspace(path: Path) -> dict[str, str]:
    """The settings in workspace file ``path`` (``{}`` if it does not exist).

    Raises
    ------
    ValueError
        The file is not TOML, or holds an unknown setting or a non-text value (with a fix).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ValueError(
            f"cannot read the workspace file {path}: {exc}. Fix: make it "
            f"readable, or delete it (`phantomlab demo` writes a new one)."
        ) from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(
            f"the workspace file {path} is not valid TOML ({exc}). Fix: correct "
            'it (one `name = "value"` per line) or delete it.'
        ) from exc
    out = {}
    for name, value in data.items():
        if name not in SPEC or not isinstance(value, str | int | float):
            raise ValueError(
                f"the workspace file {path} holds {name} = {value!r}, not a known "
                f"setting with a text or number value. Fix: keep only "
                f"{', '.join(SPEC)}."
            )
        out[name] = str(value)
    return out


def _toml(values: dict[str, str]) -> str:
    lines = [
        "# Phantom Lab workspace: settings later commands use by default",
        "# (flag > environment > this file > default). Written by `phantomlab demo` and",
        "# `phantomlab config set`. Never put the signing key itself here.",
    ]
    # a JSON string is a TOML basic string (same escapes for what json.dumps emits)
    lines += [f"{name} = {json.dumps(values[name])}" for name in SPEC if name in values]
    return "\n".join(lines) + "\n"


def write_workspace(updates: dict[str, str | None], path: Path | None = None) -> Path:
    """Merge ``updates`` into the workspace file and replace it atomically; returns its path.

    A ``None`` value removes the setting. The new file is written to a temporary file (mode
    0600) in the same folder (made 0700 if new), fsynced, then renamed over the old one: a
    reader sees the old file or the new one, never half of one.
    """
    path = Path(path) if path is not None else config_path()
    values = read_workspace(path)
    for name, value in updates.items():
        name = canonical_name(name)
        if value is None:
            values.pop(name, None)
        else:
            values[name] = str(value)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(_toml(values))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    logger.info("workspace %s: %s", path, ", ".join(values))
    return path


def private_file_problem(path: Path) -> str | None:
    """Why ``path`` is no safe home for a secret (missing, not a file, readable by others, or
    owned by another user), with a fix; ``None`` if it is fine."""
    try:
        info = path.stat()
    except OSError as exc:
        return (
            f"the signing key file {path} cannot be read ({exc.strerror}). Fix: run "
            f"`phantomlab demo` to create it, or point signing_key_file elsewhere "
            f"(`phantomlab config set signing_key_file PATH`)."
        )
    if not stat.S_ISREG(info.st_mode):
        return f"the signing key file {path} is not a regular file. Fix: point it at one."
    if info.st_uid != os.getuid():
        return (
            f"the signing key file {path} belongs to uid {info.st_uid}, not to you "
            f"({os.getuid()}): whoever owns it can sign models. Fix: use your own key file "
            f"or export PHANTOMLAB_SIGNING_KEY."
        )
    if info.st_mode & 0o077:
        return (
            f"the signing key file {path} is readable or writable by others (mode "
            f"{stat.S_IMODE(info.st_mode):o}). Fix: chmod 600 {path}"
        )
    return None
