"""The pipeline runner: parameters cell contract, validation, runs (ok, failing, bad parameter,
timeout), the kernelspec, HTML reports (offline, in headless Chromium), the index, the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from support import processes_of

from nbrunner import (
    KERNEL_NAME,
    RESULT_MIME,
    SUPPORTED_TYPES,
    Parameter,
    ParameterError,
    PipelineNotFoundError,
    build_index,
    ensure_kernel,
    list_pipelines,
    parse_parameters,
    record,
    run_pipeline,
    validate_parameters,
)
from research.cli import main
from research.cli_pipeline import _parse_assignments

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "notebooks"
OK_NB = FIXTURES / "tiny_ok.ipynb"
META = {
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"},
}


def _notebook(tmp_path: Path, *param_sources: str, name: str = "nb") -> Path:
    """A notebook with one code cell tagged 'parameters' per source, then one plain cell."""
    cells = [nbformat.v4.new_markdown_cell("# Made in a test")]
    cells += [
        nbformat.v4.new_code_cell(s, metadata={"tags": ["parameters"]}) for s in param_sources
    ]
    cells.append(nbformat.v4.new_code_cell("print('body')"))
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata=META), path)
    return path


class _Links(HTMLParser):
    """Collects src/href attributes and <script> tags of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        self.scripts += tag == "script"
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]


def _links(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def _assert_offline(path: Path) -> None:
    links = _links(path)
    remote = [u for u in links.urls if u.startswith(("http:", "https:", "//"))]
    assert not remote, f"{path.name} fetches from the network: {remote}"
    assert links.scripts == 0, f"{path.name} has <script> tags"


# --------------------------------------------------------------------------------------------
# the parameters cell
# --------------------------------------------------------------------------------------------
def test_parse_parameters_reads_every_supported_type_with_its_help():
    params = {p.name: p for p in parse_parameters(OK_NB)}
    assert {p.type_text for p in params.values()} == set(SUPPORTED_TYPES)
    assert params["n_points"] == Parameter(
        name="n_points",
        type_text="int",
        default=5,
        help="points on the line",
        line=3,
        notebook="tiny_ok.ipynb",
    )
    assert params["scale"].default == 1.5 and params["show_table"].default is True
    assert params["labels"].default == ["a", "b"] and params["weights"].default == [0.5, 1.0]
    assert params["counts"].default == [1, 2, 3]
    assert params["counts"].help == "a list spanning two lines"  # the comment ends the list
    assert params["data_dir"].default is None and params["data_dir"].optional
    assert params["threshold"].default == 0.25 and not params["n_points"].optional
    assert params["note"].help == "" and params["title"].help == "title shown in the report"
    assert list(params)[:2] == ["title", "n_points"], "cell order is kept"


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("n = 3", "is not an annotated assignment"),
        ("print(1)", "is not an annotated assignment"),
        ("x: dict = {}", "unsupported type `dict`"),
        ("x: list = []", "unsupported type `list`"),
        ("n: int", "has no default"),
        ("n: int = 2 * 3", "is not a literal"),
        ("n: int = 'a'", "expects int, got 'a' (str)"),
        ("n: int = True", "expects int, got True (bool)"),
        ("x: float = None", "is None"),
        ("xs: list[int] = [1, 'b']", "got element 'b' (str)"),
        ("n: int = 3; m: int = 4", "two statements on one line"),
        ("n: int = 3\nn: int = 4", "assigned twice"),
        ("n: int = (", "syntax error"),
    ],
)
def test_malformed_parameters_cell_names_notebook_line_and_fix(tmp_path, source, needle):
    path = _notebook(tmp_path, "# header comment\nok: int = 1  # fine\n" + source)
    with pytest.raises(ParameterError) as info:
        parse_parameters(path)
    message = str(info.value)
    assert needle in message and "Fix:" in message and "nb.ipynb" in message
    assert "line 3" in message or "assigned twice" in message, message


@pytest.mark.parametrize("n_cells", [0, 2])
def test_exactly_one_parameters_cell_is_required(tmp_path, n_cells):
    path = _notebook(tmp_path, *["n: int = 1"] * n_cells)
    with pytest.raises(ParameterError, match=f"found {n_cells} cells tagged 'parameters'"):
        parse_parameters(path)


# --------------------------------------------------------------------------------------------
# validation and coercion
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ok_params() -> list[Parameter]:
    return parse_parameters(OK_NB)


