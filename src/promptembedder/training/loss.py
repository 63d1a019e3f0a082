"""InfoNCE with in-batch and hard negatives, its cached-gradient (GradCache) form, the entropy floor that
keeps the Prompting LLM's relaxation soft, and the repulsion that keeps different tasks' prompts apart."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class InfoNCELoss(nn.Module):
    r"""Contrastive loss of queries against their positives, everyone else's positives and hard negatives.

    For B queries q_i with positives p_i and a pool of documents D = {p_1..p_B} ∪ {hard negatives}, all
    L2-normalised,

        loss = -1/B * sum_i log( exp(q_i·p_i / tau) / sum_{d in D, d not a false negative of i} exp(q_i·d / tau) )

    A document whose text equals query i's positive (two words with one definition, say) is not a negative
    of i: ``false_negatives`` masks it out. tau defaults to 0.02.

    Example::

        >>> import torch, torch.nn.functional as F
        >>> loss = InfoNCELoss(temperature=0.02)
        >>> q = F.normalize(torch.randn(4, 8), dim=-1)
        >>> docs = F.normalize(torch.randn(6, 8), dim=-1)       # 4 positives, then 2 hard negatives
        >>> float(loss(q, docs)) > 0
        True
    """

    def __init__(self, temperature: float = 0.02) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(
        self, queries: Tensor, documents: Tensor, positives: Tensor | None = None, false_negatives: Tensor | None = None
    ) -> Tensor:
        """queries (B, d); documents (N, d) with N >= B; positives (B,) index of each query's positive in
        documents (default: row i); false_negatives (B, N) bool, True where a document must not count."""
        if positives is None:
            positives = torch.arange(queries.shape[0], device=queries.device)
        logits = queries.float() @ documents.float().T / self.temperature
        if false_negatives is not None:
            keep_positive = F.one_hot(positives, documents.shape[0]).bool()
            logits = logits.masked_fill(false_negatives & ~keep_positive, float("-inf"))
        return F.cross_entropy(logits, positives)


class EntropyFloorLoss(nn.Module):
    r"""Hinge penalty on soft tokens whose relaxed distribution has saturated onto a few tokens.

    For the entropies H_{b,k} (nats) of the K relaxed distributions p_k = softmax(logits_k / tau) of B
    prompts,

        loss = weight * 1/(B K) * sum_{b,k} max(0, floor - H_{b,k})

    Why: softmax's Jacobian diag(p) - p p^T vanishes as p becomes one-hot, and the contrastive loss pulls each
    p toward a vertex of the simplex (a linear function of p @ E is best at a single token). Unchecked, the
    Prompting LLM's logits grow until every step is one token, its gradient stops, and every instruction gets
    the same prompt. Above the floor the penalty is 0 and changes nothing.

    Example::

        >>> import torch
        >>> floor = EntropyFloorLoss(floor=2.0, weight=1.0)
        >>> float(floor(torch.tensor([[0.5, 3.0]])))        # (2.0 - 0.5 + 0) / 2
        0.75
    """

    def __init__(self, floor: float, weight: float = 1.0) -> None:
        super().__init__()
        if floor < 0 or weight < 0:
            raise ValueError(f"floor and weight must be >= 0, got floor={floor}, weight={weight}")
        self.floor, self.weight = floor, weight

    def forward(self, entropy: Tensor) -> Tensor:
        """entropy (B, K) from ``PromptingLLM(texts, return_entropy=True)``; a scalar."""
        return self.weight * (self.floor - entropy.float()).clamp(min=0).mean()


class PromptRepulsionLoss(nn.Module):
    r"""Hinge penalty on a soft prompt that is too much like other tasks' prompts.

    For this step's prompt s (K soft tokens, flattened to one vector) and the prompts o_1..o_N of N other
    tasks (no gradient),

        loss = weight * 1/N * sum_n max(0, cos(s, o_n) - ceiling)

    Why: past a few hundred steps the contrastive loss alone finds one prompt that serves every task (a
    shared read-out prefix) and the Prompting LLM stops reading the instruction. Keeping prompts of
    different tasks below a cosine ceiling makes the instruction matter; below the ceiling the penalty is 0.

    Example::

        >>> import torch
        >>> repel = PromptRepulsionLoss(ceiling=0.5)
        >>> s = torch.tensor([[1.0, 0.0]])                     # K=1 soft token of width 2
        >>> others = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])  # the same prompt, and an orthogonal one
        >>> float(repel(s, others))                            # (max(0, 1 - 0.5) + max(0, 0 - 0.5)) / 2
        0.25
    """

    def __init__(self, ceiling: float, weight: float = 1.0) -> None:
        super().__init__()
        if not -1 <= ceiling <= 1 or weight < 0:
            raise ValueError(f"ceiling must be in [-1, 1] and weight >= 0, got ceiling={ceiling}, weight={weight}")
        self.ceiling, self.weight = ceiling, weight

    def similarity(self, soft: Tensor, others: Tensor) -> Tensor:
        """Cosines (N,) of the prompt ``soft`` (K, d) with each of ``others`` (N, K, d)."""
        mine = F.normalize(soft.float().flatten(), dim=0)
        return F.normalize(others.float().flatten(1), dim=-1) @ mine

    def forward(self, soft: Tensor, others: Tensor) -> Tensor:
        """``soft`` (K, d) with its graph, ``others`` (N, K, d); a scalar."""
        return self.weight * (self.similarity(soft, others) - self.ceiling).clamp(min=0).mean()


def grad_cache_backward(
    encode_queries: Callable[[slice], Tensor],
    documents: Tensor,
    num_queries: int,
    chunk: int,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    backward: Callable[[Tensor], None] = lambda t: t.backward(),
) -> Tensor:
    """One step's gradients for a batch too large to hold activations for, exactly (GradCache).

    1. embed all queries in chunks without a graph; 2. compute the loss on those representations (made
    leaves) and backpropagate to them only; 3. re-embed each chunk with a graph and backpropagate the cached
    representation gradients through it. Memory is that of one chunk; the gradients equal the full batch's.
    ``documents`` may carry a graph (prompted documents): its gradient flows in step 2.
    """
    # Each chunk's second pass replays the random state of its first, the CPU's and every GPU's (Gumbel noise
    # and dropout must be the same draw).
    states, parts = [], []
    with torch.no_grad():
        for i in range(0, num_queries, chunk):
            states.append(_rng_states())
            parts.append(encode_queries(slice(i, i + chunk)))
    after = _rng_states()
    reps = torch.cat(parts).detach().requires_grad_(True)
    loss = loss_fn(reps, documents)
    backward(loss)
    cached = reps.grad
    for state, i in zip(states, range(0, num_queries, chunk), strict=True):
        _set_rng_states(state)
        part = encode_queries(slice(i, i + chunk))
        backward((part * cached[i : i + chunk].to(part.dtype)).sum())
    _set_rng_states(after)
    return loss.detach()


def _rng_states() -> tuple[Tensor, list[Tensor]]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    return torch.get_rng_state(), cuda


def _set_rng_states(states: tuple[Tensor, list[Tensor]]) -> None:
    cpu, cuda = states
    torch.set_rng_state(cpu)
    if cuda:
        torch.cuda.set_rng_state_all(cuda)
