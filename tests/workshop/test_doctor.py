import pytest

from emr_lib.cli import main
from emr_lib.workshop import doctor


def test_doctor_passes_here_one_line_a_check(capsys):
    assert main(["doctor", "--no-timing"]) == 0
    out = capsys.readouterr().out.splitlines()
    checks, verdict = out[:-1], out[-1]
    assert all(line.split()[0] in ("OK", "WARN") for line in checks)
    for what in ("python:", "packages:", "notebook packages:", "jupyter kernel:", "device:", "data:", "disk:"):
        assert sum(line.split(maxsplit=1)[1].startswith(what) for line in checks) == 1, what
    assert verdict == "ready for the workshop"


def test_a_missing_package_blocks_with_the_fix(monkeypatch, capsys):
    real = doctor._versions
    monkeypatch.setattr(doctor, "_versions", lambda names: ({}, ["timm"]) if "timm" in names else real(names))
    assert main(["doctor", "--no-timing"]) == 2
    captured = capsys.readouterr()
    assert 'FIX   packages: missing timm: pip install -e ".[notebooks]"' in captured.out
    assert "fix packages before the workshop" in captured.err


def test_speed_estimate_from_timed_steps():
    check = doctor.check_speed(steps=1)
    assert check.status in ("OK", "WARN") and "min per workshop model" in check.detail


@pytest.mark.real_data
def test_doctor_reads_the_real_data(real_data, monkeypatch):
    monkeypatch.setenv("EMR_DATA", str(real_data / "bijie-224"))
    check = doctor.check_data()
    assert check.status == "OK" and check.detail.startswith("770 landslide images")
    monkeypatch.setenv("EMR_DATA", str(real_data / "uav-road"))  # a folder in no dataset layout
    assert doctor.check_data().status == "FIX"
