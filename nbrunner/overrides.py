"""Overrides of a pipeline's parameters: read command-line text, validate every value.

:func:`validate_parameters` checks the values a caller passes (``-p name=value``, a scheduler,
:func:`~nbrunner.execute.run_pipeline`) against the parameters a notebook declares
(:func:`~nbrunner.params.parse_parameters`): names, types, finiteness and ranges, with
every problem and its fix in one :class:`~research.errors.ParameterError`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import yaml

from nbrunner.errors import ParameterError
from nbrunner.params import (
    _TYPES,
    Parameter,
    _finite_problem,
    _normalise,
    _range_problem,
    _type_problem,
)

# Texts a `-p key=value` may use for None on an optional parameter (YAML's nulls plus Python's).
_NULL_TEXTS = frozenset({"null", "Null", "NULL", "~", "None"})


def coerce_text(param: Parameter, text: str) -> Any:
    """The value a command-line text means for ``param`` (as in ``-p name=text``).

    A ``str`` parameter takes the text verbatim (``-p symbol=yes`` is ``"yes"``); an optional
    one reads ``null``/``~``/``None`` as ``None``. Every other type reads the text as YAML,
    so ``-p n=3``, ``-p force=true``, ``-p strategies=[scalp,trend]`` work. A text that is not
    valid YAML stays a string (and then fails the type check with a clear message).
    """
    kind, is_list, optional = _TYPES[param.type_text]
    if optional and text.strip() in _NULL_TEXTS:
        return None
    if kind is str and not is_list:
        return text
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if kind is float:  # YAML 1.1 reads `1e3` (no dot) as text; a float parameter means 1000.0
        value = [_float_text(v) for v in value] if isinstance(value, list) else _float_text(value)
    return value


def _float_text(value: Any) -> Any:
    try:
        return float(value) if isinstance(value, str) else value
    except ValueError:
        return value


def validate_parameters(params: list[Parameter], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``overrides`` against a notebook's parameters; return them validated.

    Parameters
    ----------
    params : list of Parameter
        From :func:`parse_parameters`.
    overrides : Mapping
        Name -> value. A ``str`` value is read as a command-line text (:func:`coerce_text`:
        YAML for non-``str`` parameters, ``null``/``~``/``None`` for ``None`` of an optional
        one), since ``-p``, environment variables and schedulers all pass strings; every
        value is then type-checked strictly: ``int`` is accepted for ``float`` (and becomes a
        float), ``bool`` is not accepted for ``int``/``float``, ``None`` only for ``X | None``
        types; floats must be finite, numbers inside the parameter's :class:`Range`.

    Returns
    -------
    dict
        Only the overrides (not the defaults), with their validated values.

    Raises
    ------
    ParameterError
        Listing every unknown name (with close matches) and every ill-typed, non-finite or
        out-of-range value.
    """
    by_name = {p.name: p for p in params}
    notebook = params[0].notebook if params else "the notebook"
    problems: list[str] = []
    out: dict[str, Any] = {}
    for name, value in overrides.items():
        param = by_name.get(name)
        if param is None:
            close = difflib.get_close_matches(str(name), list(by_name), n=3)
            hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
            problems.append(
                f"unknown parameter {name!r} for {notebook}; {hint}"
                f"Fix: use one of {sorted(by_name) or '(it takes none)'}"
            )
            continue
        if isinstance(value, str):
            value = coerce_text(param, value)
        problem = _type_problem(value, param.type_text) or _finite_problem(value, param.type_text)
        if problem:
            problems.append(
                f"parameter {name!r} of {notebook} {problem}. Fix: pass a value of type "
                f"{param.type_text} (default {param.default!r}; on the command line e.g. "
                f"-p {name}={_example(param)})"
            )
            continue
        if problem := _range_problem(value, param.range):
            problems.append(
                f"parameter {name!r} of {notebook} {problem}. Fix: pass a value in "
                f"{param.range} (default {param.default!r})"
            )
            continue
        out[name] = _normalise(value, param.type_text)
    if problems:
        raise ParameterError("; ".join(problems) + ".")
    return out


def _example(param: Parameter) -> str:
    """A command-line text for ``param``'s default (or a made-up value when it is None)."""

    def text(v: Any) -> str:
        return str(v).lower() if isinstance(v, bool) else str(v)

    value = param.default
    if value is None:
        kind = _TYPES[param.type_text][0]
        value = {str: "text", int: 3, float: 0.5, bool: True}[kind]
    if isinstance(value, list):
        return "[" + ",".join(map(text, value)) + "]"
    return text(value)
