"""Transfer: a trained Prompting LLM kept frozen, only a new W trained for a new Embedding LLM (tiny models)."""

import json
import os
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModel

from promptembedder import PromptEmbedder
from promptembedder.prompting import vocabulary_embeddings
from promptembedder.training import ConfigError, Trainer, load_config
from promptembedder.training.checkpoint import list_checkpoints
from promptembedder.transfer import (
    FrozenPromptingLLM,
    TransferError,
    TransferInit,
    build_transfer_model,
    check_takes_inputs_embeds,
    prepare_transfer_config,
)

from tiny import make_tokenizer


def losses(out: Path) -> list[float]:
    return [r["loss"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "loss" in r]


def aligned_error(model: PromptEmbedder, truth: PromptEmbedder, instructions: list[str]) -> float:
    """Relative distance of the model's aligned soft prompts from the true map's, on the trained prompts."""
    with torch.no_grad():
        soft = model.soft_prompts(instructions)
        return float((model.alignment(soft) - truth.alignment(soft)).norm() / truth.alignment(soft).norm())


def test_vocab_and_compose_start_closer_to_the_true_map_than_random(setup, tmp_path):
    source = PromptEmbedder.from_pretrained(setup["run"] / "model", device="cpu")
    instructions = sorted({json.loads(line)["instruction"] for f in setup["files"] for line in open(f)})
    models = {
        init: build_transfer_model(setup["config"](tmp_path / init, init), device="cpu")
        for init in ("vocab", "random", "compose")
    }
    # The true map: the source's trained W followed by q, the known map between the two input spaces.
    truth = models["random"]
    truth = PromptEmbedder(truth.config, truth.prompting, type(truth.alignment)(32, setup["wide"]), truth.embedding)
    q = setup["q"]
    with torch.no_grad():
        truth.alignment.linear.weight.copy_(q.T @ source.alignment.linear.weight)
        truth.alignment.linear.bias.copy_(source.alignment.linear.bias @ q)
    errors = {init: aligned_error(model, truth, instructions) for init, model in models.items()}
    assert errors["compose"] < 1e-3 < errors["vocab"] < errors["random"], errors
    assert errors["vocab"] < 0.2 * errors["random"], errors
    # The true map makes the target embed exactly like the source (up to the rotation q): check the set-up.
    texts = ["the red cat runs", "a big dog eats"]
    expected = source.encode(texts, instruction=instructions[0]) @ q.numpy()
    for model in (truth, models["compose"]):
        got = model.encode(texts, instruction=instructions[0])
        assert abs(got - expected).max() < 1e-3


def test_only_w_changes_and_the_result_is_a_normal_saved_model(setup, tmp_path):
    config = setup["config"](tmp_path / "run", "vocab", "model.relaxation=gumbel")
    trainer = Trainer(config)
    assert trainer.config.model.relaxation.value == "softmax"  # the source's setting wins
    initial = build_transfer_model(trainer.config, device="cpu")
    assert isinstance(initial.prompting, FrozenPromptingLLM)
    assert not any(p.requires_grad for p in initial.prompting.parameters())
    initial.train()
    assert not initial.prompting.training and not initial.prompting.model.training

    saved = PromptEmbedder.from_pretrained(trainer.run(), device="cpu")
    source = PromptEmbedder.from_pretrained(setup["run"] / "model", device="cpu")
    target = AutoModel.from_pretrained(setup["target"]).eval()
    for (name, a), b in zip(source.prompting.state_dict().items(), saved.prompting.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    for (name, a), b in zip(target.state_dict().items(), saved.embedding.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert not torch.equal(initial.alignment.linear.weight, saved.alignment.linear.weight)
    assert saved.alignment.out_features == setup["wide"] and saved.config.embedding_model == str(setup["target"])
    checkpoint = list_checkpoints(tmp_path / "run" / "checkpoints")[-1]
    assert sorted(load_file(str(checkpoint / "trainable.safetensors"))) == [
        "alignment.linear.bias",
        "alignment.linear.weight",
    ]
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["transfer"]
    assert recorded == {"source": str(setup["run"] / "model"), "init": "vocab", "prompting": "frozen"}


def test_a_trainable_prompting_transfer_fine_tunes_the_source_prompting_llm_with_w(setup, tmp_path):
    config = setup["config"](tmp_path / "run", "vocab", "transfer.prompting=trainable", "entropy_floor=0.5")
    trainer = Trainer(config)
    initial = build_transfer_model(trainer.config, device="cpu")
    vocab = build_transfer_model(setup["config"](tmp_path / "vocab", "vocab"), device="cpu")
    assert not isinstance(initial.prompting, FrozenPromptingLLM)
    assert all(p.requires_grad for p in initial.prompting.parameters())
    initial.train()
    assert initial.prompting.training  # Gumbel noise and dropout as in a from-scratch run
    # The warm start: the source's weights and the same vocabulary-fit W as a frozen transfer.
    source = PromptEmbedder.from_pretrained(setup["run"] / "model", device="cpu")
    for (name, a), b in zip(
        source.prompting.state_dict().items(), initial.prompting.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    torch.testing.assert_close(initial.alignment.linear.weight, vocab.alignment.linear.weight)

    saved = PromptEmbedder.from_pretrained(trainer.run(), device="cpu")
    moved = [
        n
        for (n, a), b in zip(source.prompting.state_dict().items(), saved.prompting.state_dict().values(), strict=True)
        if not torch.equal(a, b)
    ]
    assert moved, "the Prompting LLM did not learn"
    target = AutoModel.from_pretrained(setup["target"]).eval()
    for (name, a), b in zip(target.state_dict().items(), saved.embedding.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    checkpoint = list_checkpoints(tmp_path / "run" / "checkpoints")[-1]
    names = sorted(load_file(str(checkpoint / "trainable.safetensors")))
    assert "alignment.linear.weight" in names and any(n.startswith("prompting.") for n in names)
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["transfer"]
    assert recorded["prompting"] == "trainable"


def test_mixture_init_trains_only_w_and_rebuilds_its_table_on_load(setup, tmp_path):
    from promptembedder.transfer import SoftPromptError, export_soft_prompts

    config = setup["config"](tmp_path / "run", "mixture")
    initial = build_transfer_model(Trainer(config).config, device="cpu")
    vocab = build_transfer_model(setup["config"](tmp_path / "vocab", "vocab"), device="cpu")
    assert initial.alignment.has_table and initial.config.mixture_table and not vocab.alignment.has_table
    torch.testing.assert_close(initial.alignment.linear.weight, vocab.alignment.linear.weight)  # W starts at W0
    instruction = json.loads(open(setup["files"][0]).readline())["instruction"]
    with torch.no_grad():
        _, _, weights = initial.prompting([instruction], return_weights=True)
        # Source and target share one tokenizer here: a soft token's weight on a shared token lands on the
        # target's own row for it, and only the weight on the rest (the special tokens) goes through W0.
        ids = initial.alignment.table_ids
        rest = torch.ones(weights.shape[-1], dtype=torch.bool)
        rest[ids] = False
        rows = initial.embedding.model.get_input_embeddings().weight
        through_w0 = vocab.alignment(vocabulary_embeddings(initial.prompting.model)[rest])
        want = weights[0][:, ids] @ rows[ids] + weights[0][:, rest] @ through_w0
        mixture_error = (initial.aligned_prompts([instruction])[0] - want).norm()
        vocab_error = (vocab.aligned_prompts([instruction])[0] - want).norm()  # W0 alone only comes near
        assert mixture_error < 1e-3 * want.norm() and vocab_error > 20 * mixture_error, (mixture_error, vocab_error)

    saved = PromptEmbedder.from_pretrained(Trainer(config).run(), device="cpu")
    assert saved.alignment.has_table and saved.config.mixture_table
    checkpoint = list_checkpoints(tmp_path / "run" / "checkpoints")[-1]
    trained = sorted(load_file(str(checkpoint / "trainable.safetensors")))
    assert trained == ["alignment.linear.bias", "alignment.linear.weight"]  # the table is never trained nor saved
    again = PromptEmbedder.from_pretrained(tmp_path / "run" / "model", device="cpu")
    texts = ["the red cat runs", "a big dog eats"]
    assert abs(saved.encode(texts, instruction=instruction) - again.encode(texts, instruction=instruction)).max() < 1e-6
    assert saved.fingerprint() != vocab.fingerprint()
    with pytest.raises(SoftPromptError, match="mixture table"):
        export_soft_prompts(saved, [instruction]).attach(saved)


def test_a_gated_transfer_starts_at_the_new_backbone_and_trains_w_with_its_gate(setup, tmp_path):
    """model.prompt_gate on a transfer: the new W gets a fresh gate at 0, so step 0 is the new Embedding LLM
    alone (the transferred prompt cannot start below it, which left scratch-vs-transfer ratios undefined), and
    the gate trains with W, on its own rate when optim.gate_lr is set."""
    config = setup["config"](tmp_path / "run", "vocab", "model.prompt_gate=true", "optim.gate_lr=0.05")
    initial = build_transfer_model(Trainer(config).config, device="cpu")
    instruction = json.loads(open(setup["files"][0]).readline())["instruction"]
    texts = ["the red cat runs", "a big dog eats"]
    assert float(initial.alignment.gate) == 0.0
    assert abs(initial.encode(texts, instruction=instruction) - initial.encode(texts)).max() < 1e-6
    saved = PromptEmbedder.from_pretrained(Trainer(config).run(), device="cpu")
    assert saved.config.prompt_gate and float(saved.alignment.gate) != 0.0
    checkpoint = list_checkpoints(tmp_path / "run" / "checkpoints")[-1]
    trained = sorted(load_file(str(checkpoint / "trainable.safetensors")))
    assert trained == ["alignment.gate", "alignment.linear.bias", "alignment.linear.weight"]


def test_a_deep_prompt_transfer_trains_fresh_offsets_for_every_layer_of_the_new_backbone(setup, tmp_path):
    """model.deep_prompt on a transfer: the new W carries zero offsets for each deeper layer of the new backbone
    (its shallow start), and they train with W: that is what a deep prompt costs a transfer."""
    config = setup["config"](tmp_path / "run", "vocab", "model.deep_prompt=true")
    initial = build_transfer_model(Trainer(config).config, device="cpu")
    assert initial.alignment.deep_layers == initial.embedding.deep_layers > 0
    assert initial.alignment.deep.abs().sum() == 0
    saved = PromptEmbedder.from_pretrained(Trainer(config).run(), device="cpu")
    assert saved.alignment.deep.abs().sum() > 0
    checkpoint = list_checkpoints(tmp_path / "run" / "checkpoints")[-1]
    trained = sorted(load_file(str(checkpoint / "trainable.safetensors")))
    assert trained == ["alignment.deep", "alignment.linear.bias", "alignment.linear.weight"]


def test_transfer_resumes_exactly(setup, tmp_path, monkeypatch):
    Trainer(setup["config"](tmp_path / "straight", "compose", "steps=4")).run()
    config = setup["config"](tmp_path / "resumed", "compose", "steps=4", "checkpoint_every=2")
    trainer = Trainer(config)
    real_step, calls = trainer._step, []

    def step_then_interrupt(*args):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(*args)

    monkeypatch.setattr(trainer, "_step", step_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    Trainer(config).run(resume=True)
    assert losses(tmp_path / "resumed") == losses(tmp_path / "straight")


def test_a_run_without_a_model_is_a_clear_error_before_training(setup, tmp_path):
    unfinished = tmp_path / "unfinished"
    (unfinished / "checkpoints").mkdir(parents=True)
    config = setup["config"](tmp_path / "out", "vocab", f"transfer.source={unfinished}")
    with pytest.raises(TransferError, match=r"without a finished model: .*model/promptembedder_config\.json"):
        Trainer(config)
    with pytest.raises(TransferError, match="holds no trained PromptEmbedder"):
        Trainer(setup["config"](tmp_path / "out", "vocab", f"transfer.source={tmp_path}"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "promptembedder_config.json").write_text("{}")
    with pytest.raises(TransferError, match="lacks prompting_llm, alignment.safetensors"):
        Trainer(setup["config"](tmp_path / "out", "vocab", f"transfer.source={broken}"))
    assert not (tmp_path / "out").exists()


def test_a_target_without_inputs_embeds_is_refused_before_training(setup, tmp_path):
    from transformers import ViTConfig, ViTModel

    vision = tmp_path / "tiny-vit"
    config = ViTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, image_size=8)
    ViTModel(config).save_pretrained(vision)
    make_tokenizer().save_pretrained(vision)  # so that only the model, not its tokenizer, is the problem
    trainer = Trainer(setup["config"](tmp_path / "out", "vocab", f"model.embedding_model={vision}"))
    with pytest.raises(TransferError, match=r"tiny-vit \(ViTModel\) cannot take inputs_embeds"):
        trainer.run()
    assert not (tmp_path / "out").exists()
    with pytest.raises(TransferError, match="cannot take inputs_embeds"):
        check_takes_inputs_embeds(torch.nn.Linear(2, 2), "a linear layer")


def test_width_mismatch_in_the_source_is_refused_before_training(setup, tmp_path):
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(setup["run"] / "model", damaged)
    state = load_file(str(damaged / "alignment.safetensors"))
    state["linear.weight"] = state["linear.weight"][:, :20].contiguous()
    save_file(state, str(damaged / "alignment.safetensors"))
    trainer = Trainer(setup["config"](tmp_path / "out", "compose", f"transfer.source={damaged}"))
    with pytest.raises(TransferError, match=r"width mismatch: .* holds a \(48, 20\) weight, expected \(48, 32\)"):
        trainer.run()
    assert not (tmp_path / "out").exists()


def test_bad_transfer_configs(setup, tmp_path):
    with pytest.raises(TransferError, match="would overwrite the transfer source"):
        Trainer(setup["config"](setup["run"], "vocab"))
    with pytest.raises(ConfigError, match="prompting_training must stay 'full'"):
        setup["config"](tmp_path / "out", "vocab", "prompting_training=lora")
    with pytest.raises(ConfigError, match="entropy_floor acts on a Prompting LLM that trains"):
        setup["config"](tmp_path / "out", "vocab", "entropy_floor=1.0")  # a frozen transfer
    with pytest.raises(ConfigError, match="transfer.prompting applies to a transfer: set transfer.source"):
        load_config(None, ["transfer.prompting=trainable"])
    with pytest.raises(ConfigError, match="transfer.prompting='warm' is not valid; choose one of: frozen, trainable"):
        setup["config"](tmp_path / "out", "vocab", "transfer.prompting=warm")
    with pytest.raises(
        ConfigError, match="transfer.init='svd' is not valid; choose one of: vocab, random, compose, mix"
    ):
        setup["config"](tmp_path / "out", "svd")
    prepared = prepare_transfer_config(setup["config"](tmp_path / "out", "random", "model.num_soft_tokens=7"))
    assert prepared.model.num_soft_tokens == 3 and prepared.transfer.init is TransferInit.RANDOM


def test_frozen_prompting_llm_survives_a_clear_between_its_set_and_its_read():
    import threading

    from promptembedder.prompting import PromptingLLM

    from tiny import tiny_prompting_lm

    frozen = FrozenPromptingLLM.freeze(PromptingLLM(tiny_prompting_lm(), make_tokenizer("plain", "left"), 3))
    expected = frozen(["find the same animal"]).clone()

    class ClearedByAnotherThread(dict):
        def __setitem__(self, key, value):
            super().__setitem__(key, value)
            other = threading.Thread(target=self.clear)  # another caller hits max_remembered right now
            other.start()
            other.join()

    frozen._remembered = ClearedByAnotherThread()
    torch.testing.assert_close(frozen(["find the same animal"]), expected)
