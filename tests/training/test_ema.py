"""training/ema.py: the weight average's maths (a Trainer that evaluates and saves it: test_trainer.py)."""

import pytest
import torch

from promptembedder.training.ema import WeightAverage


def test_update_follows_the_warmed_up_decay():
    w = torch.nn.Parameter(torch.zeros(3))
    ema = WeightAverage({"w": w}, decay=0.9)
    assert ema.decay_at(0) == pytest.approx(0.1) and ema.decay_at(1000) == 0.9
    expected = torch.zeros(3)
    for step in range(1, 6):
        with torch.no_grad():
            w.add_(1.0)
        ema.update({"w": w}, step)
        d = min(0.9, (1 + step) / (10 + step))
        expected = d * expected + (1 - d) * w.detach()
    torch.testing.assert_close(ema.averages["w"], expected)


def test_applied_swaps_the_average_in_and_the_weights_back():
    w = torch.nn.Parameter(torch.ones(2))
    ema = WeightAverage({"w": w}, decay=0.5)
    with torch.no_grad():
        w.mul_(3.0)
    with ema.applied({"w": w}):
        assert w.tolist() == [1.0, 1.0]
    assert w.tolist() == [3.0, 3.0]


def test_state_dict_round_trip_and_missing_keys():
    w = torch.nn.Parameter(torch.arange(3.0))
    ema = WeightAverage({"w": w}, decay=0.5)
    saved = ema.state_dict()
    assert list(saved) == ["ema.w"]
    other = WeightAverage({"w": torch.nn.Parameter(torch.zeros(3))}, decay=0.5)
    other.load_state_dict(saved)
    torch.testing.assert_close(other.averages["w"], torch.arange(3.0))
    with pytest.raises(KeyError, match="no averaged weights"):
        other.load_state_dict({"w": torch.zeros(3)})
    with pytest.raises(ValueError, match=r"decay must be in \(0, 1\)"):
        WeightAverage({"w": w}, decay=1.0)


def test_the_modules_example_runs():
    import doctest

    from promptembedder.training import ema

    result = doctest.testmod(ema)
    assert result.attempted > 0 and result.failed == 0
