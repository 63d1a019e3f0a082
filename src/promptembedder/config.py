"""Configuration of a PromptEmbedder: which models play which role and how the soft prompt is made."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Relaxation(str, Enum):
    """How a generation step turns next-token logits into the next input vector, keeping it differentiable."""

    SOFTMAX = "softmax"
    """softmax(logits / tau) @ E: a convex combination of vocabulary embeddings."""
    GUMBEL = "gumbel"
    """Gumbel-softmax: softmax((logits + g) / tau) @ E with Gumbel noise g while training."""
    STRAIGHT_THROUGH = "straight-through"
    """The embedding of the argmax token forward; the softmax's gradient backward."""


class Conditioning(str, Enum):
    """What the Prompting LLM reads."""

    INSTRUCTION = "instruction"
    """The task instruction alone: one soft prompt per task, cacheable."""
    INSTRUCTION_TEXT = "instruction+text"
    """The instruction followed by the text: one soft prompt per text."""


class Pooling(str, Enum):
    LAST = "last"
    """The hidden state of the last real token (whatever the padding side)."""
    MEAN = "mean"
    """The mean over the text's tokens (a causal model's leading BOS state is text-independent: left out)."""
    MEAN_LAST = "mean+last"
    """Both read-outs side by side, each L2-normalised and scaled by 1/sqrt(2): a unit vector twice the
    backbone's width whose cosine with another is the mean of the two read-outs' cosines. With a text template
    the last state summarises the text (what retrieval rewards) and the mean keeps its detail (what STS and
    clustering reward), so one model need not choose."""


PROMPTEOL_TEMPLATE = 'This sentence : "{text}" means in one word:"'
"""PromptEOL's template (Jiang et al. 2023): a causal LM's last state after it is a summary of the text."""

TEXT_TEMPLATES = {"prompteol": PROMPTEOL_TEMPLATE}


def resolve_text_template(template: str) -> str:
    """A template by name ('prompteol') or as written ('... {text} ...'); '' is none. A clear error otherwise."""
    template = TEXT_TEMPLATES.get(template, template)
    if template and template.count("{text}") != 1:
        names = ", ".join(TEXT_TEMPLATES)
        raise ValueError(
            f"text_template {template!r} must contain '{{text}}' exactly once, or be one of: {names} ('' for none)"
        )
    return template


class PromptPosition(str, Enum):
    """Where the K soft vectors sit in what the Embedding LLM reads."""

    PREFIX = "prefix"
    """[BOS][soft prompt][text]; pooling reads the text's states, which on a causal backbone have seen the prompt."""
    SUFFIX = "suffix"
    """[BOS][text][soft prompt]; the K positions read the whole text and are what is pooled (mean: their mean,
    last: the last of them), so on a causal backbone the prompt decides what is read out, not only how."""


class SimilarityFunction(str, Enum):
    """How two embeddings are compared (the names sentence-transformers uses)."""

    COSINE = "cosine"
    DOT = "dot"
    EUCLIDEAN = "euclidean"
    """Negative Euclidean distance: larger is more similar."""
    MANHATTAN = "manhattan"
    """Negative Manhattan distance: larger is more similar."""


class AlignmentInit(str, Enum):
    RANDOM = "random"
    VOCAB = "vocab"
    """Least squares between the two models' input embeddings of the tokens both vocabularies share."""


class DocumentPrompt(str, Enum):
    PLAIN = "plain"
    """Documents are embedded without a soft prompt: no gradient on that side, and cacheable."""
    PROMPTED = "prompted"
    """Documents get the task's soft prompt too."""


def _enum_field(enum: type[Enum], default: Enum, help: str) -> Any:
    return field(default=default, metadata={"help": f"{help} Choices: {', '.join(e.value for e in enum)}."})


_NOT_IDENTITY = ("prompts", "similarity_fn_name")


