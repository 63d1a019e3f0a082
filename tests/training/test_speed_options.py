"""Trainer-level speed options: each gives the losses of the plain run (up to float rounding)."""

import json

import numpy as np
import pytest
import torch

from promptembedder.models import load_base_model, load_causal_lm
from promptembedder.training import ConfigError, Trainer, load_config

from tiny import save_tiny_pair, write_tiny_train_files


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-speed")
    prompting, embedding = save_tiny_pair(folder, kind="gemma")
    return prompting, embedding, write_tiny_train_files(folder)


def make_config(tiny_setup, out, *extra):
    prompting, embedding, files = tiny_setup
    return load_config(
        None,
        [
            f"model.prompting_model={prompting}",
            f"model.embedding_model={embedding}",
            f"data.train_files=[{files[0]}, {files[1]}]",
            "model.max_length=32",
            "model.num_soft_tokens=3",
            "batch_size=8",
            "steps=5",
            "log_every=1",
            "eval_every=0",
            "checkpoint_every=100",
            "data.dev_per_task=4",
            "optim.warmup_steps=0",
            f"output_dir={out}",
            *extra,
        ],
    )


def losses(out):
    return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines() if "loss" in line]


@pytest.mark.parametrize(
    "option",
    [
        "speed.kv_cache=false",
        "speed.factored_vocab_grad=false",
        "speed.precompute_documents=true",
        "speed.pad_instructions_to=16",
        "speed.fused_optimizer=true",
        "gradient_checkpointing=true",
    ],
)
def test_speed_option_keeps_the_losses(tiny_setup, tmp_path, option):
    Trainer(make_config(tiny_setup, tmp_path / "plain")).run()
    Trainer(make_config(tiny_setup, tmp_path / "fast", option)).run()
    np.testing.assert_allclose(losses(tmp_path / "fast"), losses(tmp_path / "plain"), rtol=1e-4, atol=1e-5)


def test_compiled_generation_keeps_the_losses(tiny_setup, tmp_path):
    Trainer(make_config(tiny_setup, tmp_path / "plain", "speed.kv_cache=false")).run()
    compiled = make_config(
        tiny_setup,
        tmp_path / "compiled",
        "speed.kv_cache=false",
        "speed.compile=default",
        "speed.compile_backend=aot_eager",
    )
    Trainer(compiled).run()
    np.testing.assert_allclose(losses(tmp_path / "compiled"), losses(tmp_path / "plain"), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("tasks_per_step", [1, 2])
def test_precomputed_documents_fill_the_cache_before_the_first_step(tiny_setup, tmp_path, tasks_per_step):
    seen = []
    config = make_config(
        tiny_setup, tmp_path / "run", "speed.precompute_documents=true", f"tasks_per_step={tasks_per_step}"
    )
    trainer = Trainer(config, on_step=lambda **kw: seen.append((kw["step"], len(trainer.doc_cache), kw["record"])))
    trainer.run()
    assert trainer.precompute_s is not None
    assert [s for s, _, _ in seen] == [1, 2, 3, 4, 5]
    assert len({n for _, n, _ in seen}) == 1  # no step added a document: all were there before step 1
    assert all(r["step_s"] > 0 for _, _, r in seen)


@pytest.mark.parametrize("method", ["promptembedder", "lora", "prompt-tuning"])
def test_fused_optimizer_steps_are_seen_by_the_fingerprint(tiny_setup, tmp_path, method):
    # The fused kernel does not bump version counters; caches keyed on them must still see every step.
    prints = []
    config = make_config(tiny_setup, tmp_path / "run", "speed.fused_optimizer=true", f"method={method}", "lora.r=2")
    Trainer(config, on_step=lambda **kw: prints.append(kw["model"].fingerprint())).run()
    assert len(set(prints)) == len(prints) == 5


def test_a_transfer_is_a_promptembedder_method(tiny_setup, tmp_path):
    with pytest.raises(ConfigError, match="method must be 'promptembedder'"):
        make_config(tiny_setup, tmp_path / "run", "method=lora", "transfer.source=somewhere")


def test_random_weights_take_the_architecture_and_tokenizer_of_a_folder(tiny_setup):
    prompting, embedding, _ = tiny_setup
    torch.manual_seed(0)
    model, tokenizer = load_base_model(f"random:{embedding}")
    real, real_tokenizer = load_base_model(embedding)
    assert type(model) is type(real) and model.config.hidden_size == real.config.hidden_size
    assert tokenizer("the red cat")["input_ids"] == real_tokenizer("the red cat")["input_ids"]
    assert not torch.equal(model.layers[0].mlp.up_proj.weight, real.layers[0].mlp.up_proj.weight)
    lm, _ = load_causal_lm(f"random:{prompting}", dtype=torch.bfloat16)
    assert lm.dtype == torch.bfloat16 and lm.get_output_embeddings() is not None
