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
