"""Tiny random-initialised models and word-level tokenizers built from configs: no download, fast on a CPU."""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import (
    BertConfig,
    BertModel,
    Gemma3TextConfig,
    Gemma3TextModel,
    LlamaConfig,
    LlamaForCausalLM,
    LlamaModel,
    PreTrainedTokenizerFast,
)

from promptembedder import PromptEmbedder, PromptEmbedderConfig

WORDS = (
    "the a an of to and in is was for on with as by at from that this it be are or not his her their "
    "retrieve find classify cluster given query document passage text sentence word meaning definition "
    "similar same topic news sport music cat dog bird fish tree river mountain city house car road "
    "red green blue big small old new good bad fast slow happy sad play plays played playing guitar "
    "piano song market stock stocks fell rose price bank money bread bake cook food water fire light "
    "king queen man woman child people run runs walk walks eat eats read reads write writes "
    ". , ? ! ; :"
).split()

SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>", "[CLS]", "[SEP]"]


def make_tokenizer(style: str = "plain", padding_side: str = "right") -> PreTrainedTokenizerFast:
    """style: "plain" (no specials, like SmolLM2), "bos" (a leading <bos>, like Gemma), "bert" ([CLS] .. [SEP])."""
    vocab = {tok: i for i, tok in enumerate(SPECIALS + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    if style == "bos":
        tok.post_processor = processors.TemplateProcessing(
            single="<bos> $A", special_tokens=[("<bos>", vocab["<bos>"])]
        )
    elif style == "bert":
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
        )
    specials = dict(pad_token="<pad>", unk_token="<unk>", eos_token="<eos>")
    if style == "bos":
        specials["bos_token"] = "<bos>"
    if style == "bert":
        specials.update(cls_token="[CLS]", sep_token="[SEP]")
    return PreTrainedTokenizerFast(tokenizer_object=tok, padding_side=padding_side, model_max_length=128, **specials)


VOCAB = len(SPECIALS) + len(WORDS)


def tiny_prompting_lm(seed: int = 0, **config_overrides) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        **config_overrides,
    )
    return LlamaForCausalLM(config).eval()


def tiny_embedding_model(kind: str = "gemma", seed: int = 1):
    """kind: "gemma" (left padding, <bos>, scaled embeddings), "llama" (right padding), "bert" (encoder)."""
    torch.manual_seed(seed)
    if kind == "gemma":
        config = Gemma3TextConfig(
            vocab_size=VOCAB,
            hidden_size=48,
            intermediate_size=96,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=12,
            max_position_embeddings=256,
            sliding_window=64,
            layer_types=["sliding_attention", "full_attention"],
        )
        return Gemma3TextModel(config).eval(), make_tokenizer("bos", "left")
    if kind == "llama":
        config = LlamaConfig(
            vocab_size=VOCAB,
            hidden_size=48,
            intermediate_size=96,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=256,
        )
        return LlamaModel(config).eval(), make_tokenizer("plain", "right")
    if kind == "bert":
        config = BertConfig(
            vocab_size=VOCAB,
            hidden_size=48,
            intermediate_size=96,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=256,
        )
        return BertModel(config, add_pooling_layer=False).eval(), make_tokenizer("bert", "right")
    raise ValueError(kind)


def tiny_embedder(kind: str = "gemma", **config_kwargs) -> PromptEmbedder:
    config_kwargs.setdefault("max_length", 64)
    config = PromptEmbedderConfig(prompting_model="tiny-prompting", embedding_model=f"tiny-{kind}", **config_kwargs)
    backbone, backbone_tokenizer = tiny_embedding_model(kind)
    return PromptEmbedder.from_modules(
        config, tiny_prompting_lm(), make_tokenizer("plain", "left"), backbone, backbone_tokenizer, seed=0
    )


def save_tiny_pair(folder, kind: str = "llama") -> tuple[str, str]:
    """Save a tiny Prompting LLM and a tiny Embedding LLM as model folders; returns their paths."""
    from pathlib import Path

    folder = Path(folder)
    prompting, embedding = folder / "tiny-prompting", folder / f"tiny-{kind}"
    if not prompting.exists():
        tiny_prompting_lm().save_pretrained(prompting)
        make_tokenizer("plain", "left").save_pretrained(prompting)
    if not embedding.exists():
        backbone, tokenizer = tiny_embedding_model(kind)
        backbone.save_pretrained(embedding)
        tokenizer.save_pretrained(embedding)
    return str(prompting), str(embedding)


TINY_TASKS = {
    "animals": ("find the sentence about the same animal", ["cat", "dog", "bird", "fish"]),
    "music": ("find the sentence about the same instrument", ["guitar", "piano", "song", "music"]),
}


def write_tiny_train_files(folder) -> list[str]:
    """Two small tasks in the training format, enough for a loss to go down on tiny models."""
    import json
    import random
    from pathlib import Path

    rng = random.Random(0)
    adjectives = "red green blue big small old new good bad fast slow happy sad".split()
    verbs = "runs walks eats reads plays".split()
    paths = []
    for task, (instruction, nouns) in TINY_TASKS.items():
        rows = []
        for i in range(48):
            noun = nouns[i % len(nouns)]
            other = nouns[(i + 1) % len(nouns)]
            adj, verb = rng.choice(adjectives), rng.choice(verbs)
            rows.append(
                {
                    "task": task,
                    "instruction": instruction,
                    "query": f"the {adj} {noun}",
                    "positive": f"{adj} {noun} {verb}",
                    "negatives": [f"{adj} {other} {verb}"],
                }
            )
        path = Path(folder) / f"{task}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        paths.append(str(path))
    return paths
