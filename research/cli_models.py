"""``phantomlab models`` (the signed model registry) and ``phantomlab config`` (the settings).

Both read their stores through :meth:`research.config.Settings.resolve` (flag > environment >
workspace file > default), so after ``phantomlab demo`` they find the demo's stores with
nothing exported. Exit codes (mapped by :mod:`research.cli_common`): 0 ok, 1 a failure (a
refused champion, a store that does not answer), 2 bad usage (an unknown version or setting),
each with a fix.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from research.cli_common import cli_errors

_STATE_URL = click.option(
    "--state-url",
    default=None,
    help="State store holding the registry (default: PHANTOMLAB_REDIS_URL, else the workspace "
    "file, else redis://127.0.0.1:6379/0; `phantomlab config` shows which).",
)
_NAMESPACE = click.option(
    "--namespace", default=None, help="Key prefix (default: PHANTOMLAB_NAMESPACE, else none)."
)
_JSON = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")


def _registry(
    state_url: str | None,
    namespace: str | None,
    *,
    audit_url: str | None = None,
    with_audit: bool = False,
):
    """The registry on the resolved state store (and, for a rollback, the audit trail)."""
    from research.config import Settings
    from research.errors import StoreError
    from research.stores.audit import AuditTrail
    from research.stores.registry import ModelRegistry
    from research.stores.state import open_state

    with cli_errors(usage=(ValueError,)):  # a bad URL or setting: exit 2; a store down: exit 1
        flags = {"redis_url": state_url, "database_url": audit_url}
        settings = Settings.resolve(flags=flags).settings
        store = open_state(settings.redis_url, namespace=namespace)
        store.ping()
    audit = None
    if with_audit:
        try:
            audit = AuditTrail(settings.database_url)
        except StoreError as exc:  # the state store is the source of truth; SQL mirrors it
            click.echo(f"Warning: SQL model_versions not updated: {exc}", err=True)
    return ModelRegistry(store, audit=audit)


def _meta(registry, strategy: str, version: int) -> dict | None:
    """A version's metadata as stored (unverified), or None if there is no such version."""
    raw = registry.store.backend.get(
        registry.store.keys.ml(strategy, f"model:v{int(version)}:meta")
    )
    if raw is None:
        return None
    try:
        meta = json.loads(raw)
    except (TypeError, ValueError):
        return {}  # unreadable metadata: the version exists, a load will refuse it
    return meta if isinstance(meta, dict) else {}


def _strategies(strategy: str | None) -> list[str]:
    from research.schema import STRATEGIES

    return [strategy] if strategy else list(STRATEGIES)


def _version_rows(registry, strategy: str) -> list[dict]:
    """``list_versions`` (status, champion) with the metadata as stored (plain JSON values)."""
    rows = []
    for row in registry.list_versions(strategy).to_dict("records"):
        meta = _meta(registry, strategy, row["version"]) or {}
        metrics = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}
        rows.append(
            {
                "strategy": strategy,
                "version": int(row["version"]),
                "champion": bool(row["champion"]),
                "status": str(row["status"]),
                **{k: meta.get(k) for k in ("created_at", "n_rows", "train_start", "train_end")},
                "metrics": metrics,
            }
        )
    return rows


@click.group()
def models() -> None:
    """Signed model versions in the registry: list, show, verify, roll back."""


@models.command("list")
@click.option("--strategy", default=None, help="Only this strategy (default: all).")
@_STATE_URL
@_NAMESPACE
@_JSON
@cli_errors()
def models_list(strategy, state_url, namespace, as_json) -> None:
    """List every version: champion flag, status, creation, rows, training window, metrics."""
    from research.urls import mask_url

    registry = _registry(state_url, namespace)
    rows = [r for s in _strategies(strategy) for r in _version_rows(registry, s)]
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    where = mask_url(registry.store.url)
    if not rows:
        click.echo(
            f"no model versions in {where}. Fix: run `phantomlab demo`, or "
            "`phantomlab pipeline run retrain_publish -p strategy=scalp`."
        )
        return
    click.echo(f"model versions in {where} (* = champion):")
    for r in rows:
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in sorted(r["metrics"].items()))
        click.echo(
            f"{'*' if r['champion'] else ' '} {r['strategy']} v{r['version']}  "
            f"{r['status']}  created {r['created_at']}  rows {r['n_rows']}  "
            f"trained {r['train_start']} .. {r['train_end']}  {metrics}"
        )