def test_validation_coerces_command_line_text_and_returns_only_overrides(ok_params):
    got = validate_parameters(
        ok_params,
        {
            "n_points": "3",
            "show_table": "false",
            "labels": "[scalp,trend]",
            "data_dir": "null",
            "title": "yes",
            "scale": 2,
            "limit": "~",
            "threshold": "1e-3",
        },
    )
    assert got == {
        "n_points": 3,
        "show_table": False,
        "labels": ["scalp", "trend"],
        "data_dir": None,
        "title": "yes",
        "scale": 2.0,
        "limit": None,
        "threshold": 0.001,
    }
    assert isinstance(got["scale"], float), "an int given for a float becomes a float"
    assert validate_parameters(ok_params, {"weights": [1, 0.5]})["weights"] == [1.0, 0.5]
    assert validate_parameters(ok_params, {}) == {}


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"n_points": "abc"}, "parameter 'n_points' of tiny_ok.ipynb expects int, got 'abc' (str)"),
        ({"n_points": True}, "expects int, got True (bool)"),
        ({"n_points": "true"}, "expects int, got True (bool)"),
        ({"n_points": 2.5}, "expects int, got 2.5 (float)"),
        ({"scale": False}, "expects float, got False (bool)"),
        ({"n_points": None}, "'n_points' of tiny_ok.ipynb is None"),
        ({"labels": "[1, 2]"}, "got element 1 (int)"),
        ({"labels": "scalp"}, "expects list[str], got 'scalp' (str)"),
        ({"scale": ".nan"}, "is NaN"),
        ({"weights": "[1, nan]"}, "is NaN"),
        (
            {"n_pionts": 3},
            "unknown parameter 'n_pionts' for tiny_ok.ipynb; did you mean 'n_points'",
        ),
    ],
)
def test_validation_rejects_with_a_fix(ok_params, overrides, needle):
    with pytest.raises(ParameterError) as info:
        validate_parameters(ok_params, overrides)
    assert needle in str(info.value) and "Fix:" in str(info.value)


def test_validation_reports_every_problem_at_once(ok_params):
    with pytest.raises(ParameterError) as info:
        validate_parameters(ok_params, {"n_points": "x", "colour": "red"})
    assert "'n_points'" in str(info.value) and "'colour'" in str(info.value)


_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)
_FLOATS = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(
    st.one_of(
        st.tuples(st.just("n_points"), st.integers()),
        st.tuples(st.just("scale"), _FLOATS),
        st.tuples(st.just("threshold"), st.one_of(st.none(), _FLOATS)),
        st.tuples(st.just("limit"), st.one_of(st.none(), st.integers())),
        st.tuples(st.just("show_table"), st.booleans()),
        st.tuples(st.just("labels"), st.lists(_TEXT, max_size=4)),
        st.tuples(st.just("counts"), st.lists(st.integers(), max_size=4)),
        st.tuples(st.just("weights"), st.lists(_FLOATS, max_size=4)),
    )
)
def test_any_valid_value_round_trips_through_p_key_yaml_dump(ok_params, name_value):
    name, value = name_value
    text = yaml.safe_dump(value, default_flow_style=True)
    pairs = _parse_assignments((f"{name}={text}",))
    assert validate_parameters(ok_params, pairs) == {name: value}


@settings(max_examples=60, deadline=None)
@given(_TEXT)
def test_a_str_parameter_takes_the_command_line_text_verbatim(ok_params, text):
    pairs = _parse_assignments((f"title={text}",))
    assert validate_parameters(ok_params, pairs) == {"title": text}


# --------------------------------------------------------------------------------------------
# kernel, record
# --------------------------------------------------------------------------------------------
def test_kernelspec_is_registered_under_sys_prefix_for_this_interpreter():
    from jupyter_client.kernelspec import KernelSpecManager

    assert ensure_kernel() == KERNEL_NAME == "phantomlab"
    path = Path(sys.prefix) / "share" / "jupyter" / "kernels" / KERNEL_NAME / "kernel.json"
    before = path.stat().st_mtime_ns
    spec = json.loads(path.read_text())
    # ipykernel_launcher behind the loopback-only TCP warning filter (issue 14)
    assert spec["argv"][:2] == [sys.executable, "-c"] and "ipykernel_launcher" in spec["argv"][2]
    assert "{connection_file}" in spec["argv"] and spec["language"] == "python"
    found = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    assert Path(found.resource_dir).resolve() == path.parent.resolve()
    assert ensure_kernel() == KERNEL_NAME and path.stat().st_mtime_ns == before, "idempotent"