@dataclass
class PromptEmbedderConfig:
    """Everything needed to rebuild a PromptEmbedder around the same two backbones."""

    prompting_model: str = field(
        default="smollm2-135m", metadata={"help": "The Prompting LLM: a known short name, a folder or a hub id."}
    )
    embedding_model: str = field(
        default="gemma3-270m", metadata={"help": "The frozen Embedding LLM: a known short name, a folder or a hub id."}
    )
    num_soft_tokens: int = field(default=5, metadata={"help": "K, the number of soft prompt vectors generated."})
    relaxation: Relaxation = _enum_field(Relaxation, Relaxation.SOFTMAX, "Continuous relaxation of each step.")
    temperature: float = field(default=1.0, metadata={"help": "tau of the relaxation's softmax (> 0)."})
    conditioning: Conditioning = _enum_field(Conditioning, Conditioning.INSTRUCTION, "What the Prompting LLM reads.")
    document_prompt: DocumentPrompt = _enum_field(
        DocumentPrompt, DocumentPrompt.PLAIN, "Whether documents get the soft prompt."
    )
    pooling: Pooling = _enum_field(Pooling, Pooling.MEAN, "How the Embedding LLM's states become one vector.")
    prompt_position: PromptPosition = _enum_field(
        PromptPosition, PromptPosition.PREFIX, "Where the soft prompt sits: before the text or after it."
    )
    text_template: str = field(
        default="",
        metadata={
            "help": "What the Embedding LLM reads around each text (queries and documents): a string with one "
            "{text}, or 'prompteol' for PromptEOL's one-word template, read out best with pooling 'last'. "
            "'' reads the text as is."
        },
    )
    normalize: bool = field(default=True, metadata={"help": "L2-normalise embeddings."})
    alignment_init: AlignmentInit = _enum_field(AlignmentInit, AlignmentInit.VOCAB, "How W starts.")
    alignment_bias: bool = field(default=True, metadata={"help": "Give the alignment map a bias (affine map)."})
    mixture_table: bool = field(
        default=False,
        metadata={
            "help": "W also reads each soft token's mixture weights over the Prompting LLM's vocabulary: the "
            "weight on a token both vocabularies share lands on the Embedding LLM's own row for it, and W (fitted "
            "on the shared tokens) carries the rest and learns as a correction. What transfer.init=mixture sets."
        },
    )
    prompt_gate: bool = field(
        default=False,
        metadata={
            "help": "Blend each prompted embedding with the same text's plain one, e = plain + g (prompted - plain), "
            "g a learned scalar (kept with W) that starts at 0: step 0 is the frozen backbone exactly and training "
            "adds only as much of the prompt as helps. Costs one more forward (no gradient) of each prompted text."
        },
    )
    deep_prompt: bool = field(
        default=False,
        metadata={
            "help": "Deep prompts (P-tuning v2, Liu et al. 2022): W also maps each soft token to an offset added to "
            "the hidden state at its position before every layer of the Embedding LLM after the first, so the prompt "
            "steers every layer, not only what the first reads. The offsets start at 0 (step 0 is the shallow model) "
            "and cost (layers - 1) more d_p x d_e matrices with W, which a transfer trains afresh too."
        },
    )
    max_length: int = field(
        default=512, metadata={"help": "Most tokens the Embedding LLM reads, soft prompt included."}
    )
    instruction_max_length: int = field(
        default=64, metadata={"help": "Most instruction tokens the Prompting LLM reads."}
    )
    prompts: dict[str, str] = field(
        default_factory=dict,
        metadata={
            "help": "Task name -> instruction, as sentence-transformers' `prompts`: encode(prompt_name=TASK) "
            "embeds with that instruction's soft prompt. Names only: no effect on any embedding."
        },
    )
    similarity_fn_name: SimilarityFunction = _enum_field(
        SimilarityFunction, SimilarityFunction.COSINE, "What `similarity(a, b)` computes."
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(f.default, Enum) and not isinstance(value, type(f.default)):
                enum = type(f.default)
                try:
                    setattr(self, f.name, enum(value))
                except ValueError:
                    choices = ", ".join(e.value for e in enum)
                    raise ValueError(f"{f.name}={value!r} is not valid; choose one of: {choices}") from None
        if not isinstance(self.num_soft_tokens, int) or self.num_soft_tokens < 1:
            raise ValueError(f"num_soft_tokens must be a positive integer, got {self.num_soft_tokens!r}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")
        if self.max_length <= self.num_soft_tokens + 2:
            raise ValueError(
                f"max_length={self.max_length} leaves no room for text after {self.num_soft_tokens} soft tokens"
            )
        resolve_text_template(self.text_template)
        if self.instruction_max_length < 1:
            raise ValueError(f"instruction_max_length must be >= 1, got {self.instruction_max_length}")
        if not isinstance(self.prompts, dict):
            raise ValueError(f"prompts must map task names to instructions, got {type(self.prompts).__name__}")
        for name, instruction in self.prompts.items():
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"prompts: task name {name!r} must be a non-empty string")
            if not isinstance(instruction, str) or not instruction.strip():
                raise ValueError(f"prompts[{name!r}] must be a non-empty instruction string, got {instruction!r}")

    def instruction_for(self, prompt_name: str) -> str:
        """The instruction saved under a task name; a clear error names the known ones."""
        if prompt_name not in self.prompts:
            known = ", ".join(sorted(self.prompts)) or "none saved"
            raise ValueError(
                f"Unknown prompt_name {prompt_name!r} (known: {known}); add it with "
                f"model.config.prompts[{prompt_name!r}] = 'an instruction', or pass prompt='an instruction'"
            )
        return self.prompts[prompt_name]

    def identity_json(self) -> str:
        """The settings that change an embedding (task names and the similarity function do not)."""
        data = {k: v for k, v in self.to_dict().items() if k not in _NOT_IDENTITY}
        if data["prompt_position"] == PromptPosition.PREFIX.value:
            del data["prompt_position"]  # a prefix model keeps the identity it had before the option existed
        if not data["text_template"]:
            del data["text_template"]  # likewise a model that reads its texts as they are
        if not data["mixture_table"]:
            del data["mixture_table"]  # and one whose W reads the soft vectors alone
        if not data["prompt_gate"]:
            del data["prompt_gate"]  # and one that reads its prompted embeddings as they come
        if not data["deep_prompt"]:
            del data["deep_prompt"]  # and one whose prompt only the first layer reads
        return json.dumps(data, indent=2, sort_keys=True)

    def to_dict(self) -> dict[str, Any]:
        return {k: (v.value if isinstance(v, Enum) else v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PromptEmbedderConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"Unknown PromptEmbedderConfig keys: {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)
