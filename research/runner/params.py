"""The ``parameters`` cell of a pipeline notebook: parse it, and validate overrides against it.

The contract (see ``pipelines/README.md``): exactly one code cell tagged ``parameters``; each
of its statements is ``name: type = literal  # help``, one per line, with ``type`` one of
:data:`SUPPORTED_TYPES`. The cell is read with :mod:`ast` and :mod:`tokenize`, never executed,
so a pipeline's interface is known before any kernel starts.

A numeric parameter declares its :class:`Range` at the end of its comment, ``n_estimators: int =
200  # trees per forest [10, 5000]`` (ends included; a parenthesis excludes one: ``(0, 1]``):
its default must lie in it and :func:`validate_parameters` refuses any value outside it. Floats
must be finite in any case (NaN and ``inf`` are refused).
"""

from __future__ import annotations

import ast
import difflib
import io
import math
import re
import sys
import tokenize
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import yaml

PARAMETERS_TAG = "parameters"

# annotation text -> (element/scalar type, is_list, accepts None)
_TYPES: dict[str, tuple[type, bool, bool]] = {
    "str": (str, False, False),
    "int": (int, False, False),
    "float": (float, False, False),
    "bool": (bool, False, False),
    "list[str]": (str, True, False),
    "list[int]": (int, True, False),
    "list[float]": (float, True, False),
    "str | None": (str, False, True),
    "int | None": (int, False, True),
    "float | None": (float, False, True),
}
SUPPORTED_TYPES: tuple[str, ...] = tuple(_TYPES)
"""Annotations a parameter may have (as written in the cell)."""

# Texts a `-p key=value` may use for None on an optional parameter (YAML's nulls plus Python's).
_NULL_TEXTS = frozenset({"null", "Null", "NULL", "~", "None"})
# A range ending a comment: `[10, 5000]`, `(0, 1)`, `[0, 1e-3)`, `[1_000, 2_000_000]`
_NUM = r"[-+]?(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][-+]?\d+)?"
_RANGE = re.compile(rf"([\[(])\s*({_NUM})\s*,\s*({_NUM})\s*([\])])\s*$")


class ParameterError(ValueError):
    """A pipeline's parameters cell is malformed, or an override does not fit it.

    The message names the notebook (and line) and says how to fix it. When raised by
    :func:`research.runner.run_pipeline`, ``result`` holds the failed run it left behind.
    """

    result: Any = None


@dataclass(frozen=True)
class Range:
    """Values a numeric parameter accepts, ``low`` to ``high``; an ``_open`` end is excluded."""

    low: int | float
    high: int | float
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: int | float) -> bool:
        return (self.low < value if self.low_open else self.low <= value) and (
            value < self.high if self.high_open else value <= self.high
        )

    def __str__(self) -> str:  # as declared: [10, 5000], (0, 1]
        return f"{'[('[self.low_open]}{self.low}, {self.high}{'])'[self.high_open]}"


@dataclass(frozen=True)
class Parameter:
    """One line of a parameters cell: ``name: type_text = default  # help``.

    Attributes
    ----------
    name : str
        The variable the notebook uses.
    type_text : str
        The annotation as written, one of :data:`SUPPORTED_TYPES`.
    default : Any
        The literal default (``list`` for list types).
    help : str
        The trailing comment, without ``#`` (empty when there is none).
    line : int
        1-based line of the statement inside the parameters cell.
    notebook : str
        File name of the notebook declaring it (for messages).
    range : Range or None
        The values it accepts (numeric parameters), from the end of its comment.
    """

    name: str
    type_text: str
    default: Any
    help: str = ""
    line: int = 0
    notebook: str = "the notebook"
    range: Range | None = None

    @property
    def optional(self) -> bool:
        """Whether ``None`` is a valid value."""
        return _TYPES[self.type_text][2]


