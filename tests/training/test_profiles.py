import pytest

from emr_lib.training.profiles import PROFILES, TrainConfig, get_config, get_profile


def test_profiles_take_overrides_and_reject_typos():
    config = get_config("workshop", epochs=3, **{"model_options.width": 32})
    assert config.epochs == 3 and config.model_options["width"] == 32
    with pytest.raises(ValueError, match="unknown setting 'epoch'"):
        get_config("quick", epoch=3)
    with pytest.raises(ValueError, match="true or false"):
        get_config("quick", augment="yes")
    with pytest.raises(ValueError, match="multiple of 32"):
        get_config("quick", size=100)
    assert isinstance(get_config("quick", lr=1), TrainConfig) and get_config("quick", lr=1).lr == 1.0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"lr": "abc"}, "setting lr takes a number, got 'abc'"),
        ({"epochs": 2.5}, "setting epochs takes an integer, got 2.5"),
        ({"split_dir": 3}, "setting split_dir takes a string or null, got 3"),
        ({"split_ratios": [0.8, 0.2]}, r"setting split_ratios takes a JSON object, got \[0.8, 0.2\]"),
        ({"optimizer": 1}, "setting optimizer takes a string, got 1"),
    ],
)
def test_overrides_are_checked_against_the_field_type(override, message):
    with pytest.raises(ValueError, match=message):
        get_config("quick", **override)


def test_overrides_of_the_right_type_are_stored_as_the_field_type():
    config = get_config("quick", epochs=3.0, lr=1, split_dir=None, device="cpu")
    assert config.epochs == 3 and isinstance(config.epochs, int) and isinstance(config.lr, float)
    assert config.split_dir is None and config.device == "cpu"


def test_profiles_carry_what_the_pipeline_and_notebooks_need():
    assert set(PROFILES) == {"quick", "workshop", "paper"}
    assert [PROFILES[p].scratch for p in ("quick", "workshop", "paper")] == [True, False, False]
    assert PROFILES["quick"].cell_timeout_s < PROFILES["workshop"].cell_timeout_s < PROFILES["paper"].cell_timeout_s
    assert PROFILES["workshop"].cell_timeout_s >= 3 * 3600  # one VGG U-Net alone takes about 2 h on a CPU
    assert all(p.speed_repeats >= 2 and p.name == key for key, p in PROFILES.items())
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        get_profile("fast")
