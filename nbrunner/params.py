"""The ``parameters`` cell of a pipeline notebook: parse it, and check values of its types.

The contract (see ``pipelines/README.md``): exactly one code cell tagged ``parameters``; each
of its statements is ``name: type = literal  # help``, one per line, with ``type`` one of
:data:`SUPPORTED_TYPES`. The cell is read with :mod:`ast` and :mod:`tokenize`, never executed,
so a pipeline's interface is known before any kernel starts.

A numeric parameter declares its :class:`Range` at the end of its comment, ``n_estimators: int =
200  # trees per forest [10, 5000]`` (ends included; a parenthesis excludes one: ``(0, 1]``):
its default must lie in it and :func:`~nbrunner.overrides.validate_parameters` refuses any
value outside it. Floats must be finite in any case (NaN and ``inf`` are refused).
"""

from __future__ import annotations

import ast
import io
import math
import re
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from nbrunner.errors import ParameterError

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

# A range ending a comment: `[10, 5000]`, `(0, 1)`, `[0, 1e-3)`, `[1_000, 2_000_000]`
_NUM = r"[-+]?(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][-+]?\d+)?"
_RANGE = re.compile(rf"([\[(])\s*({_NUM})\s*,\s*({_NUM})\s*([\])])\s*$")


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
