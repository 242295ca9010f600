"""The error family: each error carries its fix, keeps its builtin base, maps to one exit code."""

from __future__ import annotations

import pickle

import click
import pytest
from click.testing import CliRunner

from research import errors as E
from research.cli import main
from research.cli_common import FAILURE, USAGE, cli_errors, exit_code

FAMILY = [getattr(E, n) for n in E.__all__ if n[0].isupper() and n != "PhantomLabError"]
BUILTIN_BASES = {
    E.SchemaError: ValueError,
    E.InputTypeError: TypeError,
    E.InsufficientDataError: ValueError,
    E.SplitError: ValueError,
    E.DataError: ValueError,
    E.DownloadError: RuntimeError,
    E.OnnxModelError: ValueError,
    E.StoreError: RuntimeError,
    E.ParameterError: ValueError,
    E.PipelineNotFoundError: LookupError,
    E.SchedulerError: ConnectionError,
    E.TaskError: RuntimeError,
}


@pytest.mark.parametrize("cls", FAMILY, ids=lambda c: c.__name__)
def test_every_error_is_of_the_family_and_maps_to_an_exit_code(cls):
    assert issubclass(cls, E.PhantomLabError)
    assert exit_code(cls.__new__(cls)) in (FAILURE, USAGE)


@pytest.mark.parametrize("cls, base", list(BUILTIN_BASES.items()), ids=lambda c: c.__name__)
def test_errors_keep_their_builtin_base(cls, base):
    assert issubclass(cls, base)


def test_the_fix_is_read_from_the_message_or_given():
    exc = E.SchemaError("signals: 3 rows have no entry. Fix: drop them or fill entry.")
    assert str(exc) == "signals: 3 rows have no entry. Fix: drop them or fill entry."
    assert exc.fix == "drop them or fill entry."
    given = E.InsufficientDataError("no winning trade among 5", fix="wait for more trades")
    assert str(given) == "no winning trade among 5" and given.fix == "wait for more trades"
    assert E.StoreError("no fix here").fix is None
    again = pickle.loads(pickle.dumps(given))  # crosses Dask and process boundaries intact
    assert str(again) == str(given) and again.fix == given.fix
    assert E.fix_of(given) == "wait for more trades"
    assert E.fix_of(ValueError("bad. Fix: raise it")) == "raise it"  # a config's own ValueError
    assert E.fix_of(ValueError("bad")) is None


def test_exit_codes_of_the_family():
    assert exit_code(E.SchemaError("x")) == USAGE
    assert exit_code(E.TooFewRowsError("x")) == USAGE
    assert exit_code(E.SchedulerError("x")) == USAGE  # a bad --scheduler address
    assert exit_code(E.PipelineNotFoundError("x")) == USAGE
    assert exit_code(E.ParameterError("x")) == USAGE
    assert exit_code(E.StoreUnavailable("x")) == FAILURE
    assert exit_code(E.ModelIntegrityError("x")) == FAILURE
    assert exit_code(E.TaskError("x", item=3)) == FAILURE


def test_the_runners_errors_are_its_own_family_and_the_cli_maps_them():
    """The runner (nbrunner) knows nothing of research: its errors are a family of their own,
    with the same fix convention, re-exported by research.errors and mapped by the CLI."""
    from nbrunner.errors import RunnerError

    for cls in (E.ParameterError, E.PipelineNotFoundError):
        assert issubclass(cls, RunnerError) and not issubclass(cls, E.PhantomLabError)
    exc = E.ParameterError("n_bars=-1 is below 1000. Fix: pass -p n_bars=1000 or more")
    assert exc.fix == "pass -p n_bars=1000 or more" and E.fix_of(exc) == exc.fix
    result = CliRunner().invoke(_command(E.PipelineNotFoundError("no pipeline 'x'. Fix: list")))
    assert result.exit_code == USAGE and "no pipeline 'x'" in result.output


def _command(exc: BaseException, **kwargs) -> click.Command:
    @click.command()
    @cli_errors(**kwargs)
    def boom() -> None:
        raise exc

    return boom


@pytest.mark.parametrize(
    "exc, kwargs, code, text",
    [
        (E.DataError("no timeframe '7h'. Fix: use 1h"), {}, 2, "Usage:"),
        (E.DownloadError("failed 5 times. Fix: retry"), {}, 1, "Error: failed 5 times"),
        (E.StoreError("refused. Fix: roll back"), {"prefix": "rollback refused: "}, 1, "refused: "),
        (ValueError("bad --data. Fix: x"), {"usage": (ValueError,)}, 2, "Error: bad --data"),
        (OSError("no kernel. Fix: y"), {"failure": (OSError,)}, 1, "Error: no kernel"),
    ],
)
def test_cli_errors_maps_to_exit_codes_with_the_message(exc, kwargs, code, text):
    result = CliRunner().invoke(_command(exc, **kwargs))
    assert result.exit_code == code and text in result.output and "Fix:" in result.output
    assert result.exc_info[0] is SystemExit  # handled: no traceback


def test_other_errors_keep_their_traceback():
    result = CliRunner().invoke(_command(KeyError("bug")))
    assert result.exit_code == 1 and isinstance(result.exception, KeyError)


def test_every_subcommand_has_help():
    def walk(group, path):
        for name, command in group.commands.items():
            yield [*path, name]
            if isinstance(command, click.Group):
                yield from walk(command, [*path, name])

    paths = list(walk(main, []))
    assert len(paths) >= 18
    for path in [[], *paths]:
        result = CliRunner().invoke(main, [*path, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, path
