"""The variants a bench compares: each is a set of TrainConfig overrides on one shared base config.

Every variant trains with the same Trainer on the same data, steps, batch and lengths; only the method and
its options differ. Learning rates are each method's usual one (LoRA and the Prompting LLM 1e-4, W 1e-3,
prompt-tuning vectors 1e-2, as soft prompts need large steps); they are part of the recorded config.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    overrides: tuple[str, ...] = field(default_factory=tuple)


_CACHED = ("model.document_prompt=plain", "document_cache=true", "speed.precompute_documents=true")
# The floor acts on a training Prompting LLM: the baselines, which have none, drop the base config's (full.yaml's).
_NO_PROMPTER = ("entropy_floor=0",)
_PROMPTER_LORA = ("prompting_training=lora", "lora.r=16", "lora.alpha=32", "lora.target_modules=all-linear")

VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in [
        Variant(
            "lora",
            "LoRA r=16 on every linear layer of the Embedding LLM; instruction as query text; both sides trained",
            ("method=lora", "lora.r=16", "lora.alpha=32", "lora.target_modules=all-linear", *_NO_PROMPTER),
        ),
        Variant(
            "prompt-tuning",
            "K learned vectors per task on the frozen Embedding LLM; documents plain and cached",
            ("method=prompt-tuning", "optim.lr=1e-2", *_CACHED, *_NO_PROMPTER),
        ),
        Variant(
            "pe-prompted",
            "PromptEmbedder; documents get the soft prompt (with gradients)",
            ("model.document_prompt=prompted",),
        ),
        Variant(
            "pe-prompted-nograd",
            "PromptEmbedder; documents get the soft prompt without gradient (no backward through them)",
            ("model.document_prompt=prompted", "document_gradient=false"),
        ),
        Variant(
            "pe-prompted-lora",
            "as pe-prompted, the Prompting LLM trained through LoRA r=16 instead of fully",
            ("model.document_prompt=prompted", *_PROMPTER_LORA),
        ),
        Variant(
            "pe-plain",
            "PromptEmbedder; documents plain, no gradient, embedded every step",
            ("model.document_prompt=plain", "document_cache=false"),
        ),
        Variant("pe-cached", "PromptEmbedder; documents plain and cached (embedded once, before the steps)", _CACHED),
        Variant(
            "pe-cached-lora",
            "as pe-cached, the Prompting LLM trained through LoRA r=16 instead of fully",
            (*_CACHED, *_PROMPTER_LORA),
        ),
        # Speed variants of the headline configuration (not in the default set).
        Variant(
            "pe-cached-no-kv",
            "as pe-cached, without the KV cache through the generation",
            (*_CACHED, "speed.kv_cache=false"),
        ),
        Variant(
            "pe-cached-graphs",
            "as pe-cached, generation captured in CUDA graphs through dynamo (no kernel compilation: starts fast)",
            (
                *_CACHED,
                "speed.compile=default",
                "speed.compile_backend=cudagraphs",
                "speed.kv_cache=false",
                "speed.pad_instructions_to=64",
                "speed.fused_optimizer=true",
            ),
        ),
        Variant(
            "pe-cached-compiled",
            "as pe-cached, generation under torch.compile (inductor) with CUDA graphs, fixed-width instructions",
            (
                *_CACHED,
                "speed.compile=reduce-overhead",
                "speed.kv_cache=false",
                "speed.pad_instructions_to=64",
                "speed.fused_optimizer=true",
            ),
        ),
    ]
}

DEFAULT_VARIANTS = ("lora", "prompt-tuning", "pe-prompted", "pe-plain", "pe-cached", "pe-cached-lora")
BASELINE = "lora"  # every ratio is to this variant, measured in the same run


def parse_variants(names: str | list[str] | None) -> list[Variant]:
    """Comma-separated or listed variant names; ``None`` or empty: the default set."""
    if not names:
        return [VARIANTS[n] for n in DEFAULT_VARIANTS]
    wanted = [n.strip() for item in ([names] if isinstance(names, str) else names) for n in item.split(",")]
    unknown = [n for n in wanted if n and n not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    return [VARIANTS[n] for n in dict.fromkeys(n for n in wanted if n)]
