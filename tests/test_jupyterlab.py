"""Notebooks 01 and 02 as a learner meets them: JupyterLab in headless Chromium, Run All, widgets live."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import REPO

TOKEN = "emr-kit-test"
CELLS = """
const panel = window.jupyterapp.shell.currentWidget;
const cells = [];
const model = panel.content.model;
for (let i = 0; i < model.cells.length; i++) {
  const cell = model.cells.get(i);
  if (cell.type === "code") cells.push({count: cell.executionCount, outputs: cell.outputs.toJSON()});
}
return cells;
"""
READY = """
const app = window.jupyterapp;
const panel = app && app.shell.currentWidget;
return Boolean(panel && panel.context && panel.context.isReady && panel.context.path.endsWith(arguments[0])
               && panel.sessionContext.session
               && panel.sessionContext.session.kernel && panel.sessionContext.session.kernel.status === "idle");
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(1)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def jupyterlab(tmp_path):
    (tmp_path / "notebooks").mkdir()
    for name in ("01_data_exploration.ipynb", "02_centerrep_augmentation.ipynb"):
        shutil.copy(REPO / "notebooks" / name, tmp_path / "notebooks" / name)  # Run All must not touch the repo's
    env = {**os.environ, "EMR_OUTPUT": str(tmp_path / "runs"), "EMR_FIGURES": str(tmp_path / "figures")}
    env.pop("EMR_HEADLESS", None)  # live widgets, as a learner gets them
    port = _free_port()
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1"]
    command += [f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={tmp_path}"]
    command += [
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    # a workspace of its own: JupyterLab otherwise reopens whatever an earlier session left open
    command += [f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}"]
    command += ["--allow-root"] if os.geteuid() == 0 else []  # CI and this project's machines run as root
    log = open(tmp_path / "jupyterlab.log", "w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)

    def up():
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited: {(tmp_path / 'jupyterlab.log').read_text()[-2000:]}")
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={TOKEN}", timeout=2).status == 200
        except OSError:
            return False

    try:
        _wait(up, 90, "JupyterLab to start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.mark.slow
@pytest.mark.parametrize("notebook", ["01_data_exploration.ipynb", "02_centerrep_augmentation.ipynb"])
def test_run_all_in_jupyterlab_renders_widgets_without_errors(notebook, jupyterlab, browser):
    browser.get(f"{jupyterlab}/lab/tree/notebooks/{notebook}?reset&token={TOKEN}")
    _wait(lambda: browser.execute_script(READY, notebook), 120, f"{notebook} to open with an idle kernel")
    browser.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    cells = _wait(
        lambda: (c := browser.execute_script(CELLS)) and all(cell["count"] for cell in c) and c,
        300,
        f"every cell of {notebook} to run",
    )
    outputs = [output for cell in cells for output in cell["outputs"]]
    errors = [f"{o['ename']}: {o['evalue']}" for o in outputs if o["output_type"] == "error"]
    assert not errors, errors
    texts = [str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs]
    assert not [t for t in texts if "PosixPath(" in t or "(None, None)" in t or t.lstrip().startswith("'|")]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    rendered = browser.execute_script("return document.querySelectorAll('.jp-OutputArea .widget-interact').length")
    assert rendered >= 1, "the widget model exists but no widget was drawn"
    shown = browser.execute_script(  # what the learner reads, widget outputs included
        "return Array.from(document.querySelectorAll('.jp-OutputArea-output')).map(e => e.innerText).join('\\n')"
    )
    assert "(None, None)" not in shown and "PosixPath(" not in shown
