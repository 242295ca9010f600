"""Every committed notebook opens in a real JupyterLab (served locally, driven by headless
Chromium): the notebook panel renders all its cells and offers the project's kernel."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
NOTEBOOKS = sorted([*REPO.glob("notebooks/*.ipynb"), *REPO.glob("pipelines/*.ipynb")])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on the repository, on a free port with a random token."""
    port, token = _free_port(), secrets.token_hex(16)
    home = tmp_path_factory.mktemp("jupyter-home")  # no user settings leak in or out
    env = os.environ | {
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
    }
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        f"--port={port}",
        "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={REPO}",
        "--LabApp.news_url=",
        "--allow-root",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabServerApp.extension_manager=readonly",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"jupyter lab exited: {proc.stderr.read().decode()[-2000:]}")
                time.sleep(0.5)
        else:
            pytest.fail("jupyter lab did not answer within 60 s")
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_there_are_notebooks_to_open():
    assert len(NOTEBOOKS) >= 3


def test_contents_api_serves_every_notebook(lab):
    base, token = lab
    for path in NOTEBOOKS:
        rel = path.relative_to(REPO).as_posix()
        with urllib.request.urlopen(f"{base}/api/contents/{rel}?token={token}") as reply:
            model = json.load(reply)
        assert model["type"] == "notebook", rel
        cells = model["content"]["cells"]
        assert len(cells) == len(json.loads(path.read_text())["cells"]), rel


def test_every_notebook_renders_in_jupyterlab(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), "Fix: apt-get install chromium chromium-driver (make browser)."
    base, token = lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            for path in NOTEBOOKS:
                rel = path.relative_to(REPO).as_posix()
                page.goto(f"{base}/lab/tree/{rel}?token={token}&reset")
                page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
                n_file = len(json.loads(path.read_text())["cells"])
                page.wait_for_function(
                    f"document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) "
                    f".jp-Notebook .jp-Cell').length >= {n_file}",
                    timeout=30_000,
                )
                page.screenshot(path=str(tmp_path / f"{path.stem}.png"))
        finally:
            browser.close()
