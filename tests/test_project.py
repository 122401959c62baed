"""The project's own files agree with each other (environment.yml, pyproject.toml, README, CI)."""

import json
import re
import tomllib

import yaml

from conftest import REPO

CONDA_TO_PIP = {"pytorch": "torch"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement, maxsplit=1)[0].strip().lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    conda_names = {CONDA_TO_PIP.get(_name(d), _name(d)) for d in conda} - {"python", "pip"}
    pip_names = {_name(d) for d in project["dependencies"]}
    assert conda_names == pip_names
    assert "conda-forge" in env["channels"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    extras = set(project["optional-dependencies"])
    assert pip_section == [f"-e .[{','.join(sorted(extras))}]"]


def test_extras_hold_what_the_notebooks_and_tests_need():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    notebooks = {_name(d) for d in extras["notebooks"]}
    assert {"jupyterlab", "ipywidgets", "papermill", "ipykernel", "matplotlib"} <= notebooks
    assert {"pytest", "nbval", "papermill"} <= {_name(d) for d in extras["test"]}


def test_ci_runs_exactly_the_readme_commands():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    for marker in ("ci:install", "ci:test"):
        assert f"<!-- {marker} -->" in readme
        assert marker in ci


def test_notebook_badges_and_install_cells_point_at_the_repository():
    repository = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    github_path = repository.removeprefix("https://github.com/")
    notebooks = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert len(notebooks) == 7
    for path in notebooks:
        cells = json.loads(path.read_text())["cells"]
        title, install = "".join(cells[0]["source"]), "".join(cells[1]["source"])
        badge = f"https://colab.research.google.com/github/{github_path}/blob/main/notebooks/{path.name}"
        assert badge in title, f"{path.name}: the Colab badge should open {badge}"
        assert "google.colab" in install and f"git+{repository}" in install, (
            f"{path.name}: the install cell should install the kit from {repository}"
        )


def test_every_room_of_the_library_stays_small():
    """The layout's guideline, as a bar: no module over 450 lines, no function over 100."""
    import ast

    too_long = []
    for path in sorted((REPO / "emr_lib").rglob("*.py")):
        source = path.read_text()
        if len(source.splitlines()) > 450:
            too_long.append(f"{path.name}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 100:
                too_long.append(f"{path.name}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not too_long, too_long


def test_tests_mirror_the_modules_they_test():
    modules = ("inference", "checkpoints", "train", "runs", "runtime", "run_data", "paths", "figures", "notebook")
    for module in (*modules, "experiments", "expansion", "profiles", "uncertainty", "study", "docsite", "doctor"):
        assert (REPO / "emr_lib" / f"{module}.py").is_file() and (REPO / "tests" / f"test_{module}.py").is_file()


def test_reproduction_ledger_is_current_and_covers_every_table_and_figure():
    from emr_lib.ledger import PAPER_ITEMS, _table2_status, render_ledger

    assert (REPO / "REPRODUCTION.md").read_text() == render_ledger(REPO), "run python -m emr_lib ledger"
    named = {item.paper.split(":")[0] for item in PAPER_ITEMS}
    assert {f"Table {n}" for n in range(1, 8)} | {f"Figure {n}" for n in range(1, 13)} <= named
    statuses = ("reproduced", "direction reproduced", "not reproduced", "not detected", "cannot run here", "Bijie")
    assert all(item.status.format(table2=_table2_status(REPO)).startswith(statuses) for item in PAPER_ITEMS)
