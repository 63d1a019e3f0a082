import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from promptembedder import PromptEmbedder
from promptembedder.data.format import DataFormatError
from promptembedder.training import ConfigError, Trainer, load_config
from promptembedder.training.checkpoint import list_checkpoints

from tiny import save_tiny_pair, write_tiny_train_files


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    prompting, embedding = save_tiny_pair(folder)
    return folder, prompting, embedding, write_tiny_train_files(folder)


def make_config(tiny_setup, out, *extra):
    _, prompting, embedding, files = tiny_setup
    return load_config(
        None,
        [
            f"model.prompting_model={prompting}",
            f"model.embedding_model={embedding}",
            f"data.train_files=[{files[0]}, {files[1]}]",
            "model.max_length=32",
            "model.num_soft_tokens=3",
            "batch_size=8",
            "steps=12",
            "log_every=1",
            "eval_every=0",
            "checkpoint_every=6",
            "data.dev_per_task=8",
            "optim.warmup_steps=0",
            f"output_dir={out}",
            *extra,
        ],
    )


def losses(out: Path) -> list[float]:
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in lines if "loss" in r]


def test_loss_goes_down_on_a_tiny_task(tiny_setup, tmp_path):
    config = make_config(tiny_setup, tmp_path / "run", "steps=40", "loss_temperature=0.05", "model.pooling=mean")
    model_dir = Trainer(config).run()
    curve = losses(tmp_path / "run")
    assert np.mean(curve[-10:]) < 0.5 * np.mean(curve[:10])
    assert (tmp_path / "run" / "loss.png").is_file()
    assert any("dev/mean_mrr@10" in line for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines())
    trained = PromptEmbedder.from_pretrained(model_dir, device="cpu")
    assert trained.encode(["the red cat"], instruction="find the sentence about the same animal").shape == (1, 48)


