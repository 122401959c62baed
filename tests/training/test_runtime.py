import pytest
import torch

from emr_lib.training.runtime import Distributed, epoch_seed, init_distributed, seed_everything, select_device


def test_seeds_make_torch_draws_repeat_and_epochs_differ():
    seed_everything(3)
    first = torch.rand(4)
    seed_everything(3)
    assert torch.equal(first, torch.rand(4))
    assert epoch_seed(0, 1) == epoch_seed(0, 1) != epoch_seed(0, 2) != epoch_seed(1, 2)
    assert 0 <= epoch_seed(10**9, 10**6) < 2**31


def test_device_choice_and_a_single_process(monkeypatch):
    assert select_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU is available; use --device cpu or auto"):
            select_device("cuda")
        assert select_device("auto").type in ("cpu", "mps")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    alone = init_distributed(torch.device("cpu"))
    assert alone == Distributed() and alone.main and not alone.active
    alone.barrier()  # a no-op outside torchrun
