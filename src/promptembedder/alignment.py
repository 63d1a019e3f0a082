"""The alignment map W: a linear map from the Prompting LLM's input space into the Embedding LLM's.

With ``init="vocab"`` W starts as the least-squares fit between the two models' input embeddings of the
tokens that both vocabularies contain ("anchors"): for anchor token t with prompting embedding x_t and
embedding-LLM embedding y_t,

    W, b = argmin  sum_t || x_t W + b - y_t ||^2  +  lambda ||W||^2

so a soft token that is (nearly) the prompting embedding of a word lands (nearly) on the embedding LLM's
own vector for that word from the first step.
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor, nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from promptembedder.prompting import vocabulary_embeddings

logger = logging.getLogger(__name__)

_WORD_START_MARKERS = ("\u0120", "\u2581")  # byte-level BPE's "Ġ" and SentencePiece's "▁"


def surface_forms(tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
    """Map each ordinary token's surface string (word-initial tokens start with a space) to its id.

    Tokenizers mark the start of a word differently ("Ġthe", "▁the", WordPiece's "the" vs "##ing"); bringing
    them to one spelling lets vocabularies of different families be matched string for string.
    """
    vocab = tokenizer.get_vocab()
    special = set(tokenizer.all_special_ids)
    wordpiece = sum(tok.startswith("##") for tok in vocab) > 0.01 * len(vocab)
    forms: dict[str, int] = {}
    for token, idx in sorted(vocab.items(), key=lambda item: item[1]):
        if idx in special or not token or (token.startswith("<") and token.endswith(">")):
            continue
        if wordpiece:
            form = token[2:] if token.startswith("##") else " " + token
        else:
            form = token
            for marker in _WORD_START_MARKERS:
                form = form.replace(marker, " ")
        if form.strip():
            forms.setdefault(form, idx)
    return forms


def shared_anchors(source: PreTrainedTokenizerBase, target: PreTrainedTokenizerBase) -> tuple[Tensor, Tensor]:
    """Ids (in source, in target) of the tokens whose surface strings occur in both vocabularies."""
    src, tgt = surface_forms(source), surface_forms(target)
    common = sorted(set(src) & set(tgt))
    return torch.tensor([src[f] for f in common], dtype=torch.long), torch.tensor(
        [tgt[f] for f in common], dtype=torch.long
    )


def least_squares_map(x: Tensor, y: Tensor, *, bias: bool = True, ridge: float = 1e-4) -> tuple[Tensor, Tensor]:
    """W (d_in, d_out) and b (d_out) minimising ||x W + b - y||^2 + ridge * tr(x'x)/d_in * ||W||^2."""
    x, y = x.float(), y.float()
    x_mean = x.mean(0) if bias else torch.zeros(x.shape[1])
    y_mean = y.mean(0) if bias else torch.zeros(y.shape[1])
    xc, yc = x - x_mean, y - y_mean
    # The products in fp32 (fast), the solve in fp64 (the Gram matrix can be ill-conditioned).
    gram, cross = (xc.T @ xc).double(), (xc.T @ yc).double()
    gram += ridge * gram.diagonal().mean() * torch.eye(gram.shape[0], dtype=gram.dtype)
    w = torch.linalg.solve(gram, cross).float()
    return w.float(), (y_mean - x_mean @ w).float()


def held_out_map_accuracy(
    x: Tensor, y: Tensor, target_vocabulary: Tensor, target_ids: Tensor, *, held_out: float = 0.1, seed: int = 0
) -> float:
    """Top-1 accuracy of a least-squares anchor map on anchors it was not fitted on.

    ``x`` (n, d_in) and ``y`` (n, d_out) are the two models' embeddings of n shared tokens, ``target_ids`` those
    tokens' ids in ``target_vocabulary`` (V, d_out). A random ``held_out`` share is left out of the fit; each
    left-out x is mapped and counts as a hit when its nearest target row (cosine) is its own token. This checks a
    map before anything trains with it: a soft token near a word only reaches the target as that word if the
    map carries words it has not seen to the right place.
    """
    if not 0 < held_out < 1:
        raise ValueError(f"held_out must lie in (0, 1), got {held_out}")
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_test = max(1, int(len(x) * held_out))
    test, fit = order[:n_test], order[n_test:]
    w, b = least_squares_map(x[fit], y[fit])
    mapped = nn.functional.normalize(x[test].float() @ w + b, dim=-1)
    vocabulary = nn.functional.normalize(target_vocabulary.float(), dim=-1)
    hits = 0
    for chunk in torch.split(torch.arange(n_test), 512):  # (512, V) similarities at a time, not (n_test, V)
        nearest = (mapped[chunk] @ vocabulary.T).argmax(dim=-1)
        hits += int((nearest == target_ids[test[chunk]]).sum())
    return hits / n_test


def anchor_fit(
    source_model: PreTrainedModel,
    source_tokenizer: PreTrainedTokenizerBase,
    target_model: PreTrainedModel,
    target_tokenizer: PreTrainedTokenizerBase,
    *,
    bias: bool = True,
    error: type[Exception] = ValueError,
    hint: str = "use alignment_init='random' for this pair of models",
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Shared tokens' ids (source, target), both models' embeddings of them (x, y), and the least-squares W0
    (d_in, d_out) and b0 of y on x. Fewer shared tokens than dimensions to fit raise ``error`` with ``hint``."""
    src_ids, tgt_ids = shared_anchors(source_tokenizer, target_tokenizer)
    width = vocabulary_embeddings(source_model).shape[1]
    if len(src_ids) < width:
        raise error(
            f"Only {len(src_ids)} tokens are shared by the two vocabularies, fewer than the "
            f"{width} dimensions to fit; {hint}."
        )
    x = vocabulary_embeddings(source_model).detach()[src_ids.to(source_model.device)].float().cpu()
    y = vocabulary_embeddings(target_model).detach()[tgt_ids.to(target_model.device)].float().cpu()
    w, b = least_squares_map(x, y, bias=bias)
    return src_ids, tgt_ids, x, y, w, b


class AlignmentMap(nn.Module):
    """``W``: prompting width -> embedding width, the only link between the two LLMs.

    Example::

        align = AlignmentMap(576, 640)
        aligned = align(soft_prompts)        # (B, K, 576) -> (B, K, 640)

    With a **mixture table** (:meth:`build_mixture_table`) W also reads each soft token's mixture weights p over
    the Prompting LLM's vocabulary (the soft token is s = p @ E_p)::

        out = s W + b + p[shared] @ D,        D_t = y_t - (x_t W0 + b0)   for each shared token t

    At W = W0 a soft token that is a mixture of shared tokens lands on the same mixture of the Embedding LLM's
    *own* rows for them, however poorly a linear map carries words between the two spaces (Prompt Recycling's
    "lin-comb", Lester et al. 2022); W, trained, is a correction on top. ``D`` is fixed: a function of the two
    vocabularies, rebuilt whenever the model is built, never saved (it is n_shared x d_out, often 100+ MB).

    With ``deep_layers`` L (config.deep_prompt) W also carries one matrix per deeper layer, ``V_l``, and returns
    the K rows above followed by L*K more, layer by layer: ``s V_l``, the offsets the Embedding LLM adds to the
    hidden states at the prompt's positions before its layer l+1. They start at 0, so the rows are zeros and
    the model reads exactly as a shallow one until training moves them::

        align = AlignmentMap(576, 640, deep_layers=17)
        rows = align(soft_prompts)           # (B, K, 576) -> (B, 18 * K, 640)
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, gate: bool = False, deep_layers: int = 0
    ) -> None:
        super().__init__()
        if deep_layers < 0:
            raise ValueError(f"deep_layers must be >= 0, got {deep_layers}")
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        # Zeros, not a random init: a deep offset that starts at 0 cannot hurt the backbone before it has learned.
        self.deep = nn.Parameter(torch.zeros(deep_layers, in_features, out_features)) if deep_layers else None
        # The prompt gate g (config.prompt_gate): how much of the prompted embedding replaces the plain one. It
        # belongs to this backbone as W does, so it lives, saves and transfers (afresh, at 0) with W.
        self.gate = nn.Parameter(torch.zeros(())) if gate else None
        self.num_anchors: int | None = None
        self.register_buffer("table_ids", None, persistent=False)
        self.register_buffer("table_rows", None, persistent=False)

    @property
    def in_features(self) -> int:
        return self.linear.in_features

    @property
    def out_features(self) -> int:
        return self.linear.out_features

    @property
    def has_table(self) -> bool:
        return self.table_ids is not None

    @property
    def deep_layers(self) -> int:
        return 0 if self.deep is None else self.deep.shape[0]

    def forward(self, soft_prompts: Tensor, weights: Tensor | None = None) -> Tensor:
        """(..., K, d_in) soft tokens -> (..., K, d_out), or (..., (1 + L) K, d_out) with deep layers;
        ``weights`` (..., K, V): their mixture weights, for a table."""
        out = self._first_layer(soft_prompts, weights)
        if self.deep is None:
            return out
        offsets = torch.einsum("...kd,lde->...lke", soft_prompts.to(self.deep.dtype), self.deep)
        return torch.cat([out, offsets.flatten(-3, -2)], dim=-2)

    def _first_layer(self, soft_prompts: Tensor, weights: Tensor | None) -> Tensor:
        out = self.linear(soft_prompts.to(self.linear.weight.dtype))
        if self.table_ids is None:
            return out
        if weights is None:
            raise ValueError(
                "this alignment map has a mixture table, so it needs each soft token's mixture weights too: "
                "call it as align(soft, weights) with PromptingLLM(texts, return_weights=True)"
            )
        return out + weights[..., self.table_ids].to(self.table_rows.dtype) @ self.table_rows

    def init_from_vocabularies(
        self,
        source_model: PreTrainedModel,
        source_tokenizer: PreTrainedTokenizerBase,
        target_model: PreTrainedModel,
        target_tokenizer: PreTrainedTokenizerBase,
    ) -> int:
        """Fit W on the shared tokens' input embeddings; returns the number of anchors found."""
        return self.fit_vocabularies(source_model, source_tokenizer, target_model, target_tokenizer)

    def build_mixture_table(
        self,
        source_model: PreTrainedModel,
        source_tokenizer: PreTrainedTokenizerBase,
        target_model: PreTrainedModel,
        target_tokenizer: PreTrainedTokenizerBase,
    ) -> int:
        """Build the fixed table D from the shared tokens (W itself is left as it is); returns their number."""
        vocabularies = (source_model, source_tokenizer, target_model, target_tokenizer)
        return self.fit_vocabularies(*vocabularies, weights=False, table=True)

    @torch.no_grad()
    def fit_vocabularies(
        self,
        source_model: PreTrainedModel,
        source_tokenizer: PreTrainedTokenizerBase,
        target_model: PreTrainedModel,
        target_tokenizer: PreTrainedTokenizerBase,
        *,
        weights: bool = True,
        table: bool = False,
    ) -> int:
        """One anchor fit W0, b0 on the shared tokens; set W to it (``weights``) and/or build the mixture table
        relative to it (``table``). Returns the number of shared tokens."""
        vocabularies = (source_model, source_tokenizer, target_model, target_tokenizer)
        src_ids, _, x, y, w, b = anchor_fit(*vocabularies, bias=self.linear.bias is not None)
        if weights:
            self.linear.weight.copy_(w.T.to(self.linear.weight))
            if self.linear.bias is not None:
                self.linear.bias.copy_(b.to(self.linear.bias))
            self.num_anchors = len(src_ids)
            logger.info("alignment map fitted on %d shared vocabulary anchors", self.num_anchors)
        if table:
            device = self.linear.weight.device
            self.table_ids = src_ids.to(device)
            self.table_rows = (y - (x @ w + b)).to(device=device, dtype=torch.float32)  # b is 0 without bias
            logger.info("mixture table built on %d shared tokens", len(src_ids))
        return len(src_ids)