def _check(registry, strategy: str, version: int, *, allow_pending: bool = False) -> str | None:
    """None if the version loads and verifies (signature, class, schema), else the reason."""
    from research.errors import ModelIntegrityError

    try:
        registry.load(strategy, version, allow_pending=allow_pending)
    except ModelIntegrityError as exc:
        return str(exc)
    return None


@models.command("show")
@click.argument("strategy")
@click.argument("version", type=click.IntRange(min=1), required=False)
@_STATE_URL
@_NAMESPACE
@_JSON
@cli_errors()
def models_show(strategy, version, state_url, namespace, as_json) -> None:
    """Show the metadata of VERSION (default: the champion) and whether its signature verifies.

    Exit 1 if it is refused, 2 if there is no such version.
    """
    from research.errors import ModelIntegrityError

    registry = _registry(state_url, namespace)
    try:
        champion = registry.champion_version(strategy)
    except ModelIntegrityError as exc:
        champion = None
        click.echo(f"Warning: {exc}", err=True)
    version = version or champion
    meta = None if version is None else _meta(registry, strategy, version)
    if meta is None:
        what = f"v{version}" if version else "champion"
        raise click.UsageError(
            f"{strategy} has no {what}. Fix: `phantomlab models list "
            f"--strategy {strategy}` shows its versions."
        )
    reason = _check(registry, strategy, version, allow_pending=True)
    out = {
        "strategy": strategy,
        "version": version,
        "champion": version == champion,
        "signature": "ok" if reason is None else "refused",
        "reason": reason,
        "meta": {k: v for k, v in meta.items() if k != "calibration"},
    }
    if as_json:
        click.echo(json.dumps(out, indent=2, default=str))
    else:
        click.echo(f"{strategy} v{version}" + (" (champion)" if out["champion"] else ""))
        click.echo(f"verification: {out['signature']}" + (f": {reason}" if reason else ""))
        for key, value in out["meta"].items():
            click.echo(f"  {key}: {json.dumps(value, default=str)}")
    if reason is not None:
        sys.exit(1)


@models.command("rollback")
@click.argument("strategy")
@click.argument("version", type=click.IntRange(min=1))
@_STATE_URL
@_NAMESPACE
@click.option(
    "--database-url",
    default=None,
    help="Audit trail whose model_versions mirrors the champion (default: settings).",
)
@cli_errors()
def models_rollback(strategy, version, state_url, namespace, database_url) -> None:
    """Make VERSION (an existing, verified, ready version) the champion of STRATEGY again.

    Exit 0 done, 1 refused (the version does not verify, or a store fails), 2 no such version.
    """
    from research.errors import ModelIntegrityError

    registry = _registry(state_url, namespace, audit_url=database_url, with_audit=True)
    if _meta(registry, strategy, version) is None:
        raise click.UsageError(
            f"{strategy} has no v{version}. Fix: `phantomlab models list "
            f"--strategy {strategy}` shows its versions."
        )
    try:
        before = registry.champion_version(strategy)
    except ModelIntegrityError:
        before = None  # torn or garbage pointers: the rollback is their fix
    try:
        with cli_errors(prefix="rollback refused: "):  # ModelIntegrityError, StoreError: exit 1
            registry.rollback(strategy, version)
    finally:
        if registry.audit is not None:
            registry.audit.close()
    click.echo(f"{strategy} champion: v{before} -> v{version}")


