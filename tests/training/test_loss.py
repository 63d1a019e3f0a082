import math

import pytest
import torch
import torch.nn.functional as F

from promptembedder.training.loss import InfoNCELoss, grad_cache_backward


def test_infonce_matches_a_hand_computed_value():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    d = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    loss = InfoNCELoss(temperature=0.5)(q, d)
    # query 0: logits 2, 0, 1.2 (positive 2); query 1: logits 0, 2, 1.6 (positive 2)
    l0 = -2 + math.log(math.exp(2) + math.exp(0) + math.exp(1.2))
    l1 = -2 + math.log(math.exp(0) + math.exp(2) + math.exp(1.6))
    assert math.isclose(float(loss), (l0 + l1) / 2, rel_tol=1e-6)


def test_false_negatives_are_masked_but_the_positive_is_kept():
    q = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    d = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # the same positive text twice
    mask = torch.tensor([[True, True], [True, True]])
    loss = InfoNCELoss(temperature=0.1)(q, d, false_negatives=mask)
    assert float(loss) < 1e-6
    assert float(InfoNCELoss(temperature=0.1)(q, d)) > 0.6


def test_grad_cache_gives_the_full_batch_gradients():
    torch.manual_seed(0)
    encoder = torch.nn.Linear(6, 4)
    x = torch.randn(8, 6)
    docs = F.normalize(torch.randn(10, 4), dim=-1)
    loss_fn = InfoNCELoss(0.05)

    def encode(part):
        return F.normalize(encoder(x[part]), dim=-1)

    full = loss_fn(encode(slice(None)), docs)
    full.backward()
    expected = [p.grad.clone() for p in encoder.parameters()]
    encoder.zero_grad()
    cached = grad_cache_backward(encode, docs, 8, 3, loss_fn)
    assert torch.isclose(cached, full.detach())
    for p, g in zip(encoder.parameters(), expected, strict=True):
        torch.testing.assert_close(p.grad, g, atol=1e-6, rtol=1e-5)


def test_entropy_floor_is_zero_above_the_floor_and_lifts_a_saturated_distribution_to_it():
    from promptembedder.prompting import relaxed_entropy
    from promptembedder.training.loss import EntropyFloorLoss

    floor = EntropyFloorLoss(floor=1.5, weight=1.0)
    logits = torch.tensor([[8.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]], requires_grad=True)
    assert float(relaxed_entropy(logits.detach(), 1.0)) < 0.03  # nearly one token: softmax's gradient nearly gone
    optimizer = torch.optim.SGD([logits], lr=1.0)
    for _ in range(300):
        optimizer.zero_grad()
        floor(relaxed_entropy(logits, 1.0)[:, None]).backward()
        optimizer.step()
    entropy = float(relaxed_entropy(logits.detach(), 1.0))
    assert 1.5 <= entropy < 1.8  # raised past the floor by the last step, then left alone
    above = torch.zeros(1, 8, requires_grad=True)  # uniform: log 8 = 2.08 nats, above the floor
    penalty = floor(relaxed_entropy(above, 1.0)[:, None])
    penalty.backward()
    assert float(penalty.detach()) == 0.0 and float(above.grad.abs().sum()) == 0.0


def test_entropy_floor_rejects_negative_settings():
    from promptembedder.training.loss import EntropyFloorLoss

    with pytest.raises(ValueError, match="floor and weight"):
        EntropyFloorLoss(floor=-1.0)


def test_prompt_repulsion_pushes_a_prompt_below_the_ceiling_and_leaves_one_below_it_alone():
    from promptembedder.training.loss import PromptRepulsionLoss

    repel = PromptRepulsionLoss(ceiling=0.5, weight=1.0)
    others = torch.tensor([[[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]]])  # N=2 prompts of K=1 token, width 3
    soft = torch.tensor([[1.0, 1.0, 0.1]], requires_grad=True)  # cos 0.70 with both: above the ceiling
    optimizer = torch.optim.SGD([soft], lr=0.5)
    for _ in range(200):
        optimizer.zero_grad()
        repel(soft, others).backward()
        optimizer.step()
    assert float(repel.similarity(soft.detach(), others).max()) <= 0.5 + 1e-3
    below = torch.tensor([[0.0, 0.0, 1.0]], requires_grad=True)  # orthogonal to both
    penalty = repel(below, others)
    penalty.backward()
    assert float(penalty.detach()) == 0.0 and float(below.grad.abs().sum()) == 0.0


def test_prompt_repulsion_rejects_bad_settings():
    from promptembedder.training.loss import PromptRepulsionLoss

    with pytest.raises(ValueError, match="ceiling must be in"):
        PromptRepulsionLoss(ceiling=1.5)
    with pytest.raises(ValueError, match="weight >= 0"):
        PromptRepulsionLoss(ceiling=0.5, weight=-1.0)