def find_parameters_cell(nb: nbformat.NotebookNode, label: str) -> int:
    """Index of the single code cell tagged ``parameters`` in ``nb``.

    Raises
    ------
    ParameterError
        With 0 or 2+ tagged cells, or a tagged markdown cell.
    """
    tagged = [i for i, c in enumerate(nb.cells) if PARAMETERS_TAG in c.metadata.get("tags", [])]
    if len(tagged) != 1:
        where = f" (cells {tagged})" if tagged else ""
        raise ParameterError(
            f"{label}: found {len(tagged)} cells tagged 'parameters'{where}, expected exactly "
            "one. Fix: put every parameter in one code cell and tag it 'parameters' "
            "(JupyterLab: property inspector > Cell tags)."
        )
    if nb.cells[tagged[0]].cell_type != "code":
        raise ParameterError(
            f"{label}: cell {tagged[0]} is tagged 'parameters' but is "
            f"{nb.cells[tagged[0]].cell_type}. Fix: tag the code cell that assigns the parameters."
        )
    return tagged[0]


def read_notebook(path: str | Path, content: bytes | None = None) -> nbformat.NotebookNode:
    """The notebook at ``path`` (parsed from ``content`` when its bytes are already read).

    Raises
    ------
    ParameterError
        When the file cannot be read or is not a notebook, saying so.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8") if content is None else content.decode("utf-8")
        return nbformat.reads(text, as_version=4)
    except (OSError, ValueError) as exc:  # NotJSONError and UnicodeDecodeError are ValueErrors
        raise ParameterError(
            f"cannot read notebook {path}: {exc}. Fix: pass an existing .ipynb file."
        ) from exc


def parse_parameters(
    notebook: str | Path | nbformat.NotebookNode, *, name: str | None = None
) -> list[Parameter]:
    """The parameters a pipeline notebook declares, in cell order.

    Parameters
    ----------
    notebook : str, Path or NotebookNode
        An ``.ipynb`` file, or a notebook already read, with exactly one code cell tagged
        ``parameters``.
    name : str, optional
        File name used in messages; default the path's name (``"the notebook"`` for a
        NotebookNode).

    Returns
    -------
    list of Parameter

    Raises
    ------
    ParameterError
        Naming the notebook, cell line and fix, when the file cannot be read, the cell is
        missing or duplicated, or a statement is not ``name: type = literal`` with a supported
        type and a default of it.
    """
    if isinstance(notebook, nbformat.NotebookNode):
        nb, label_name = notebook, name or "the notebook"
    else:
        nb, label_name = read_notebook(notebook), name or Path(notebook).name
    index = find_parameters_cell(nb, label_name)
    label = f"{label_name}, parameters cell (cell {index})"
    return parse_cell(nb.cells[index].source, label, notebook=label_name)


def parse_cell(source: str, label: str, *, notebook: str = "the notebook") -> list[Parameter]:
    """Parse the text of a parameters cell; ``label`` prefixes error messages."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ParameterError(
            f"{label}, line {exc.lineno}: syntax error ({exc.msg}). "
            "Fix: write each parameter as `name: type = literal  # help`."
        ) from exc
    comments = _comments_by_line(source)
    params: list[Parameter] = []
    seen_lines: set[int] = set()
    for stmt in tree.body:
        params.append(_parse_statement(stmt, label, comments, notebook))
        if stmt.lineno in seen_lines:
            raise ParameterError(
                f"{label}, line {stmt.lineno}: two statements on one line. "
                "Fix: one parameter per line."
            )
        seen_lines.add(stmt.lineno)
    names = [p.name for p in params]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ParameterError(
            f"{label}: parameter(s) {dupes} assigned twice. Fix: keep one line per parameter."
        )
    return params


