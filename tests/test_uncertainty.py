import math

import pytest

from emr_lib.uncertainty import seed_summary


def test_seed_summary_gives_mean_spread_and_range():
    def record(miou):
        return {"test_metrics": {"mIoU": miou}}

    rows = seed_summary({"+DEMA": {0: record(0.80), 1: record(0.84), 2: record(0.82)}, "one": {0: record(0.5)}})
    assert rows[0]["seeds"] == "0, 1, 2"
    assert rows[0]["mIoU_mean"] == pytest.approx(82.0)
    assert rows[0]["mIoU_sd"] == pytest.approx(2.0)
    assert (rows[0]["mIoU_min"], rows[0]["mIoU_max"]) == pytest.approx((80.0, 84.0))
    assert rows[1]["mIoU_mean"] == pytest.approx(50.0) and math.isnan(rows[1]["mIoU_sd"])
