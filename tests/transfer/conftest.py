"""The transfer tests' set-up: a source trained a few steps on tiny models; a target whose true map is known."""

import pytest
import torch
from transformers import AutoModel, LlamaConfig, LlamaModel

from promptembedder.training import Trainer, load_config

from tiny import make_tokenizer, save_tiny_pair, write_tiny_train_files

WIDE = 64  # the rotated target is wider than the source's 48-wide Embedding LLM


def widened_llama(model: LlamaModel, q: torch.Tensor) -> LlamaModel:
    """The same function as ``model`` in a rotated, wider residual basis: every hidden state h becomes h @ q.

    ``q`` (d, d') has orthonormal rows. Embeddings and every weight that reads the residual stream are
    multiplied by q, every weight that writes it by q^T; RMSNorm's sqrt(d'/d) larger output is undone by
    scaling its weights (and its eps) by d/d'. So input embeddings are an exact linear function of the
    source's (E q) and the pooled, normalised embeddings are the source's times q: cosine similarities, and so
    the true alignment map (W_old followed by q), are known exactly.
    """
    d, wide = q.shape
    c = model.config
    config = LlamaConfig(
        vocab_size=c.vocab_size,
        hidden_size=wide,
        intermediate_size=c.intermediate_size,
        num_hidden_layers=c.num_hidden_layers,
        num_attention_heads=c.num_attention_heads,
        num_key_value_heads=c.num_key_value_heads,
        head_dim=c.hidden_size // c.num_attention_heads,
        max_position_embeddings=c.max_position_embeddings,
        rms_norm_eps=c.rms_norm_eps * d / wide,
    )
    out = LlamaModel(config).eval()
    state = {}
    for name, w in model.state_dict().items():
        if name == "embed_tokens.weight":
            state[name] = w @ q
        elif name.endswith(("q_proj.weight", "k_proj.weight", "v_proj.weight", "gate_proj.weight", "up_proj.weight")):
            state[name] = w @ q
        elif name.endswith(("o_proj.weight", "down_proj.weight")):
            state[name] = q.T @ w
        elif name.endswith("norm.weight"):
            assert torch.all(w == 1), "a freshly initialised RMSNorm weight is uniform"
            state[name] = torch.full((wide,), (d / wide) ** 0.5)
        else:
            state[name] = w
    out.load_state_dict(state, strict=True)
    return out


@pytest.fixture(scope="session")
def setup(tmp_path_factory):
    """A source PromptEmbedder trained a few steps on (tiny Prompting LLM -> tiny llama), and a widened target."""
    folder = tmp_path_factory.mktemp("transfer")
    prompting, embedding = save_tiny_pair(folder, "llama")
    files = write_tiny_train_files(folder)
    source_config = base_config(prompting, embedding, files, folder / "source", "steps=6", "optim.alignment_lr=1e-2")
    Trainer(source_config).run()
    q = torch.linalg.qr(torch.randn(WIDE, WIDE, generator=torch.Generator().manual_seed(3)))[0][:48]
    target = folder / "tiny-llama-wide"
    widened_llama(AutoModel.from_pretrained(embedding).eval(), q).save_pretrained(target)
    make_tokenizer("plain", "right").save_pretrained(target)
    out = {"prompting": prompting, "files": files, "run": folder / "source", "target": target, "q": q, "wide": WIDE}
    out["config"] = lambda run, init="vocab", *extra: transfer_config(out, run, init, *extra)
    return out


def base_config(prompting, embedding, files, out, *extra):
    return load_config(
        None,
        [
            f"model.prompting_model={prompting}",
            f"model.embedding_model={embedding}",
            f"data.train_files=[{files[0]}, {files[1]}]",
            "model.max_length=32",
            "model.num_soft_tokens=3",
            "batch_size=8",
            "steps=3",
            "log_every=1",
            "eval_every=0",
            "checkpoint_every=100",
            "data.dev_per_task=8",
            "optim.warmup_steps=0",
            f"output_dir={out}",
            *extra,
        ],
    )


def transfer_config(setup, out, init="vocab", *extra):
    return base_config(
        setup["prompting"],
        str(setup["target"]),
        setup["files"],
        out,
        f"transfer.source={setup['run']}",
        f"transfer.init={init}",
        *extra,
    )
