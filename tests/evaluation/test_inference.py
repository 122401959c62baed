import numpy as np
import torch

from emr_lib.evaluation.inference import predict, predict_scene
from emr_lib.models import build_model


def test_predict_and_predict_scene():
    model = build_model("emr_hrnet", width="18_small")
    masks, probs = predict(model, torch.rand(2, 3, 64, 64))
    assert masks.shape == (2, 64, 64) and probs.shape == (2, 64, 64)
    assert ((probs >= 0) & (probs <= 1)).all()
    scene = np.random.default_rng(0).integers(1, 255, (100, 140, 3), dtype=np.uint8)
    scene[:, :40] = 0  # no-data
    prob = predict_scene(model, scene, tile=64, overlap=16, progress=False)
    assert prob.shape == (100, 140) and prob[:, :20].max() == 0 and prob[:, 60:].min() > 0


def test_per_image_confusion_matrices_sum_to_the_dataset_matrix():
    from emr_lib.data import SyntheticLandslides
    from emr_lib.evaluation.inference import evaluate, per_image_confusion, per_image_metrics

    model = build_model("hrnet", width="18_small")
    dataset = SyntheticLandslides(5, size=64, seed=1)
    matrices = per_image_confusion(model, dataset, batch_size=2)
    assert list(matrices) == dataset.names
    _, total = evaluate(model, dataset, progress=False)
    assert np.array(list(matrices.values())).sum(axis=0).tolist() == total.tolist()
    rows = per_image_metrics(model, dataset)
    assert [r["confusion_matrix"] for r in rows] == list(matrices.values())


def test_scale_curve_scores_each_size_and_leaves_the_padding_out():
    from emr_lib.data import SyntheticLandslides
    from emr_lib.evaluation.inference import scale_curve

    model = build_model("hrnet", width="18_small")
    dataset = SyntheticLandslides(4, size=64, seed=1)
    rows = scale_curve(model, dataset, dataset.names, 64, factors=(0.5, 1.25), batch_size=2)
    assert [(r["factor"], r["size"]) for r in rows] == [(0.5, 32), (1.25, 80)]  # 80 px is padded to 96
    for row in rows:  # every pixel of every image counted once, none of the padding
        assert row["pixels"] == 4 * row["size"] ** 2 and 0 <= row["mIoU"] <= 1
