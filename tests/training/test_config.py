import pytest

from promptembedder.training.config import ConfigError, config_differences, load_config


def test_defaults_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("batch_size: 8\nmodel:\n  num_soft_tokens: 3\noptim:\n  decay: cosine\n")
    config = load_config(path, ["optim.lr=5e-5", "model.relaxation=gumbel", "data.train_files=[a.jsonl, b.jsonl]"])
    assert config.batch_size == 8 and config.model.num_soft_tokens == 3
    assert config.optim.lr == 5e-5 and config.optim.decay.value == "cosine"
    assert config.model.relaxation.value == "gumbel" and config.data.train_files == ["a.jsonl", "b.jsonl"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optim.learning_rate=1"], "unknown config key optim.learning_rate"),
        (["batchsize=3"], "unknown config key batchsize"),
        (["model.pooling=max"], "pooling='max' is not valid; choose one of: last, mean"),
        (["optim.decay=step"], "optim.decay='step' is not valid"),
        (["batch_size=0"], "batch_size must be a positive integer"),
        (["loss_temperature=-1"], "loss_temperature must be > 0"),
        (["model.num_soft_tokens=0"], "num_soft_tokens must be a positive integer"),
        (["nonsense"], "--set expects key=value"),
        (["steps=many"], "steps='many' must be of type int"),
        (["document_cache=3"], "document_cache=3 must be of type bool"),
        (["model.text_template="], "model.text_template is empty (null) but must be a string"),
        (["patience=2", "eval_every=0"], "patience counts dev evaluations"),
        (["patience=-1"], "patience and min_delta must be >= 0"),
        (["entropy_floor=-1"], "entropy_floor and entropy_weight must be >= 0"),
        (["entropy_floor=2", "method=lora"], "entropy_floor acts on a Prompting LLM that trains"),
        (["optim.gate_lr=0.01"], "optim.gate_lr sets the prompt gate's rate: add model.prompt_gate=true"),
        (["optim.gate_lr=-1", "model.prompt_gate=true"], "optim.gate_lr, optim.deep_lr and optim.warmup_steps >= 0"),
        (["optim.deep_lr=1e-4"], "optim.deep_lr sets the deep prompts' rate: add model.deep_prompt=true"),
        (["data.split_seed=-2"], "data.split_seed must be >= 0, or -1 for the run's seed"),
        (["prompt_similarity_ceiling=2"], "prompt_similarity_ceiling must be in"),
        (["prompt_similarity_tasks=0"], "prompt_similarity_tasks must be >= 1"),
        (["prompt_similarity_ceiling=0.8", "method=lora", "entropy_floor=0"], "acts on a Prompting LLM that trains"),
        (["prompt_similarity_ceiling=0.8", "model.conditioning=instruction+text"], "compares one prompt per task"),
        (["model.deep_prompt=true", "gradient_checkpointing=true"], "model.deep_prompt adds offsets inside layers"),
        (["model.deep_prompt=true", "method=lora", "entropy_floor=0"], "model.deep_prompt is a PromptEmbedder's W"),
    ],
)
def test_bad_configs_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(None, overrides)


def test_missing_or_broken_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")


def test_differences_ignore_keys_that_may_change_on_resume():
    a = load_config(None, ["log_every=10"])
    b = load_config(None, ["log_every=20", "output_dir=elsewhere", "optim.lr=1e-3", "model.pooling=last"])
    assert config_differences(a, b) == ["model.pooling", "optim.lr"]


def test_packaged_configs_load_by_name():
    from promptembedder.training.config import packaged_configs

    assert "demo" in packaged_configs()
    demo = load_config("demo")
    assert demo.model.prompting_model == "smollm2-135m" and demo.model.embedding_model == "gemma3-270m"
    with pytest.raises(ConfigError, match="packaged configs: .*demo"):
        load_config("no-such-config")


# Each packaged recipe is full.yaml with only the keys its own measurements changed (output_dir aside).
RECIPE_KEYS = {
    "full-gpu": {"batch_size", "grad_cache_chunk", "precision", "speed.fused_optimizer"},
    "transfer": {
        "model.document_prompt",
        "model.deep_prompt",
        "optim.deep_lr",
        "optim.warmup_steps",
        "steps",
        "patience",
        "restore_best",
        "entropy_floor",
    },
    "minilm": {
        "model.embedding_model",
        "model.text_template",
        "model.pooling",
        "model.prompt_gate",
        "optim.alignment_lr",
    },
}


@pytest.mark.parametrize("name", sorted(RECIPE_KEYS))
def test_a_packaged_recipe_is_the_full_recipe_with_only_what_it_changes(name):
    """full-gpu.yaml changes what a GPU changes, transfer.yaml what a transfer measured best, minilm.yaml what an
    encoder reads differently; data, loss and the rest stay full.yaml's, so the recipes move together."""
    assert set(config_differences(load_config("full"), load_config(name))) - {"output_dir"} == RECIPE_KEYS[name]


def test_the_derived_recipes_hold_their_own_settings():
    gpu, transfer, minilm = load_config("full-gpu"), load_config("transfer"), load_config("minilm")
    assert gpu.batch_size >= 64 and gpu.precision.value == "bf16"
    assert transfer.model.deep_prompt and transfer.optim.deep_lr and transfer.eval_every
    assert minilm.model.embedding_model == "minilm-l6" and minilm.model.text_template == "" and minilm.model.prompt_gate
