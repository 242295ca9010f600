"""``phantomlab pipeline run|list`` and ``phantomlab reports``: the production notebooks.

Exit codes (:mod:`research.cli_common`): 0 ok, 1 a run that failed or timed out (or a kernel
that cannot be registered), 2 an unknown pipeline, a bad parameter or ``--run-id`` (the failed
notebook and HTML are still written for a bad parameter); 143 when stopped by SIGTERM.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from research.cli_common import PIPELINES_OPTION, REPORTS_OPTION, cli_errors


@click.group()
def pipeline() -> None:
    """Production notebooks: run one with validated parameters, or list them."""


def _read_params_file(path: Path | None) -> dict:
    import yaml

    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise click.UsageError(
            f"cannot read parameters file {path}: {exc}. Fix: pass a readable YAML file "
            "of `name: value` lines."
        ) from exc
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise click.UsageError(
            f"parameters file {path} holds a {type(data).__name__}, not a mapping of names to "
            "values. Fix: write one `name: value` per line (e.g. `n_bars: 3000`)."
        )
    return data


def _parse_assignments(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.UsageError(
                f"-p {pair!r} is not KEY=VALUE. Fix: write e.g. -p n_bars=3000 "
                "(values are YAML: -p force=true, -p strategies=[scalp,trend], -p data_dir=null)."
            )
        out[key.strip()] = value
    return out


@pipeline.command("run")
@click.argument("name")
@click.option(
    "-p",
    "--param",
    "pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a parameter (repeatable); VALUE is YAML, text for str parameters.",
)
@click.option(
    "-f",
    "--params-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="YAML file of parameters (applied before -p).",
)
@click.option(
    "--timeout",
    "timeout_sec",
    type=click.FloatRange(min=0, min_open=True),
    default=3600.0,
    show_default=True,
    help="Wall-clock limit of the whole run, in seconds.",
)
@REPORTS_OPTION
@PIPELINES_OPTION
@click.option("--run-id", default=None, help="Name of the run folder (default: UTC time + suffix).")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Per-cell progress bar on stderr (default: when stderr is a terminal).",
)
@cli_errors()
def pipeline_run(
    name, pairs, params_file, timeout_sec, reports_dir, pipelines_dir, run_id, progress
) -> None:
    """Run pipeline NAME (a catalogued notebook stem of the pipelines folder; `pipeline list`).

    Leaves REPORTS_DIR/NAME/RUN_ID/ with the executed notebook, its HTML report and
    manifest.json, and rebuilds REPORTS_DIR/index.html. Exit 0 ok, 1 the run failed or timed
    out, 2 unknown pipeline or bad parameter (the failed notebook and HTML are still written).
    The manifest says "running" from the start; on SIGTERM the run is stopped and recorded as
    failed, then the command ends by that signal (exit 143 in a shell).
    """
    import signal

    from research.errors import ParameterError
    from research.runs import run_pipeline

    # Ctrl-C (SIGINT) stops the run and marks it failed, even when this process inherited
    # SIGINT as ignored (a background job of a non-interactive shell does)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    overrides = _read_params_file(params_file) | _parse_assignments(pairs)
    if progress is None:
        progress = sys.stderr.isatty()
    # ValueError: a malformed or already used --run-id (exit 2); OSError: e.g. the kernelspec
    # cannot be registered (exit 1); PipelineNotFoundError and ParameterError: exit 2
    with cli_errors(usage=(ValueError,), failure=(OSError,)):
        try:
            res = run_pipeline(
                name,
                overrides,
                pipelines_dir=pipelines_dir,
                reports_dir=reports_dir,
                timeout_sec=timeout_sec,
                run_id=run_id,
                progress=progress,
            )
        except ParameterError as exc:
            if exc.result is not None:  # the failed run it left behind
                click.echo(
                    f"run dir: {exc.result.run_dir}\nstatus:  failed (bad parameters)\n"
                    f"html:    {exc.result.html}"
                )
            raise
    click.echo(f"run dir: {res.run_dir}\nstatus:  {res.status}\nhtml:    {res.html}")
    if not res.ok:
        click.echo(f"Error: {res.error}", err=True)
        sys.exit(1)


@pipeline.command("list")
@PIPELINES_OPTION
@cli_errors()
def pipeline_list(pipelines_dir) -> None:
    """List the pipelines with each parameter's type, default and help."""
    from nbrunner import list_pipelines
    from nbrunner.catalog import default_pipelines_dir

    folder = pipelines_dir if pipelines_dir is not None else default_pipelines_dir()
    infos = list_pipelines(folder)
    if not infos:
        click.echo(f"no pipeline notebooks (*.ipynb) in {folder}")
        return
    click.echo(f"pipelines in {folder}:")
    for info in infos:
        click.echo(f"\n{info.name}" + (f"  - {info.description}" if info.description else ""))
        if info.error:
            click.echo(f"  (cannot read its parameters: {info.error})")
        for p in info.parameters:
            click.echo(
                f"  {p.name}: {p.type_text} = {p.default!r}" + (f"  # {p.help}" if p.help else "")
            )


@click.command()
@REPORTS_OPTION
@cli_errors()
def reports(reports_dir) -> None:
    """Rebuild REPORTS_DIR/index.html (every run, newest first) and print its path.

    Runs whose runner stopped sending heartbeats (killed outright) are marked "died" first.
    """
    from research.runs import build_index

    click.echo(str(build_index(reports_dir)))