def test_only_the_prompting_llm_and_w_change(tiny_setup, tmp_path):
    config = make_config(tiny_setup, tmp_path / "run", "steps=2")
    trainer = Trainer(config)
    before = PromptEmbedder.from_config(config.model, device="cpu", seed=config.seed)
    trained = PromptEmbedder.from_pretrained(trainer.run(), device="cpu")
    for (name, a), b in zip(
        before.embedding.state_dict().items(), trained.embedding.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert not torch.equal(before.alignment.linear.weight, trained.alignment.linear.weight)
    changed = [
        not torch.equal(a, b)
        for a, b in zip(before.prompting.parameters(), trained.prompting.parameters(), strict=True)
    ]
    assert all(changed)


def interrupt_at(trainer, monkeypatch, call: int) -> None:
    """Press Ctrl-C (a real SIGINT) in the middle of the trainer's ``call``-th step."""
    real_step, calls = trainer._step, []

    def step_then_interrupt(*args):
        calls.append(1)
        if len(calls) == call:
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(*args)

    monkeypatch.setattr(trainer, "_step", step_then_interrupt)


def test_resume_reproduces_an_uninterrupted_run_exactly(tiny_setup, tmp_path, monkeypatch):
    straight = make_config(tiny_setup, tmp_path / "straight", "model.relaxation=gumbel", "checkpoint_every=100")
    Trainer(straight).run()
    config = make_config(tiny_setup, tmp_path / "resumed", "model.relaxation=gumbel", "checkpoint_every=100")
    trainer = Trainer(config)
    interrupt_at(trainer, monkeypatch, 6)
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    assert [p.name for p in list_checkpoints(tmp_path / "resumed" / "checkpoints")] == ["step-6"]
    Trainer(config).run(resume=True)
    assert losses(tmp_path / "resumed") == losses(tmp_path / "straight")
    assert [p.name for p in list_checkpoints(tmp_path / "resumed" / "checkpoints")] == ["step-6", "step-12"]


def test_resume_with_a_different_config_names_the_keys(tiny_setup, tmp_path):
    Trainer(make_config(tiny_setup, tmp_path / "run", "steps=6")).run()
    changed = make_config(tiny_setup, tmp_path / "run", "steps=6", "optim.lr=0.5", "loss_temperature=0.05")
    with pytest.raises(ConfigError, match="differs in loss_temperature, optim.lr"):
        Trainer(changed).run(resume=True)


def test_tasks_per_step_averages_the_gradients_of_its_batches(tiny_setup, tmp_path, monkeypatch):
    """One step over two batches has the mean of the gradients that two one-batch steps at the same weights have
    (the optimiser is made a no-op that records the gradients, so both runs stay at the initial weights)."""
    seen: list[list[torch.Tensor]] = []

    def record(self, *args, **kwargs):
        seen.append([p.grad.clone() for group in self.param_groups for p in group["params"] if p.grad is not None])

    monkeypatch.setattr(torch.optim.AdamW, "step", record)
    common = ("optim.max_grad_norm=0", "checkpoint_every=100")
    one = Trainer(make_config(tiny_setup, tmp_path / "one", "steps=2", *common))
    one.run()
    two = Trainer(make_config(tiny_setup, tmp_path / "two", "steps=1", "tasks_per_step=2", *common))
    two.run()
    assert len(seen) == 3
    first, second, averaged = seen
    for a, b, mean in zip(first, second, averaged, strict=True):
        torch.testing.assert_close(mean, (a + b) / 2, rtol=1e-4, atol=1e-6)
    assert two.history[0]["task"] == "+".join(h["task"] for h in one.history)
    assert two.history[0]["loss"] == pytest.approx(np.mean([h["loss"] for h in one.history]), rel=1e-5)


def test_resume_with_tasks_per_step_is_exact(tiny_setup, tmp_path, monkeypatch):
    extra = ("steps=6", "tasks_per_step=3", "checkpoint_every=100")
    Trainer(make_config(tiny_setup, tmp_path / "straight", *extra)).run()
    config = make_config(tiny_setup, tmp_path / "resumed", *extra)
    trainer = Trainer(config)
    interrupt_at(trainer, monkeypatch, 5)  # in step 2's second batch: step 2 finishes, then the checkpoint
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    assert [p.name for p in list_checkpoints(tmp_path / "resumed" / "checkpoints")] == ["step-2"]
    Trainer(config).run(resume=True)
    assert losses(tmp_path / "resumed") == losses(tmp_path / "straight")


def test_config_refuses_tasks_per_step_below_one(tiny_setup, tmp_path):
    with pytest.raises(ConfigError, match="tasks_per_step must be a positive integer, got 0"):
        make_config(tiny_setup, tmp_path / "run", "tasks_per_step=0")


def test_document_cache_changes_nothing_but_speed(tiny_setup, tmp_path):
    Trainer(make_config(tiny_setup, tmp_path / "cached", "document_cache=true")).run()
    Trainer(make_config(tiny_setup, tmp_path / "uncached", "document_cache=false")).run()
    np.testing.assert_allclose(losses(tmp_path / "cached"), losses(tmp_path / "uncached"), rtol=1e-4, atol=1e-5)


def test_grad_cache_matches_the_plain_step(tiny_setup, tmp_path):
    Trainer(make_config(tiny_setup, tmp_path / "plain", "steps=4")).run()
    Trainer(make_config(tiny_setup, tmp_path / "chunked", "steps=4", "grad_cache_chunk=3")).run()
    np.testing.assert_allclose(losses(tmp_path / "plain"), losses(tmp_path / "chunked"), rtol=1e-4, atol=1e-5)


def test_one_prompt_per_step_gives_the_gradients_of_one_per_use(tiny_setup, tmp_path):
    """With prompted documents and GradCache chunks the prompt has many uses; making it once and sending the
    summed gradient back once trains the same model as regenerating it for each use."""
    common = ("steps=4", "model.document_prompt=prompted", "grad_cache_chunk=3", "checkpoint_every=100")
    once = Trainer(make_config(tiny_setup, tmp_path / "once", *common, "speed.prompt_once=true")).run()
    each = Trainer(make_config(tiny_setup, tmp_path / "each", *common, "speed.prompt_once=false")).run()
    np.testing.assert_allclose(losses(tmp_path / "once"), losses(tmp_path / "each"), rtol=1e-4, atol=1e-5)
    a, b = (PromptEmbedder.from_pretrained(d, device="cpu") for d in (once, each))
    for (name, x), y in zip(a.prompting.state_dict().items(), b.prompting.state_dict().values(), strict=True):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5, msg=name)
    torch.testing.assert_close(a.alignment.linear.weight, b.alignment.linear.weight, rtol=1e-4, atol=1e-5)


def test_one_prompt_per_step_runs_the_prompting_llm_once(tiny_setup, tmp_path, monkeypatch):
    from promptembedder.prompting import PromptingLLM

    calls = []
    real = PromptingLLM.forward

    def counted(self, *args, **kwargs):
        if torch.is_grad_enabled():
            calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(PromptingLLM, "forward", counted)
    common = ("steps=1", "model.document_prompt=prompted", "grad_cache_chunk=3", "checkpoint_every=100")
    Trainer(make_config(tiny_setup, tmp_path / "once", *common)).run()
    once, calls[:] = len(calls), []
    Trainer(make_config(tiny_setup, tmp_path / "each", *common, "speed.prompt_once=false")).run()
    assert once == 1 and len(calls) > 3  # positives, negatives, and each of the 3 chunks' second pass


