"""Where pipelines and reports live, and which pipelines there are.

A pipeline NAME is the stem of a notebook in the pipelines folder (``retrain_publish`` for
``pipelines/retrain_publish.ipynb``); only such catalogued names run, never a path. The folder
is, in order: the ``pipelines_dir`` argument (``--pipelines-dir``), ``$PHANTOMLAB_PIPELINES_DIR``,
the ``pipelines/`` folder next to this package (a source checkout), else
``./pipelines``.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from nbrunner.errors import ParameterError, PipelineNotFoundError
from nbrunner.params import Parameter, parse_parameters, read_notebook

PIPELINES_ENV = "PHANTOMLAB_PIPELINES_DIR"
REPORTS_ENV = "PHANTOMLAB_REPORTS_DIR"


def default_pipelines_dir() -> Path:
    """``$PHANTOMLAB_PIPELINES_DIR``, else ``pipelines/`` beside this package (a source
    checkout: the folder next to ``nbrunner/``), else ``./pipelines``."""
    env = os.environ.get(PIPELINES_ENV)
    if env:
        return Path(env)
    beside = Path(__file__).resolve().parents[1] / "pipelines"
    return beside if beside.is_dir() else Path("pipelines")


def default_reports_dir() -> Path:
    """``$PHANTOMLAB_REPORTS_DIR``, else ``reports`` (relative to the current directory).

    The one definition of the default: the CLI, :func:`~nbrunner.run_pipeline` and
    :func:`~nbrunner.build_index` all resolve a missing reports folder here. An empty
    variable counts as unset (``reports``), not as the current directory.
    """
    return Path(os.environ.get(REPORTS_ENV) or "reports")


@dataclass(frozen=True, kw_only=True)
class PipelineInfo:
    """One pipeline notebook.

    Attributes
    ----------
    name : str
        The notebook's stem, used by ``phantomlab pipeline run NAME``.
    path : Path
        The ``.ipynb`` file.
    parameters : list of Parameter
        Its declared parameters (empty when ``error`` is set).
    description : str
        First line of its first markdown cell, without ``#`` marks.
    error : str or None
        Why its parameters cell could not be read, if it could not.
    """

    name: str
    path: Path
    parameters: list[Parameter] = field(default_factory=list)
    description: str = ""
    error: str | None = None


def _notebooks(folder: Path) -> list[Path]:
    """The pipeline notebooks of ``folder``, sorted; JupyterLab's autosaves are not pipelines."""
    return [
        p
        for p in sorted(folder.glob("*.ipynb"))
        if p.is_file() and not p.name.endswith("-checkpoint.ipynb")
    ]


def _description(nb: nbformat.NotebookNode) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.strip():
                    return line.strip().lstrip("#").strip()
    return ""


def list_pipelines(pipelines_dir: str | Path | None = None) -> list[PipelineInfo]:
    """Every ``*.ipynb`` of the pipelines folder, by name, with its parameters.

    A notebook whose parameters cell is malformed is still listed, with ``error`` set, so one
    broken notebook never hides the others.
    """
    folder = Path(pipelines_dir) if pipelines_dir is not None else default_pipelines_dir()
    out = []
    for path in _notebooks(folder):
        params: list[Parameter] = []
        description, error = "", None
        try:
            nb = read_notebook(path)  # once: parameters and description come from it
            description = _description(nb)
            params = parse_parameters(nb, name=path.name)
        except ParameterError as exc:
            error = str(exc)
        out.append(
            PipelineInfo(
                name=path.stem,
                path=path,
                parameters=params,
                description=description,
                error=error,
            )
        )
    return out


def resolve_pipeline(name: str | Path, pipelines_dir: str | Path | None = None) -> Path:
    """The notebook of a catalogued pipeline: ``name`` is the bare stem of a notebook in the
    pipelines folder (what :func:`list_pipelines` lists).

    Only catalogued pipelines run: a path (even of a notebook) or an unknown name is refused
    before any file is read, so no other file of the machine is run or copied into a manifest.

    Raises
    ------
    PipelineNotFoundError
        Listing the available names and close matches.
    """
    text = str(name)
    folder = Path(pipelines_dir) if pipelines_dir is not None else default_pipelines_dir()
    found = {p.stem: p for p in _notebooks(folder)}
    if text in found:
        return found[text]
    names = list(found)
    stem = Path(text).stem
    close = [stem] if stem in found else difflib.get_close_matches(text, names, n=3)
    hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
    available = ", ".join(names) if names else f"none (no .ipynb in {folder})"
    if text.endswith(".ipynb") or any(sep in text for sep in {"/", "\\", os.sep}):
        problem = f"{text!r} is a path; pipelines are named by bare catalogued names."
    else:
        problem = f"no pipeline named {text!r} in {folder}."
    raise PipelineNotFoundError(
        f"{problem}{hint} Available: {available}. Fix: pick one of them (phantomlab pipeline "
        f"list), or put your notebook in a folder of pipelines and point --pipelines-dir / "
        f"${PIPELINES_ENV} at it."
    )
