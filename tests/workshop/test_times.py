import json


def test_expected_minutes_are_the_median_of_the_committed_records_on_the_same_data_when_there_are_any(tmp_path):
    from emr_lib.workshop import expected_minutes

    for run, data, seconds in (("a", "bijie-224", 1200), ("b", "bijie-224", 1500), ("c", "sichuan", 600)):
        folder = tmp_path / "figures" / "workshop" / "run_records" / run
        folder.mkdir(parents=True)
        record = {"wall_time_s": seconds, "config": {"model": "hrnet", "data": data}}
        (folder / "record.json").write_text(json.dumps(record))
    assert expected_minutes("hrnet", "workshop", tmp_path) == 20  # all three: the median
    assert expected_minutes("hrnet", "workshop", tmp_path, "data/sichuan") == 10  # the data's own, by name
    assert expected_minutes("hrnet", "workshop", tmp_path, "../elsewhere/mars") == 20  # none on it: all
    assert expected_minutes("emr_hrnet", "workshop", tmp_path) is None
