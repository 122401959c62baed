import numpy as np
import torch

from emr_lib.inference import predict, predict_scene
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
