import pytest

from emr_lib import paths
from emr_lib.data import DataError


def _project(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "emr-hrnet-kit"\n')
    return tmp_path


def test_data_auto_uses_the_documented_folder_else_synthetic(tmp_path, monkeypatch):
    monkeypatch.delenv("EMR_SCENE", raising=False)
    monkeypatch.delenv("EMR_DATA", raising=False)  # the tests' own default (conftest) would win
    root = _project(tmp_path)
    assert paths.resolve_data("auto", root) == "synthetic"
    (root / "data" / "bijie" / "landslide" / "image").mkdir(parents=True)
    assert paths.resolve_data("auto", root) == str(root / "data" / "bijie")
    with pytest.raises(FileNotFoundError, match="data folder not found"):
        paths.resolve_data(str(tmp_path / "nowhere"), root)
    assert paths.resolve_scene("auto", root) is None


def test_scene_is_found_named_or_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("EMR_SCENE", raising=False)
    (tmp_path / "project").mkdir()
    root = _project(tmp_path / "project")
    assert paths.resolve_scene(None, root) is None  # nothing prepared: notebooks use a synthetic scene
    scene = tmp_path / "uav"
    scene.mkdir()
    named_but_empty = r"UAV scene .*uav: expected image.png and mask.png.*--scene or EMR_SCENE"
    with pytest.raises(FileNotFoundError, match=named_but_empty):
        paths.resolve_scene(str(scene), root)
    for name in ("image.png", "mask.png"):
        (scene / name).write_bytes(b"")
    assert paths.resolve_scene(str(scene), root) == scene
    monkeypatch.setenv("EMR_SCENE", str(scene))
    assert paths.resolve_scene(None, root) == scene
    monkeypatch.setenv("EMR_SCENE", str(tmp_path / "nowhere"))  # named through the environment: also checked
    with pytest.raises(FileNotFoundError, match="nowhere: expected image.png"):
        paths.resolve_scene("auto", root)


def test_emr_data_is_the_default_when_no_data_is_named(tmp_path, monkeypatch):
    (tmp_path / "project").mkdir()
    root = _project(tmp_path / "project")
    (root / "data" / "bijie" / "images").mkdir(parents=True)
    mine = tmp_path / "my-data"
    mine.mkdir()
    monkeypatch.setenv("EMR_DATA", str(mine))
    assert paths.resolve_data(None, root) == paths.resolve_data("auto", root) == str(mine)  # before data/bijie
    assert paths.resolve_data("synthetic", root) == "synthetic"  # a named dataset wins over the variable
    monkeypatch.setenv("EMR_DATA", "auto")
    assert paths.resolve_data(None, root) == str(root / "data" / "bijie")
    with pytest.raises(DataError, match="Pass --data PATH"):  # a DataError, so the CLI prints one line
        paths.resolve_data("no/such/folder", root)


def test_the_sichuan_scenes_are_found_where_prepare_writes_them(tmp_path, monkeypatch):
    from emr_lib.paths import resolve_sichuan

    monkeypatch.delenv("EMR_SICHUAN", raising=False)
    assert resolve_sichuan(tmp_path) is None
    (tmp_path / "data" / "sichuan" / "images").mkdir(parents=True)
    assert resolve_sichuan(tmp_path) is None  # not prepared: no manifest
    (tmp_path / "data" / "sichuan" / "manifest.json").write_text("{}")
    assert resolve_sichuan(tmp_path) == tmp_path / "data" / "sichuan"
    monkeypatch.setenv("EMR_SICHUAN", str(tmp_path / "elsewhere"))
    assert resolve_sichuan(tmp_path) is None