def test_record_outside_a_kernel_returns_plain_json_values():
    import numpy as np

    got = record(model_version=np.int64(3), metrics={"auc": np.float64(0.5)}, bad=float("nan"))
    assert got == {"model_version": 3, "metrics": {"auc": 0.5}, "bad": None}
    assert type(got["model_version"]) is int


def test_html_drops_remote_scripts_from_outputs(tmp_path):
    from nbrunner.html import render_cells

    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={"text/html": '<script src="https://cdn.example/x.js"></script><b>kept</b>'},
        )
    ]
    fragment = render_cells(nbformat.v4.new_notebook(cells=[cell], metadata=META))
    assert "<b>kept</b>" in fragment and "cdn.example" not in fragment


# --------------------------------------------------------------------------------------------
# a successful run
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ok_run(tmp_path_factory):
    reports = tmp_path_factory.mktemp("reports")
    res = run_pipeline(
        "tiny_ok",
        {"n_points": "7", "labels": ["x", "y"]},
        pipelines_dir=FIXTURES,
        reports_dir=reports,
        timeout_sec=180,
    )
    return reports, res


def test_successful_run_writes_notebook_html_and_manifest(ok_run):
    reports, res = ok_run
    assert res.ok and res.status == "ok" and res.error is None, res.error
    assert res.run_dir == reports / "tiny_ok" / res.run_id
    assert res.notebook.is_file() and res.html.is_file()
    m = json.loads((res.run_dir / "manifest.json").read_text())
    assert m == res.manifest
    assert m["pipeline"] == "tiny_ok" and m["run_id"] == res.run_id and m["status"] == "ok"
    assert m["overrides"] == {"n_points": 7, "labels": ["x", "y"]}
    defaults = {p.name: p.default for p in parse_parameters(OK_NB)}
    assert m["parameters"] == defaults | m["overrides"]
    assert m["error"] is None and m["notebook"] == "tiny_ok.ipynb" and m["html"] == "tiny_ok.html"
    assert m["started_at"] <= m["finished_at"] and 0 < m["duration_sec"] < 180
    assert m["kernel"] == KERNEL_NAME and m["versions"]["papermill"]
    assert m["host"]["python_executable"] == sys.executable
    # record() twice: later values win; model_version and metrics are lifted to the top
    assert m["results"] == {
        "model_version": 7,
        "metrics": {"auc": 0.61, "brier": 0.2},
        "published": True,
        "title": "tiny",
    }
    assert m["model_version"] == 7 and m["metrics"] == {"auc": 0.61, "brier": 0.2}


