"""The ``phantomlab`` command (click): ``phantomlab --help`` lists the subcommands.

This module holds the root group and registers the commands, one module per group:
``demo`` (:mod:`research.cli_demo`), ``replay`` and ``sweep`` (:mod:`research.cli_replay`),
``state`` (:mod:`research.cli_state`), ``pipeline`` and ``reports``
(:mod:`research.cli_pipeline`), ``models`` and ``config`` (:mod:`research.cli_models`),
``data`` (:mod:`research.cli_data`).

Exit codes: 0 success, 1 a run that failed, 2 bad usage or bad input (with a message saying
how to fix it); :mod:`research.cli_common` maps the error family to them, in one place.
"""

from __future__ import annotations

import logging
import sys

import click

from research.cli_data import data
from research.cli_demo import demo
from research.cli_models import config, models
from research.cli_pipeline import pipeline, reports
from research.cli_replay import replay_signals, sweep_command
from research.cli_state import state


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.version_option(package_name="phantomlab")
def main(verbose: int) -> None:
    """Phantom Lab: ML filtering of trading signals, with phantom trades."""
    _setup_logging(verbose)


for _command in (
    demo,
    replay_signals,
    sweep_command,
    state,
    pipeline,
    reports,
    models,
    config,
    data,
):
    main.add_command(_command)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