def test_trainable_weights_train_in_float32_whatever_the_load_dtype(tiny_setup):
    """A GPU loads bf16; AdamW updates below bf16's resolution would round away, so the trainable weights
    are cast up while the frozen Embedding LLM keeps its dtype."""
    from promptembedder.training.trainer import upcast_trainable

    config = make_config(tiny_setup, "unused")
    model = PromptEmbedder.from_config(config.model, device="cpu", dtype=torch.bfloat16, seed=0)
    model.embedding.requires_grad_(False)
    assert upcast_trainable(model) > 0
    assert all(p.dtype == torch.float32 for p in model.prompting.parameters())
    assert all(p.dtype == torch.float32 for p in model.alignment.parameters())
    assert all(p.dtype == torch.bfloat16 for p in model.embedding.parameters())
    weight = model.alignment.linear.weight
    before = weight.detach().clone()
    with torch.no_grad():
        weight.add_(before.abs().clamp(min=1e-3) * 1e-4)  # an update bf16 could not hold
    assert not torch.equal(weight, before)
    vectors = model(["a red cat"], "find the animal")
    assert vectors.shape == (1, 48) and torch.isfinite(vectors).all()


def test_the_gpu_recipes_settings_train_on_tiny_models(tiny_setup, tmp_path):
    """full-gpu.yaml's own keys (bf16 autocast, GradCache chunks, fused AdamW) over the recipe's read-out and
    floor: finite losses, and the saved trainable weights are fp32 (bf16 is compute only)."""
    gpu = load_config("full-gpu")
    keys = [
        "precision=bf16",
        f"grad_cache_chunk={gpu.grad_cache_chunk // 8}",  # the tiny batch of 8 split as 64 splits into chunks
        "speed.fused_optimizer=true",
        f"model.pooling={gpu.model.pooling.value}",
        f"model.text_template={gpu.model.text_template}",
        f"entropy_floor={gpu.entropy_floor}",
        "steps=3",
    ]
    from accelerate.state import AcceleratorState

    # accelerate keeps one process-wide state and refuses to change its precision; a process trains in one
    # precision, but this test process has trained in fp32 before, so it starts the state afresh, and ends so.
    AcceleratorState._reset_state(reset_partial_state=True)
    try:
        trained = PromptEmbedder.from_pretrained(Trainer(make_config(tiny_setup, tmp_path / "run", *keys)).run())
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
    assert all(np.isfinite(losses(tmp_path / "run")))
    assert all(p.dtype == torch.float32 for p in trained.alignment.parameters())


def test_prompted_documents_and_lora_prompting_train(tiny_setup, tmp_path):
    config = make_config(
        tiny_setup, tmp_path / "run", "steps=3", "model.document_prompt=prompted", "prompting_training=lora", "lora.r=4"
    )
    trained = PromptEmbedder.from_pretrained(Trainer(config).run(), device="cpu")
    assert trained.config.document_prompt.value == "prompted"
    assert all(np.isfinite(losses(tmp_path / "run")))