def _comments_by_line(source: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            out[tok.start[0]] = tok.string.lstrip("#").strip()
    return out


def _parse_statement(
    stmt: ast.stmt, label: str, comments: dict[int, str], notebook: str
) -> Parameter:
    where = f"{label}, line {stmt.lineno}"
    form = "Fix: write it as `name: type = literal  # help`"
    if not isinstance(stmt, ast.AnnAssign) or not isinstance(stmt.target, ast.Name):
        text = ast.unparse(stmt).splitlines()[0]
        raise ParameterError(
            f"{where}: `{text}` is not an annotated assignment to a name. {form} "
            "(computed values belong in the cells below)."
        )
    name = stmt.target.id
    type_text = ast.unparse(stmt.annotation)
    if type_text not in _TYPES:
        raise ParameterError(
            f"{where}: parameter '{name}' has unsupported type `{type_text}`. Fix: use one of "
            f"{', '.join(SUPPORTED_TYPES)}."
        )
    if stmt.value is None:
        raise ParameterError(f"{where}: parameter '{name}' has no default. {form}.")
    try:
        default = ast.literal_eval(stmt.value)
    except ValueError as exc:
        raise ParameterError(
            f"{where}: the default of '{name}' (`{ast.unparse(stmt.value)}`) is not a literal. "
            f"{form}, with a literal default (number, string, True/False, None or a list)."
        ) from exc
    problem = _type_problem(default, type_text) or _finite_problem(default, type_text)
    if problem:
        raise ParameterError(
            f"{where}: the default of '{name}' {problem}. Fix: make the default a {type_text}."
        )
    end = stmt.end_lineno or stmt.lineno  # a list default may span lines; its comment ends it
    help_text = comments.get(stmt.lineno) or comments.get(end, "")
    declared = _parse_range(help_text, type_text, f"{where}: parameter '{name}'")
    if problem := _range_problem(default, declared):
        raise ParameterError(
            f"{where}: the default of '{name}' {problem}. Fix: change the "
            "default or the range ending the comment."
        )
    return Parameter(
        name=name,
        type_text=type_text,
        default=_normalise(default, type_text),
        help=help_text,
        line=stmt.lineno,
        notebook=notebook,
        range=declared,
    )


def _parse_range(help_text: str, type_text: str, where: str) -> Range | None:
    """The :class:`Range` ending ``help_text``, if one does."""
    if (match := _RANGE.search(help_text)) is None:
        return None
    if _TYPES[type_text][0] not in (int, float):
        raise ParameterError(
            f"{where} is a {type_text}, but its comment ends in a range. Fix: "
            "declare ranges on int/float parameters only."
        )
    low, high = (ast.literal_eval(t) for t in match.group(2, 3))
    low, high = (int(v) if isinstance(v, float) and v.is_integer() else v for v in (low, high))
    declared = Range(low, high, low_open=match[1] == "(", high_open=match[4] == ")")
    if not -math.inf < low < high < math.inf:
        raise ParameterError(
            f"{where} declares the range {declared}, which holds no value. "
            "Fix: write [low, high] with finite low < high, e.g. [1, 5000]."
        )
    return declared


def _range_problem(value: Any, declared: Range | None) -> str | None:
    """Why ``value`` (a number, a list of them, or None) is outside ``declared``, if it is."""
    out = [
        v
        for v in (value if isinstance(value, list) else [value])
        if declared is not None and v is not None and v not in declared
    ]
    if not out:
        return None
    what = f"has element {out[0]!r}" if isinstance(value, list) else f"is {value!r}"
    return f"{what}, outside its range {declared}"


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _scalar_ok(value: Any, kind: type) -> bool:
    if isinstance(value, bool):  # bool is an int subclass; True is not a count
        return kind is bool
    if kind is float:
        return isinstance(value, int | float)
    return isinstance(value, kind)


def _type_problem(value: Any, type_text: str) -> str | None:
    """Why ``value`` is not a ``type_text`` (``None`` when it is)."""
    kind, is_list, optional = _TYPES[type_text]
    if value is None:
        return None if optional else "is None, which only `X | None` types accept"
    if is_list:
        if not isinstance(value, list):
            return f"expects {type_text}, got {_describe(value)}"
        bad = [v for v in value if not _scalar_ok(v, kind)]
        return f"expects {type_text}, got element {_describe(bad[0])}" if bad else None
    if not _scalar_ok(value, kind):
        return f"expects {type_text}, got {_describe(value)}"
    return None


def _normalise(value: Any, type_text: str) -> Any:
    """Ints given for floats become floats, so the notebook sees the declared type."""
    kind, is_list, _ = _TYPES[type_text]
    if kind is not float or value is None:
        return list(value) if is_list else value
    return [float(v) for v in value] if is_list else float(value)


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


def _finite_problem(value: Any, type_text: str) -> str | None:
    """Why a well-typed value of a float parameter is not a finite float, if it is not."""
    values = [v for v in (value if isinstance(value, list) else [value]) if v is not None]
    if _TYPES[type_text][0] is not float:
        return None
    if any(isinstance(v, float) and math.isnan(v) for v in values):
        return "is NaN"  # NaN defeats every comparison a notebook makes with it
    if any(abs(v) > sys.float_info.max for v in values):  # inf, or an int like 10**400
        return "is infinite (or too large for a float)"
    return None


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
