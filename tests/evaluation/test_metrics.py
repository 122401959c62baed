import math

import pytest
import torch

from emr_lib.evaluation.metrics import confusion_matrix, format_metrics, segmentation_metrics
from emr_lib.experiments.paper import TABLE2, TABLE3, TABLE5, comparison_table

PAPER_ROWS = {
    f"{table} {name}": row
    for table, rows in (("T2", TABLE2), ("T3", TABLE3), ("T5", TABLE5))
    for name, row in rows.items()
}


@pytest.mark.parametrize("row", PAPER_ROWS)
def test_paper_tables_obey_f1_of_macro_precision_and_recall(row):
    p, r, f1 = PAPER_ROWS[row]["precision"], PAPER_ROWS[row]["recall"], PAPER_ROWS[row]["F1"]
    assert abs(2 * p * r / (p + r) - f1) < 0.011


@pytest.mark.parametrize(
    ("dataset", "number", "rows"),
    [("bijie", 2, TABLE2), (None, 2, TABLE2), ("sichuan", 3, TABLE3), ("luding", None, {})],
)
def test_comparison_table_follows_the_dataset(dataset, number, rows):
    table = comparison_table(dataset)
    assert (table.number, table.rows) == (number, rows)
    assert (f"Table {number}" in table.caption) == (number is not None)


def test_hand_computed_two_class_matrix():
    # rows truth (background, landslide), columns prediction
    cm = torch.tensor([[80, 5], [3, 12]])
    m = segmentation_metrics(cm)
    iou_bg, iou_ls = 80 / (80 + 5 + 3), 12 / (12 + 3 + 5)
    assert m["IoU_background"] == pytest.approx(iou_bg)
    assert m["IoU_landslide"] == pytest.approx(iou_ls)
    assert m["mIoU"] == pytest.approx((iou_bg + iou_ls) / 2)
    p = (80 / 83 + 12 / 17) / 2
    r = (80 / 85 + 12 / 15) / 2
    assert m["precision"] == pytest.approx(p)
    assert m["recall"] == pytest.approx(r)
    assert m["F1"] == pytest.approx(2 * p * r / (p + r))
    assert m["accuracy"] == pytest.approx(92 / 100)
    assert m["precision_landslide"] == pytest.approx(12 / 17)
    assert m["F1_landslide"] == pytest.approx(2 * 12 / (2 * 12 + 5 + 3))


def test_class_never_predicted_scores_zero_not_nan():
    m = segmentation_metrics(torch.tensor([[90, 0], [10, 0]]))  # landslide exists, never predicted
    assert m["precision_landslide"] == 0.0 and m["recall_landslide"] == 0.0 and m["IoU_landslide"] == 0.0
    assert m["precision"] == pytest.approx((90 / 100 + 0) / 2)
    assert not any(math.isnan(m[k]) for k in ("mIoU", "precision", "recall", "F1", "accuracy"))


def test_class_absent_everywhere_is_left_out_of_means():
    m = segmentation_metrics(torch.tensor([[100, 0], [0, 0]]))  # a non-landslide image, predicted right
    assert math.isnan(m["IoU_landslide"]) and math.isnan(m["precision_landslide"])
    assert m["mIoU"] == 1.0 and m["precision"] == 1.0 and m["F1"] == 1.0


def test_false_alarm_on_an_image_without_landslide():
    m = segmentation_metrics(torch.tensor([[95, 5], [0, 0]]))
    assert m["IoU_landslide"] == 0.0 and m["recall_landslide"] == 0.0  # predicted but absent: counted, as 0
    assert m["mIoU"] == pytest.approx(0.95 / 2)


def test_confusion_matrix_accumulates_and_accepts_logits():
    target = torch.tensor([[0, 1], [1, 1]])
    pred = torch.tensor([[0, 1], [0, 1]])
    cm = confusion_matrix(pred, target)
    assert cm.tolist() == [[1, 0], [1, 2]]
    logits = torch.stack([1 - pred, pred]).float().unsqueeze(0)  # (1, 2, H, W)
    assert confusion_matrix(logits, target.unsqueeze(0)).tolist() == cm.tolist()
    assert (cm + cm).sum() == 8
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(pred, target[:1])


def test_format_metrics_prints_percent():
    text = format_metrics({"mIoU": 0.817, "F1": 0.895})
    assert text == "mIoU 81.70  F1 89.50"