def test_a_gated_model_trains_its_gate_with_w_and_grad_cache_matches_the_plain_step(tiny_setup, tmp_path):
    """prompt_gate: g is in the optimiser's W group and moves off 0 (so the prompt starts to count); the blend's
    extra plain forward is as exact under GradCache as the step it replaces."""
    gate = ("model.prompt_gate=true", "steps=3")
    plain = PromptEmbedder.from_pretrained(Trainer(make_config(tiny_setup, tmp_path / "a", *gate)).run(), device="cpu")
    cached = make_config(tiny_setup, tmp_path / "b", *gate, "grad_cache_chunk=3")
    chunked = PromptEmbedder.from_pretrained(Trainer(cached).run(), device="cpu")
    assert float(plain.alignment.gate) != 0.0
    torch.testing.assert_close(chunked.alignment.gate, plain.alignment.gate, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(chunked.alignment.linear.weight, plain.alignment.linear.weight, atol=1e-6, rtol=1e-5)


def test_gate_lr_gives_the_gate_its_own_rate_and_leaves_ws_alone(tiny_setup, tmp_path):
    """optim.gate_lr: g travels at its own rate (AdamW's first steps move a weight by about its lr), in its own
    optimiser group; without it g stays in W's group, as the checkpoints of earlier runs hold it."""
    gate = ("model.prompt_gate=true", "steps=3")
    slow = Trainer(make_config(tiny_setup, tmp_path / "a", *gate))
    fast = Trainer(make_config(tiny_setup, tmp_path / "b", *gate, "optim.gate_lr=0.5"))
    slow_gate = PromptEmbedder.from_pretrained(slow.run(), device="cpu").alignment.gate
    model = PromptEmbedder.from_pretrained(fast.run(), device="cpu")
    assert abs(model.alignment.gate.item()) > 10 * abs(slow_gate.item()) > 0
    groups = fast.build_optimizer(fast.trainable_parameters(model)).param_groups
    assert [len(g["params"]) for g in groups][-1] == 1 and groups[-1]["lr"] == 0.5
    assert len(slow.build_optimizer(slow.trainable_parameters(model)).param_groups) == len(groups) - 1


def test_a_deep_prompt_model_trains_its_offsets_with_w_and_grad_cache_matches_the_plain_step(tiny_setup, tmp_path):
    deep = ("model.deep_prompt=true", "steps=3")
    plain = PromptEmbedder.from_pretrained(Trainer(make_config(tiny_setup, tmp_path / "a", *deep)).run(), device="cpu")
    cached = make_config(tiny_setup, tmp_path / "b", *deep, "grad_cache_chunk=3")
    chunked = PromptEmbedder.from_pretrained(Trainer(cached).run(), device="cpu")
    assert plain.alignment.deep.abs().sum() > 0
    torch.testing.assert_close(chunked.alignment.deep, plain.alignment.deep, atol=1e-6, rtol=1e-5)


def test_deep_lr_gives_the_deep_maps_their_own_group_and_rate(tiny_setup, tmp_path):
    """optim.deep_lr: the per-layer maps train at their own rate beside W's; without it they share W's group."""
    deep = ("model.deep_prompt=true", "steps=3", "optim.alignment_lr=0.01")
    slow = Trainer(make_config(tiny_setup, tmp_path / "a", *deep, "optim.deep_lr=1e-5"))
    fast = Trainer(make_config(tiny_setup, tmp_path / "b", *deep))
    slow_deep = PromptEmbedder.from_pretrained(slow.run(), device="cpu").alignment.deep
    model = PromptEmbedder.from_pretrained(fast.run(), device="cpu")
    # AdamW's first steps move each weight by about its rate: 3 steps of 1e-5 against 3 of 1e-2.
    assert 0 < slow_deep.abs().max() < 1e-4 < 1e-3 < model.alignment.deep.abs().max()
    groups = slow.build_optimizer(slow.trainable_parameters(model)).param_groups
    assert groups[-1]["lr"] == 1e-5 and groups[-1]["params"] == [model.alignment.deep]
    assert len(fast.build_optimizer(fast.trainable_parameters(model)).param_groups) == len(groups) - 1


def test_split_seed_keeps_one_dev_slice_across_run_seeds(tiny_setup, tmp_path):
    from promptembedder.training.trainer import load_training_data

    def dev_queries(*extra):
        _, dev = load_training_data(make_config(tiny_setup, tmp_path, *extra))
        return [e.query for task in sorted(dev) for e in dev[task]]

    assert dev_queries("seed=0") != dev_queries("seed=1")  # the run's seed draws the slice by default
    assert dev_queries("seed=1", "data.split_seed=0") == dev_queries("seed=0")
    assert dev_queries("seed=2", "data.split_seed=0") == dev_queries("seed=0")


def test_prompt_repulsion_makes_the_tasks_prompts_differ_more_and_logs_their_cosine(tiny_setup, tmp_path):
    from promptembedder.prompting import prompt_statistics

    # The tiny tokenizer reads both tiny tasks' instructions alike (their last words are unknown to it), and a
    # prompt cannot be pushed from an identical one: give the second task a wording of its own.
    instructions = ["find the sentence about the same", "the same sentence"]
    files = []
    for path, instruction in zip(tiny_setup[3][:2], instructions, strict=True):
        rows = [{**json.loads(line), "instruction": instruction} for line in Path(path).read_text().splitlines()]
        files.append(tmp_path / Path(path).name)
        files[-1].write_text("".join(json.dumps(r) + "\n" for r in rows))

    def distinct(out, *extra):
        # A cooler relaxation than 1: at 1 the tiny Prompting LLM's distributions are near uniform and every
        # prompt is nearly the mean embedding.
        settings = (
            f"data.train_files=[{files[0]}, {files[1]}]",
            "steps=6",
            "model.temperature=0.3",
            "optim.lr=1e-3",
            *extra,
        )
        model = PromptEmbedder.from_pretrained(Trainer(make_config(tiny_setup, out, *settings)).run())
        return prompt_statistics(model.prompting, instructions)["distinct"]

    plain = distinct(tmp_path / "a")
    repelled = distinct(tmp_path / "b", "prompt_similarity_ceiling=0", "prompt_similarity_weight=10")
    assert repelled > 1.5 * plain > 0
    logged = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert all(-1 <= r["prompt_max_cos"] <= 1 for r in logged if "loss" in r)


def test_broken_data_line_stops_before_training(tiny_setup, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task": "t", "instruction": "i", "query": "q", "positive": "p", "negatives": []}\n{"task": 3}\n')
    config = make_config(tiny_setup, tmp_path / "run", f"data.train_files=[{bad}]")
    with pytest.raises(DataFormatError, match=r"bad\.jsonl:2"):
        Trainer(config).run()
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(sys.platform != "linux", reason="gloo on loopback")
def test_two_processes_match_one_process_on_the_same_global_batch(tiny_setup, tmp_path):
    one = make_config(tiny_setup, tmp_path / "one", "steps=4")
    Trainer(one).run()
    config_file = tmp_path / "two.yaml"
    import yaml

    config_file.write_text(yaml.safe_dump({**one.to_dict(), "output_dir": str(tmp_path / "two")}))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--cpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "promptembedder",
        "train",
        str(config_file),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(losses(tmp_path / "two"), losses(tmp_path / "one"), rtol=1e-4, atol=1e-5)


def test_a_positive_of_an_example_with_the_same_query_is_never_its_negative():
    """Two senses of "Bank" in one batch: each query's pool holds the other's answer, which the instruction
    ("retrieve a definition of one of its senses") accepts just as well. The mask removes it, and the loss
    is then that of a batch where the other answer is absent; a different query's answer stays a negative."""
    import torch.nn.functional as F

    from promptembedder.training.loss import InfoNCELoss
    from promptembedder.training.trainer import false_negative_mask

    queries = ["Bank", "bank ", "tree"]
    positives = ["the edge of a river", "an institution that lends money", "a tall plant"]
    pool = [*positives, "a seat by the river", None, "an institution that lends money"]  # then one negative each
    mask = false_negative_mask(queries, positives, pool)
    assert mask[0] == [True, True, False, False, True, True]
    assert mask[1] == [True, True, False, False, True, True]
    assert mask[2] == [False, False, True, False, True, False]

    torch.manual_seed(0)
    q = F.normalize(torch.randn(3, 8), dim=-1)
    docs = F.normalize(torch.randn(6, 8), dim=-1)
    docs[5] = docs[1]  # the duplicated text embeds alike
    loss = InfoNCELoss(temperature=0.05)
    masked = loss(q, docs, false_negatives=torch.tensor(mask))
    # By hand: each query against the documents its mask leaves (its own positive always kept).
    keep = [[0, 2, 3], [1, 2, 3], [0, 1, 2, 3, 5]]
    own = [0, 1, 2]
    by_hand = torch.stack(
        [-F.log_softmax(q[i] @ docs[k].T / 0.05, dim=0)[k.index(own[i])] for i, k in enumerate(keep)]
    ).mean()
    assert torch.allclose(masked, by_hand, atol=1e-5)
    assert float(loss(q, docs)) != pytest.approx(float(masked))


def test_instruction_wordings_come_from_the_data_and_a_broken_list_is_refused(tmp_path):
    import json as _json

    from promptembedder.training.config import ConfigError, load_config
    from promptembedder.training.trainer import load_instructions

    folder = tmp_path / "train"
    folder.mkdir()
    (folder / "t.jsonl").write_text(
        _json.dumps({"task": "t", "instruction": "A", "query": "q", "positive": "p", "negatives": []}) + "\n"
    )
    (folder / "instructions.json").write_text(_json.dumps({"t": ["A", "B", "A", "C"]}))
    config = load_config(None, [f"data.train_files=[{folder}]"])
    assert load_instructions(config) == {"t": ["A", "B", "C"]}
    assert load_instructions(load_config(None, [f"data.train_files=[{folder}]", "data.instructions=canonical"])) == {}
    root = load_config(None, [f"data.train_files=[{tmp_path}]"])  # a build's root folder: wordings in train/
    assert load_instructions(root) == {"t": ["A", "B", "C"]}
    (folder / "instructions.json").write_text(_json.dumps({"t": []}))
    with pytest.raises(ConfigError, match="non-empty list"):
        load_instructions(config)


def test_resume_refuses_other_instruction_wordings_with_one_message(tiny_setup, tmp_path):
    import json as _json
    import shutil

    data = tmp_path / "data"
    data.mkdir()
    files = [shutil.copy(f, data) for f in tiny_setup[3]]
    (data / "instructions.json").write_text(_json.dumps({"animals": ["find the same animal", "same animal"]}))
    setup = (*tiny_setup[:3], files)
    Trainer(make_config(setup, tmp_path / "run", "steps=6")).run()
    (data / "instructions.json").write_text(_json.dumps({"animals": ["find the same animal", "another wording"]}))
    with pytest.raises(ConfigError, match="cannot resume from .*instruction wordings"):
        Trainer(make_config(setup, tmp_path / "run", "steps=6")).run(resume=True)


def test_entropy_floor_trains_only_the_prompting_llm_and_needs_no_extra_generation(tiny_setup, tmp_path):
    """A floor above any reachable entropy is active on every step. Its gradient reaches the Prompting LLM and
    not W (which does not shape the distributions), so after one step W equals the floor-free run's. The
    shared-prompt step and the step that regenerates the prompt per use apply the same penalty."""
    common = ("steps=1", "checkpoint_every=100", "log_every=1")
    floor = ("entropy_floor=1000", "entropy_weight=10")
    plain = PromptEmbedder.from_pretrained(Trainer(make_config(tiny_setup, tmp_path / "a", *common)).run())
    once = PromptEmbedder.from_pretrained(Trainer(make_config(tiny_setup, tmp_path / "b", *common, *floor)).run())
    each_config = make_config(tiny_setup, tmp_path / "c", *common, *floor, "speed.prompt_once=false")
    each = PromptEmbedder.from_pretrained(Trainer(each_config).run())
    torch.testing.assert_close(once.alignment.linear.weight, plain.alignment.linear.weight)
    moved = [
        not torch.allclose(x, y)
        for x, y in zip(once.prompting.state_dict().values(), plain.prompting.state_dict().values(), strict=True)
    ]
    assert any(moved)
    for (name, x), y in zip(once.prompting.state_dict().items(), each.prompting.state_dict().values(), strict=True):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5, msg=name)
    logged = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert logged[0]["prompt_entropy"] > 0
    dev = logged[-1]
    assert {"dev/prompt_entropy", "dev/prompt_entropy_min", "dev/prompt_distinct"} <= set(dev)


def test_patience_stops_at_a_plateau_and_says_so(tiny_setup, tmp_path):
    """With W frozen and a Prompting LLM too slow to move, the dev score is flat: patience 2 stops the run at
    the third evaluation, saves the model and a checkpoint there, and the summary says why."""
    still = ("optim.lr=1e-12", "optim.alignment_lr=0", "eval_every=1", "steps=20", "patience=2", "checkpoint_every=50")
    trainer = Trainer(make_config(tiny_setup, tmp_path / "run", *still))
    model = trainer.run()
    assert PromptEmbedder.from_pretrained(model, device="cpu").config.num_soft_tokens > 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 3 and summary["max_steps"] == 20 and summary["stopped"] == "plateau"
    assert [s for s, _ in trainer.dev_scores] == [1, 2, 3]
    assert [c.name for c in list_checkpoints(tmp_path / "run" / "checkpoints")][-1].endswith("3")
    assert "3 of 20 steps" in trainer.describe() and "plateau" in trainer.describe()


MOVING = ("eval_every=1", "steps=4", "checkpoint_every=50", "optim.alignment_lr=1e-2", "restore_best=true")


def script_dev_scores(monkeypatch, scores=(0.5, 0.9, 0.4, 0.3)) -> list[torch.Tensor]:
    """Dev evaluations that return ``scores`` in turn (with MOVING: steps 1, 2, 3, then the final one at step 4);
    the returned list fills with W's weights at each evaluation."""
    scripted, seen = iter(scores), []

    def fake_dev(self, model, dev):
        seen.append(model.alignment.linear.weight.detach().clone())
        return {"dev/mean_mrr@10": next(scripted)}

    monkeypatch.setattr(Trainer, "evaluate_dev", fake_dev)
    return seen


def test_restore_best_saves_the_weights_of_the_best_dev_evaluation(tiny_setup, tmp_path, monkeypatch):
    """restore_best: when an earlier dev evaluation beat the last one, the saved model holds that evaluation's
    weights and the summary its score and step; the last checkpoint keeps the last weights for resume."""
    seen = script_dev_scores(monkeypatch)
    trainer = Trainer(make_config(tiny_setup, tmp_path / "run", *MOVING))
    saved = PromptEmbedder.from_pretrained(trainer.run(), device="cpu")
    assert len(seen) == 4 and not torch.equal(seen[1], seen[3])  # the weights moved after step 2
    torch.testing.assert_close(saved.alignment.linear.weight, seen[1])
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["restored_step"] == 2 and summary["dev_mean_mrr@10"] == 0.9
    assert "the weights of step 2" in trainer.describe()
    last = list_checkpoints(tmp_path / "run" / "checkpoints")[-1]
    assert last.name.endswith("4")


def test_a_resumed_run_remembers_the_best_weights_from_before_its_checkpoint(tiny_setup, tmp_path, monkeypatch):
    """The checkpoint holds restore_best's pick so far: interrupted after step 3 with its best at step 2, the
    resumed run still saves step 2's weights when its last evaluation scores lower."""
    seen = script_dev_scores(monkeypatch)
    config = make_config(tiny_setup, tmp_path / "run", *MOVING)
    trainer = Trainer(config)
    interrupt_at(trainer, monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    assert (list_checkpoints(tmp_path / "run" / "checkpoints")[-1] / "best.safetensors").is_file()
    resumed = Trainer(config)
    saved = PromptEmbedder.from_pretrained(resumed.run(resume=True), device="cpu")
    assert len(seen) == 4 and not torch.equal(seen[1], seen[3])
    torch.testing.assert_close(saved.alignment.linear.weight, seen[1])
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["restored_step"] == 2 and summary["dev_mean_mrr@10"] == 0.9


def test_restore_best_keeps_the_last_weights_when_they_are_the_best(tiny_setup, tmp_path, monkeypatch):
    scripted = iter([0.5, 0.6, 0.7])
    monkeypatch.setattr(Trainer, "evaluate_dev", lambda self, model, dev: {"dev/mean_mrr@10": next(scripted)})
    trainer = Trainer(
        make_config(tiny_setup, tmp_path / "run", "eval_every=1", "steps=3", "checkpoint_every=50", "restore_best=true")
    )
    trainer.run()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["restored_step"] is None and summary["dev_mean_mrr@10"] == 0.7
    assert "the weights of step" not in trainer.describe()


def dev_records(out: Path) -> list[dict]:
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r for r in lines if "dev/mean_mrr@10" in r]


@pytest.mark.parametrize("document_prompt", ["plain", "prompted"])
def test_dev_documents_are_embedded_once_only_where_nothing_trained_reads_them(
    tiny_setup, tmp_path, monkeypatch, document_prompt
):
    """Plain documents through the frozen backbone are embedded at the first dev evaluation and reused (the
    scores equal those of embedding them every time); prompted documents are embedded at every evaluation."""
    calls = []
    encode_documents = PromptEmbedder.encode_documents

    def counted(self, texts, *args, **kwargs):
        calls.append(len(texts))
        return encode_documents(self, texts, *args, **kwargs)

    monkeypatch.setattr(PromptEmbedder, "encode_documents", counted)
    extra = ("eval_every=1", "steps=3", "checkpoint_every=50", f"model.document_prompt={document_prompt}")
    Trainer(make_config(tiny_setup, tmp_path / "cached", *extra)).run()
    cached, evaluations = list(calls), dev_records(tmp_path / "cached")
    tasks = len({k.split("/")[1] for k in evaluations[0] if k.endswith("/mrr@10") and k != "dev/mean_mrr@10"})
    assert len(evaluations) == 3 and tasks >= 2
    assert len(cached) == tasks * (1 if document_prompt == "plain" else 3)

    evaluate_dev = Trainer.evaluate_dev

    def uncached(self, model, dev):
        self.dev_doc_cache.clear()
        return evaluate_dev(self, model, dev)

    monkeypatch.setattr(Trainer, "evaluate_dev", uncached)
    calls.clear()
    Trainer(make_config(tiny_setup, tmp_path / "fresh", *extra)).run()
    assert len(calls) == tasks * 3
    assert dev_records(tmp_path / "fresh") == evaluations


def test_plateau_rule():
    from promptembedder.training.trainer import plateaued

    assert not plateaued([0.4, 0.5], patience=2)  # too few evaluations to tell
    assert plateaued([0.4, 0.5, 0.5, 0.49], patience=2)
    assert not plateaued([0.4, 0.5, 0.5, 0.52], patience=2)
    assert plateaued([0.4, 0.5, 0.505, 0.509], patience=2, min_delta=0.01)


def test_dev_scores_rank_each_query_among_its_tasks_positives():
    from promptembedder.data.format import TrainExample
    from promptembedder.training.trainer import dev_scores

    vectors = {"a": [1.0, 0.0], "b": [0.0, 1.0], "qa": [0.9, 0.1], "qb": [0.8, 0.2]}  # qb's positive is b
    dev = {
        "t": [TrainExample("t", "find", "qa", "a"), TrainExample("t", "find", "qb", "b")],
        "alone": [TrainExample("alone", "find", "qa", "a")],  # a single query has nothing to rank against
    }
    seen = []

    def encode(texts, instruction):
        seen.append(instruction)
        return np.array([vectors[t] for t in texts])

    scores = dev_scores(encode, encode, dev)
    assert scores["dev/t/mrr@10"] == pytest.approx((1.0 + 0.5) / 2)  # qa ranks a first, qb ranks b second
    assert scores["dev/t/recall@1"] == pytest.approx(0.5)
    assert scores["dev/mean_mrr@10"] == pytest.approx(0.75)
    assert "dev/alone/mrr@10" not in scores and set(seen) == {"find"}


# optim.ema_decay: the weight average (training/ema.py)
def test_config_refuses_a_decay_outside_0_1(tiny_setup, tmp_path):
    with pytest.raises(ConfigError, match=r"optim.ema_decay must be in \[0, 1\)"):
        make_config(tiny_setup, tmp_path / "run", "optim.ema_decay=1.0")


def test_training_is_unchanged_and_the_saved_model_is_the_average(tiny_setup, tmp_path):
    """The optimiser trains the raw weights (the same losses as without an average); the saved W is the average
    of W over the steps, computed here by hand from the weights after each step."""
    plain = Trainer(make_config(tiny_setup, tmp_path / "plain", "steps=6"))
    plain.run()
    trainer = Trainer(make_config(tiny_setup, tmp_path / "ema", "steps=6", "optim.ema_decay=0.8"))
    seen = []
    trainer.on_step = lambda model, step, **_: seen.append((step, model.alignment.linear.weight.detach().clone()))
    start = PromptEmbedder.from_config(trainer.config.model, device="cpu", seed=trainer.config.seed)
    saved = PromptEmbedder.from_pretrained(trainer.run(), device="cpu")
    assert losses(tmp_path / "ema") == losses(tmp_path / "plain")
    expected = start.alignment.linear.weight.detach().float()
    for step, weight in seen:
        d = min(0.8, (1 + step) / (10 + step))
        expected = d * expected + (1 - d) * weight
    torch.testing.assert_close(saved.alignment.linear.weight, expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(saved.alignment.linear.weight, seen[-1][1])


def test_resume_with_an_average_is_exact(tiny_setup, tmp_path, monkeypatch):
    common = ("optim.ema_decay=0.8", "checkpoint_every=100")
    straight = PromptEmbedder.from_pretrained(Trainer(make_config(tiny_setup, tmp_path / "a", *common)).run())
    config = make_config(tiny_setup, tmp_path / "b", *common)
    trainer = Trainer(config)
    interrupt_at(trainer, monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    resumed = PromptEmbedder.from_pretrained(Trainer(config).run(resume=True))
    assert losses(tmp_path / "b") == losses(tmp_path / "a")
    torch.testing.assert_close(resumed.alignment.linear.weight, straight.alignment.linear.weight)
    for (name, x), y in zip(
        resumed.prompting.state_dict().items(), straight.prompting.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(x, y, msg=name)


def test_documents_without_gradient_train_the_prompt_from_the_queries_alone(tiny_setup, tmp_path, monkeypatch):
    """document_gradient=false: prompted documents are embedded with the step's prompt but no graph, so the
    Prompting LLM and W learn from the queries' side only; the first step's loss is the same as with gradients
    (the forward pass is unchanged), the updates differ, and both settings train prompting and W."""
    graphs = []
    real = Trainer._documents

    def recorded(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        graphs.append(out.requires_grad)
        return out

    monkeypatch.setattr(Trainer, "_documents", recorded)
    common = ("steps=3", "model.document_prompt=prompted", "grad_cache_chunk=3", "checkpoint_every=100")
    frozen = Trainer(make_config(tiny_setup, tmp_path / "frozen", *common, "document_gradient=false")).run()
    assert graphs and not any(graphs)
    graphs.clear()
    Trainer(make_config(tiny_setup, tmp_path / "full", *common)).run()
    assert graphs and all(graphs)
    a, b = losses(tmp_path / "frozen"), losses(tmp_path / "full")
    assert a[0] == pytest.approx(b[0], rel=1e-5) and a[1:] != pytest.approx(b[1:], rel=1e-5)
    start = PromptEmbedder.from_config(make_config(tiny_setup, "unused", *common).model, device="cpu", seed=0)
    trained = PromptEmbedder.from_pretrained(frozen, device="cpu")
    assert not torch.equal(start.alignment.linear.weight, trained.alignment.linear.weight)
    assert any(
        not torch.equal(x, y) for x, y in zip(start.prompting.parameters(), trained.prompting.parameters(), strict=True)
    )
