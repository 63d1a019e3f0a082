import json

import numpy as np
import pytest
import torch

from promptembedder.baselines import LoRAEmbedder, is_baseline, load_pretrained
from promptembedder.config import PromptEmbedderConfig
from promptembedder.evaluation.baselines import INSTRUCTION_TEMPLATE, load_encoder
from promptembedder.training import Trainer

INSTRUCTION = "find the sentence about the same animal"
TEXTS = ["the red cat", "a big dog runs", "the old bird eats bread"]


@pytest.fixture
def lora(tiny_setup):
    config = PromptEmbedderConfig(prompting_model="unused", embedding_model=tiny_setup[2], max_length=32)
    model = LoRAEmbedder.from_config(config, device="cpu", r=4)
    with torch.no_grad():  # peft starts B at zero (a no-op adapter); make it matter for the tests
        for name, p in model.embedding.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    return model


def test_only_the_adapters_train_and_both_sides_carry_gradients(lora):
    params = lora.trainable_parameters()
    assert params and all("lora_" in name for name in params)
    assert lora.prompts_documents
    lora.train()
    q = lora(TEXTS, INSTRUCTION, max_length=16)
    d = lora.embed_documents(TEXTS, INSTRUCTION, max_length=16)
    (a,) = torch.autograd.grad((q * q.detach()).sum(), [next(iter(params.values()))], retain_graph=True)
    (b,) = torch.autograd.grad((d * d.detach()).sum(), [next(iter(params.values()))])
    assert a.abs().sum() > 0 and b.abs().sum() > 0


def test_untrained_it_is_the_instruct_baseline_exactly(tiny_setup):
    config = PromptEmbedderConfig(prompting_model="unused", embedding_model=tiny_setup[2], max_length=32)
    fresh = LoRAEmbedder.from_config(config, device="cpu", r=4)  # B = 0: the adapters add nothing yet
    instruct = load_encoder(f"instruct:{tiny_setup[2]}:{fresh.embedding.pooling.value}", device="cpu")
    queries = fresh.encode_queries(TEXTS, INSTRUCTION)
    np.testing.assert_allclose(queries, instruct.encode_queries(TEXTS, INSTRUCTION), atol=1e-6)
    documents = fresh.encode_documents(TEXTS, INSTRUCTION)
    np.testing.assert_allclose(documents, instruct.encode_documents(TEXTS, None), atol=1e-6)
    assert len({tuple(np.round(q, 5)) for q in queries}) == 3  # every query's own text is read


def test_queries_read_the_instruction_in_front_and_documents_do_not(lora):
    with torch.no_grad():
        head = INSTRUCTION_TEMPLATE.format(instruction=INSTRUCTION)
        ids = torch.tensor(lora.embedding.tokenizer(head, add_special_tokens=False)["input_ids"])
        prefix = lora.embedding.model.get_input_embeddings()(ids)
        torch.testing.assert_close(lora(TEXTS, INSTRUCTION), lora.embedding(TEXTS, prefix=prefix))
        torch.testing.assert_close(lora.embed_documents(TEXTS, INSTRUCTION), lora.embedding(TEXTS))


def test_the_instruction_does_not_eat_the_query_length_budget(lora):
    long_text = " ".join(["the red cat runs"] * 10)
    with torch.no_grad():
        short = lora.embedding.tokenizer(long_text)["input_ids"][1:6]  # BOS, then 5 tokens of text
        cut = lora.embedding.tokenizer.decode(short)
        torch.testing.assert_close(lora([long_text], INSTRUCTION, max_length=6), lora([cut], INSTRUCTION))


def test_save_load_and_eval_reproduce_embeddings(lora, tmp_path):
    before = lora.encode(TEXTS, instruction=INSTRUCTION)
    fingerprint = lora.fingerprint()
    path = lora.save_pretrained(tmp_path / "lora")
    assert is_baseline(path) and (path / "adapter").is_dir()
    assert json.loads((path / "baseline_config.json").read_text())["method"] == "lora"
    loaded = load_pretrained(path, device="cpu")
    assert isinstance(loaded, LoRAEmbedder) and loaded.fingerprint() == fingerprint
    np.testing.assert_allclose(loaded.encode(TEXTS, instruction=INSTRUCTION), before, atol=1e-6)
    encoder = load_encoder(str(path), device="cpu")
    np.testing.assert_allclose(encoder.encode_queries(TEXTS, INSTRUCTION), before, atol=1e-6)
    assert encoder.document_fingerprint() is None  # the adapters change documents: nothing to share
    with torch.no_grad():
        next(iter(loaded.trainable_parameters().values())).add_(1.0)
    assert loaded.fingerprint() != fingerprint


def test_the_trainer_trains_lora_and_leaves_the_base_weights(make_config, tmp_path):
    config = make_config(tmp_path / "run", "method=lora", "lora.r=4", "data.hard_negatives=1")
    trainer = Trainer(config)
    folder = trainer.run()
    trained = load_pretrained(folder, device="cpu")
    fresh = LoRAEmbedder.from_config(config.model, device="cpu", seed=config.seed, r=4)
    base_a = {n: p for n, p in trained.embedding.model.named_parameters() if "lora_" not in n}
    base_b = {n: p for n, p in fresh.embedding.model.named_parameters() if "lora_" not in n}
    assert base_a.keys() == base_b.keys() and all(torch.equal(base_a[n], base_b[n]) for n in base_a)
    changed = [not torch.equal(p, fresh.trainable_parameters()[n]) for n, p in trained.trainable_parameters().items()]
    assert any(changed)
    assert all(np.isfinite(h["loss"]) for h in trainer.history)


def test_lora_dropout_applies_in_training_and_not_in_eval(tiny_setup):
    config = PromptEmbedderConfig(prompting_model="unused", embedding_model=tiny_setup[2], max_length=32)
    model = LoRAEmbedder.from_config(config, device="cpu", r=4, dropout=0.5)
    with torch.no_grad():
        for name, p in model.embedding.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    model.train()
    with torch.no_grad():
        first, second = model(TEXTS, INSTRUCTION), model(TEXTS, INSTRUCTION)
    assert not torch.allclose(first, second)  # a fresh dropout mask on the adapters' input each call
    base = [m for n, m in model.embedding.model.named_modules() if "lora_dropout" not in n and m.training]
    assert base == []  # the frozen backbone itself stays in eval mode
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(TEXTS, INSTRUCTION), model(TEXTS, INSTRUCTION))