@models.command("verify")
@click.argument("strategy", required=False)
@_STATE_URL
@_NAMESPACE
@_JSON
@cli_errors()
def models_verify(strategy, state_url, namespace, as_json) -> None:
    """Load and verify every version (signature, class, schema, ONNX graph) through the registry.

    Reports ok or refused with the reason per version; exit 1 if any champion is refused.
    """
    from research.errors import ModelIntegrityError

    registry = _registry(state_url, namespace)
    rows, bad_champion = [], False
    for name in _strategies(strategy):
        try:
            registry.champion_version(name)
        except ModelIntegrityError as exc:
            bad_champion = True
            rows.append(
                {
                    "strategy": name,
                    "version": None,
                    "champion": True,
                    "result": "refused",
                    "reason": str(exc),
                }
            )
        for row in _version_rows(registry, name):
            reason = _check(registry, name, row["version"])
            bad_champion |= row["champion"] and reason is not None
            rows.append(
                {
                    "strategy": name,
                    "version": row["version"],
                    "champion": row["champion"],
                    "status": row["status"],
                    "result": "ok" if reason is None else "refused",
                    "reason": reason,
                }
            )
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
    else:
        for r in rows:
            label = f"v{r['version']}" if r["version"] else "champion pointers"
            star = "*" if r["champion"] else " "
            click.echo(
                f"{star} {r['strategy']} {label}: {r['result']}"
                + (f" - {r['reason']}" if r["reason"] else "")
            )
        if not rows:
            click.echo("no model versions to verify")
    if bad_champion:
        sys.exit(1)


def _shown(name: str, value) -> str | None:
    from research.urls import mask_url

    if value is None:
        return None
    return mask_url(str(value)) if name.endswith("_url") else str(value)


@click.group("config", invoke_without_command=True)
@click.option("--state-url", default=None, help="As a command's --state-url would give it.")
@click.option("--database-url", default=None, help="As a command's --database-url would.")
@_JSON
@click.pass_context
@cli_errors()
def config(ctx, state_url, database_url, as_json) -> None:
    """Show every setting, its value (passwords masked) and where it comes from: flag >
    environment > workspace file (`phantomlab demo` writes ./.phantomlab/config.toml, or
    $PHANTOMLAB_WORKSPACE/config.toml) > default. `config set` / `config unset` edit the file."""
    if ctx.invoked_subcommand is not None:
        return
    from research.config import Settings
    from research.workspace import SPECS, config_path

    with cli_errors(usage=(ValueError,)):
        resolved = Settings.resolve(flags={"redis_url": state_url, "database_url": database_url})
    path = resolved.workspace_file or config_path()
    rows = [
        {
            "name": s.name,
            "env": s.env,
            "help": s.help,
            "source": resolved.sources[s.name],
            "value": _shown(s.name, getattr(resolved.settings, s.name)),
        }
        for s in SPECS
    ]
    if as_json:
        out = {"workspace_file": str(path), "workspace_exists": path.is_file(), "settings": rows}
        click.echo(json.dumps(out, indent=2))
        return
    state = "" if path.is_file() else " (none yet: `phantomlab demo` writes it)"
    click.echo(f"workspace file: {path}{state}")
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        click.echo(f"{r['name']:<{width}}  {r['value']}  [{r['source']}]")


@config.command("set")
@click.argument("name")
@click.argument("value")
@cli_errors()
def config_set(name, value) -> None:
    """Write setting NAME = VALUE into the workspace file (replaced atomically, mode 0600).

    NAME is a setting `phantomlab config` lists (or state_url, key_file). Never put the signing
    key itself here: point signing_key_file at a file of mode 0600 holding it.
    """
    from research.config import Settings
    from research.workspace import (
        canonical_name,
        config_path,
        private_file_problem,
        write_workspace,
    )

    with cli_errors(usage=(ValueError,)):
        name = canonical_name(name)
        # the value must resolve as a setting would (numbers of seconds, their range)
        Settings.resolve(flags={name: value}, environ={})
    if name == "signing_key_file":
        problem = private_file_problem(Path(value).expanduser())
        if problem:
            raise click.UsageError(problem)
        value = str(Path(value).expanduser().resolve())
    path = write_workspace({name: value}, config_path())
    click.echo(f"{name} = {_shown(name, value)} in {path}")


@config.command("unset")
@click.argument("name")
@cli_errors()
def config_unset(name) -> None:
    """Remove setting NAME from the workspace file (its default or environment applies)."""
    from research.workspace import canonical_name, config_path, write_workspace

    with cli_errors(usage=(ValueError,)):
        name = canonical_name(name)
    click.echo(f"{name} removed from {write_workspace({name: None}, config_path())}")
