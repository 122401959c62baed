def test_commit_is_dirty_for_code_changes_but_not_for_figures(tmp_path):
    import subprocess

    from emr_lib.provenance import git_commit

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True)

    (tmp_path / "figures").mkdir()
    (tmp_path / "code").mkdir()
    (tmp_path / "figures" / "table.md").write_text("1\n")
    (tmp_path / "code" / "model.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "first")
    clean = git_commit(tmp_path / "code")
    assert len(clean) == 12 and "dirty" not in clean
    (tmp_path / "figures" / "table.md").write_text("2\n")  # what the pipeline writes
    assert git_commit(tmp_path / "code") == clean
    (tmp_path / "code" / "model.py").write_text("x = 2\n")
    assert git_commit(tmp_path / "code") == clean + "+dirty"


def test_models_changed_since_a_commit(tmp_path):
    import subprocess

    from emr_lib.provenance import models_changed_since

    def git(*args):
        return (
            subprocess.run(
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                cwd=tmp_path,
                check=True,
                capture_output=True,
            )
            .stdout.decode()
            .strip()
        )

    (tmp_path / "emr_lib" / "models").mkdir(parents=True)
    (tmp_path / "emr_lib" / "models" / "hrnet.py").write_text("width = 32\n")
    (tmp_path / "README.md").write_text("x\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "first")
    first = git("rev-parse", "--short=12", "HEAD")
    (tmp_path / "README.md").write_text("y\n")  # not the models
    assert models_changed_since(first, tmp_path) is False
    assert models_changed_since(first + "+dirty", tmp_path) is False
    (tmp_path / "emr_lib" / "models" / "hrnet.py").write_text("width = 48\n")
    assert models_changed_since(first, tmp_path) is True
    assert models_changed_since("0123456789ab", tmp_path) is None and models_changed_since("unknown") is None