def test_successful_run_executed_every_cell_with_the_overrides(ok_run):
    _, res = ok_run
    nb = nbformat.read(res.notebook, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert sum(RESULT_MIME in o.get("data", {}) for o in outputs) == 2
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "n_points = 7" in injected[0].source


def test_report_html_shows_parameters_and_outputs_but_no_code(ok_run):
    _, res = ok_run
    page = res.html.read_text(encoding="utf-8")
    assert '<table class="parameters">' in page
    # the parameters come after the notebook's findings now (issue 14): read their table
    params = page.split('<table class="parameters">', 1)[1]
    row = params.split("<code>n_points</code>", 1)[1].split("</tr>", 1)[0]
    assert "<code>7</code>" in row and "overridden (default 5)" in row
    assert '<tr class="default"><td><code>scale</code>' in page
    assert "data:image/png;base64," in page, "the figure is embedded"
    assert "0.61" in page and "Tiny OK pipeline" in page and "Recorded results" in page
    for code in ("plt.subplots", "import pandas", "record(model_version"):
        assert code not in page, f"code input {code!r} leaked into the report"
    assert 'class="banner"' not in page
    _assert_offline(res.html)


def test_a_password_in_a_url_parameter_stays_out_of_manifest_and_html(tmp_path):
    path = _notebook(tmp_path, 'database_url: str = "sqlite://"  # audit trail', name="masked")
    reports = tmp_path / "reports"
    result = CliRunner().invoke(
        main,
        [
            "pipeline",
            "run",
            "masked",
            "--pipelines-dir",
            str(path.parent),
            "--reports-dir",
            str(reports),
            "--run-id",
            "r",
            "-p",
            "database_url=postgresql://u:secret@127.0.0.1:1/x",
        ],
    )
    assert result.exit_code == 0, result.output
    run_dir = reports / "masked" / "r"
    manifest = (run_dir / "manifest.json").read_text(encoding="utf-8")
    assert "postgresql://u:***@127.0.0.1:1/x" in manifest, "the parameter is there, masked"
    assert "secret" not in manifest
    assert "secret" not in (run_dir / "masked.html").read_text(encoding="utf-8")


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    raise AssertionError("no Chromium found for the offline-report check. Fix: install chromium")


def test_report_renders_in_headless_chromium_without_network_or_errors(ok_run):
    from playwright.sync_api import sync_playwright

    reports, res = ok_run
    problems, remote = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        page = browser.new_page()
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("request", lambda r: remote.append(r.url) if r.url.startswith("http") else None)
        for path in (res.html, reports / "index.html"):
            page.goto(path.resolve().as_uri())
            page.wait_for_load_state("load")
        page.goto(res.html.resolve().as_uri())
        widths = page.evaluate("() => Array.from(document.images, i => i.naturalWidth)")
        browser.close()
    assert problems == [] and remote == []
    assert widths and all(w > 0 for w in widths), "the embedded figure decodes"


# --------------------------------------------------------------------------------------------
# failures: a failing cell, a bad parameter, a timeout
# --------------------------------------------------------------------------------------------
def test_failing_cell_through_the_installed_command_exits_1_and_keeps_artefacts(tmp_path):
    exe = Path(sys.executable).with_name("phantomlab")
    proc = subprocess.run(
        [
            str(exe),
            "pipeline",
            "run",
            "failing",
            "--pipelines-dir",
            str(FIXTURES),
            "--reports-dir",
            str(tmp_path),
            "--run-id",
            "r1",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=os.environ | {"OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    run_dir = tmp_path / "failing" / "r1"
    assert "status:  failed" in proc.stdout and str(run_dir) in proc.stdout
    assert "ValueError: boom after 3 rows" in proc.stderr
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["status"] == "failed" and m["error"]["ename"] == "ValueError"
    assert m["error"]["evalue"] == "boom after 3 rows"
    nb = nbformat.read(run_dir / "failing.ipynb", as_version=4)
    failed = nb.cells[m["error"]["cell"]]
    assert failed.id == m["error"]["cell_id"] and "raise ValueError" in failed.source
    assert [o.output_type for o in failed.outputs] == ["error"]
    texts = [o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert "made 3 rows\n" in texts and "never reached\n" not in texts
    page = (run_dir / "failing.html").read_text(encoding="utf-8")
    banner = page.split('<div class="banner" role="alert">', 1)[1].split("</div>", 1)[0]
    assert "Run failed" in banner and "ValueError" in banner and "boom after 3 rows" in banner
    assert f'href="#cell-id={failed.id}"' in banner and f'id="cell-id={failed.id}"' in page
    _assert_offline(run_dir / "failing.html")


def test_bad_parameter_exits_2_and_leaves_a_failed_run(tmp_path):
    params_file = tmp_path / "params.yaml"
    params_file.write_text("n_points: 9\ntitle: from file\n")
    reports = tmp_path / "reports"
    result = CliRunner().invoke(
        main,
        [
            "pipeline",
            "run",
            "tiny_ok",
            "--pipelines-dir",
            str(FIXTURES),
            "--reports-dir",
            str(reports),
            "-f",
            str(params_file),
            "-p",
            "n_points=abc",
            "-p",
            "scal=2",
            "--run-id",
            "bad",
        ],
    )
    assert result.exit_code == 2, result.output
    assert (
        "expects int, got 'abc' (str)" in result.output and "did you mean 'scale'" in result.output
    )
    run_dir = reports / "tiny_ok" / "bad"
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["status"] == "failed" and m["error"]["ename"] == "ParameterError"
    assert m["overrides"] == {"n_points": "abc", "title": "from file", "scal": "2"}, "-p after -f"
    assert m["parameters"] == {p.name: p.default for p in parse_parameters(OK_NB)}
    nb = nbformat.read(run_dir / "tiny_ok.ipynb", as_version=4)
    assert "bad parameters" in nb.cells[0].source and "expects int" in nb.cells[0].source
    assert "parameters" in nb.cells[m["error"]["cell"]].metadata["tags"]
    assert all(c.outputs == [] for c in nb.cells if c.cell_type == "code"), "nothing ran"
    page = (run_dir / "tiny_ok.html").read_text(encoding="utf-8")
    assert 'class="banner"' in page and "ParameterError" in page
    assert "rejected <code>abc</code>, default used" in page and "unknown, not applied" in page
    assert "index.html" in os.listdir(reports)


def test_bad_parameter_from_the_library_raises_with_the_failed_run_attached(tmp_path):
    with pytest.raises(ParameterError) as info:
        run_pipeline(
            "tiny_ok",
            {"show_table": 1},
            pipelines_dir=FIXTURES,
            reports_dir=tmp_path,
            run_id="same",
        )
    res = info.value.result
    assert res.status == "failed" and not res.ok and res.run_dir == tmp_path / "tiny_ok" / "same"
    assert res.html.is_file() and res.notebook.is_file() and "expects bool" in res.error
    with pytest.raises(ValueError, match="already exists. Fix:"):
        run_pipeline("tiny_ok", {}, pipelines_dir=FIXTURES, reports_dir=tmp_path, run_id="same")


def test_a_failed_run_calls_the_callers_failure_hook_before_its_manifest_is_written(tmp_path):
    calls = []

    def hook(manifest, message, parameters):
        calls.append((manifest["run_id"], message, dict(parameters)))
        manifest["closed_by_hook"] = True

    with pytest.raises(ParameterError) as info:
        run_pipeline(
            "tiny_ok",
            {"show_table": 1},
            pipelines_dir=FIXTURES,
            reports_dir=tmp_path,
            run_id="hooked",
            on_failure=hook,
        )
    ((run_id, message, parameters),) = calls
    assert run_id == "hooked" and message.startswith("ParameterError: ")
    assert "expects bool" in message
    assert "show_table" in parameters
    saved = json.loads((info.value.result.run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert saved["closed_by_hook"] is True


def test_timeout_stops_the_whole_run_and_keeps_the_partial_notebook(tmp_path):
    start = time.monotonic()
    result = CliRunner().invoke(
        main,
        [
            "pipeline",
            "run",
            "sleepy",
            "--pipelines-dir",
            str(FIXTURES),
            "--reports-dir",
            str(tmp_path),
            "--timeout",
            "5",
            "--run-id",
            "slow",
        ],
    )
    elapsed = time.monotonic() - start
    assert result.exit_code == 1, result.output
    assert "status:  timeout" in result.output
    assert elapsed < 5 + 20, f"the run took {elapsed:.0f} s; the 60 s sleep was not stopped"
    run_dir = tmp_path / "sleepy" / "slow"
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["status"] == "timeout" and m["error"]["ename"] == "Timeout"
    assert "wall-clock limit of 5 s" in m["error"]["evalue"]
    nb = nbformat.read(run_dir / "sleepy.ipynb", as_version=4)
    assert "wall-clock limit" in nb.cells[0].source
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not any("woke up" in o.get("text", "") for o in outputs), "the sleep was cut short"
    assert "Run timed out" in (run_dir / "sleepy.html").read_text(encoding="utf-8")
    assert processes_of(run_dir) == [], "no executor or kernel of the run may survive it"


def _wait_for(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.2)
    return predicate()


@pytest.mark.parametrize("sig", ["SIGINT", "SIGKILL"])
def test_stopping_the_runner_stops_its_executor_and_kernel(tmp_path, sig):
    import signal

    exe = Path(sys.executable).with_name("phantomlab")
    runner = subprocess.Popen(
        [
            str(exe),
            "pipeline",
            "run",
            "sleepy",
            "--pipelines-dir",
            str(FIXTURES),
            "--reports-dir",
            str(tmp_path),
            "--run-id",
            "x",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ | {"OMP_NUM_THREADS": "1"},
    )
    run_dir = tmp_path / "sleepy" / "x"
    try:
        kernel = _wait_for(
            lambda: [
                p for p in processes_of(run_dir) if "ipykernel_launcher" in " ".join(p.cmdline())
            ],
            90,
        )
        assert kernel, "the kernel never started"
        runner.send_signal(getattr(signal, sig))
        rc = runner.wait(timeout=120)  # generous: a loaded machine renders the HTML slowly
    finally:
        runner.kill()
    # the runner kills them on Ctrl-C; if it is killed outright they notice within a second
    assert _wait_for(lambda: not processes_of(run_dir), 15), processes_of(run_dir)
    if sig == "SIGINT":
        assert rc == 1, runner.stdout.read()
        m = json.loads((run_dir / "manifest.json").read_text())
        assert m["status"] == "failed" and m["error"]["ename"] == "Interrupted"
        assert (run_dir / "sleepy.html").is_file()


# --------------------------------------------------------------------------------------------
# CLI: usage errors, list, reports
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["nope"], "no pipeline named 'nope'"),
        (["tiny_okk"], "Did you mean 'tiny_ok'?"),
        (["tiny_ok", "-p", "n_points"], "is not KEY=VALUE"),
        (["tiny_ok", "-f", "missing.yaml"], "does not exist"),
        (["tiny_ok", "--run-id", "../escape"], "not a plain folder name"),
    ],
)
def test_usage_errors_exit_2_with_a_fix(tmp_path, args, needle):
    result = CliRunner().invoke(
        main,
        [
            "pipeline",
            "run",
            *args,
            "--pipelines-dir",
            str(FIXTURES),
            "--reports-dir",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 2 and needle in result.output, result.output
    assert "Available: failing, sleepy, tiny_ok" in result.output or args[0] == "tiny_ok"
    assert not (tmp_path / "nope").exists()


@pytest.mark.parametrize("content", ["[1, 2]", "n_points: [unclosed"])
def test_unreadable_params_file_exits_2(tmp_path, content):
    params_file = tmp_path / "p.yaml"
    params_file.write_text(content)
    result = CliRunner().invoke(
        main,
        ["pipeline", "run", "tiny_ok", "--pipelines-dir", str(FIXTURES), "-f", str(params_file)],
    )
    assert result.exit_code == 2 and "Fix:" in result.output, result.output


def test_pipeline_list_shows_types_defaults_help_and_broken_notebooks(tmp_path):
    for nb in FIXTURES.glob("*.ipynb"):
        shutil.copy(nb, tmp_path)
    _notebook(tmp_path, "n = 3", name="broken")
    result = CliRunner().invoke(main, ["pipeline", "list", "--pipelines-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "tiny_ok  - Tiny OK pipeline" in out and "failing  - Failing pipeline" in out
    assert "  n_points: int = 5  # points on the line" in out
    assert "  data_dir: str | None = None  # folder of candles; None = synthetic" in out
    assert "  labels: list[str] = ['a', 'b']  # series labels" in out
    assert "broken" in out and "is not an annotated assignment" in out
    assert [p.name for p in list_pipelines(tmp_path)] == ["broken", "failing", "sleepy", "tiny_ok"]


def test_default_pipelines_dir_comes_from_the_environment(tmp_path, monkeypatch):
    shutil.copy(OK_NB, tmp_path)
    monkeypatch.setenv("PHANTOMLAB_PIPELINES_DIR", str(tmp_path))
    assert [p.name for p in list_pipelines()] == ["tiny_ok"]
    with pytest.raises(PipelineNotFoundError, match="Available: tiny_ok"):
        run_pipeline("failing")


def test_reports_index_lists_runs_newest_first_with_working_links(ok_run):
    reports, res = ok_run
    older = reports / "other" / "20000101T000000Z-0000"
    older.mkdir(parents=True)
    (older / "manifest.json").write_text(
        json.dumps(
            {
                "pipeline": "other",
                "run_id": older.name,
                "status": "failed",
                "started_at": "2000-01-01T00:00:00+00:00",
                "html": "other.html",
            }
        )
    )
    broken = reports / "other" / "broken-run"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    result = CliRunner().invoke(main, ["reports", "--reports-dir", str(reports)])
    assert result.exit_code == 0, result.output
    index = Path(result.output.strip())
    assert index == reports / "index.html" and index == build_index(reports)
    page = index.read_text(encoding="utf-8")
    assert page.index(res.run_id) < page.index(older.name), "newest first"
    assert "Unreadable manifests" in page and "other/broken-run" in page
    assert "auc=0.61" in page and "<td>7</td>" in page and ">ok</span>" in page
    links = [u for u in _links(index).urls if res.run_id in u]
    assert {Path(u).name for u in links} == {"tiny_ok.html", "tiny_ok.ipynb", "manifest.json"}
    assert all((reports / u).is_file() for u in links)
    _assert_offline(index)
