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


def test_the_guide_quotes_the_combined_ablations_run_time_from_its_records_without_the_split_study(tmp_path):
    import shutil

    from conftest import REPO
    from emr_lib.workshop.times import TIMES_FILE, render_sichuan_block

    (tmp_path / TIMES_FILE).parent.mkdir(parents=True)
    shutil.copy2(REPO / TIMES_FILE, tmp_path / TIMES_FILE)
    assert "Notebook 06" not in render_sichuan_block(tmp_path)  # no combined run committed: not offered
    runs = (("bijie+sichuan_ablation_baseline", 1800), ("bijie+sichuan_ablation_rma", 2400))
    runs += (("bijie+sichuan_ablation_dema", 2100), ("bijie+sichuan_ablation_baseline_leaky", 9000))
    for run, seconds in runs:
        folder = tmp_path / "figures" / "workshop" / "run_records" / run
        folder.mkdir(parents=True)
        (folder / "record.json").write_text(
            json.dumps({"wall_time_s": seconds, "config": {"model": "emr_hrnet", "data": "bijie-224,sichuan"}})
        )
    block = render_sichuan_block(tmp_path)
    assert "took about 35 min on this project's 2-core CPU (the median\nof 3 committed runs), past a workshop" in block
    assert "--data data/bijie,data/sichuan --only 06 --param tables=4\n--go-on`" in block
