"""save_pretrained writes a model card a hub accepts: the metadata block, licences, evaluation and training."""

import json

from huggingface_hub import ModelCard

from promptembedder import PromptEmbedder

from tiny import save_tiny_pair


def test_the_card_carries_metadata_licences_the_last_evaluation_and_the_training_config(tmp_path):
    prompting, embedding = save_tiny_pair(tmp_path, kind="gemma")
    model = PromptEmbedder.from_models(prompting, embedding, num_soft_tokens=3, device="cpu", max_length=64)
    model.config.prompts = {"query": "find the sentence about the same animal"}
    run = tmp_path / "run"
    run.mkdir()
    train_dir = run / "train"
    train_dir.mkdir()
    (train_dir / "animals.jsonl").write_text("")
    training = {"method": "promptembedder", "model": model.config.to_dict(), "data": {"train_files": [str(train_dir)]}}
    (run / "config.json").write_text(json.dumps(training))
    (run / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
    (run / "eval.md").write_text(
        "# Evaluation: 1 tasks, 1 models\n\n| task | type | metric | m |\n|---|---|---|---:|\n"
    )
    folder = model.save_pretrained(run / "model")

    card = ModelCard.load(folder / "README.md")
    assert card.data.library_name == "sentence-transformers"
    assert card.data.pipeline_tag == "sentence-similarity"
    assert "promptembedder" in card.data.tags
    assert card.data.base_model == [prompting, embedding]
    assert card.data.datasets == ["animals"]
    assert card.data.license == "other"  # tiny models of unknown licence: the table names each part
    assert "| task | type | metric | m |" in card.text  # the evaluation table
    assert '"train_files"' in card.text  # the training config
    assert 'prompt_name="query"' in card.text
    assert "alignment map W" in card.text


def test_known_models_give_hub_licence_ids_and_a_bare_save_still_has_a_card(tmp_path):
    from promptembedder.config import PromptEmbedderConfig
    from promptembedder.modelcard import model_card

    both_apache = model_card(
        PromptEmbedderConfig(prompting_model="smollm2-135m", embedding_model="minilm-l6"), embedding_dim=384
    )
    assert "license: apache-2.0" in both_apache
    mixed = model_card(
        PromptEmbedderConfig(prompting_model="smollm2-135m", embedding_model="gemma3-270m"), embedding_dim=640
    )
    assert "license: other" in mixed and "Gemma Terms of Use" in mixed
    prompting, embedding = save_tiny_pair(tmp_path, kind="llama")
    model = PromptEmbedder.from_models(prompting, embedding, num_soft_tokens=3, device="cpu", max_length=64)
    card = ModelCard.load(model.save_pretrained(tmp_path / "bare") / "README.md")
    assert "## Evaluation" not in card.text and "## Training" not in card.text
    assert "## Licences" in card.text and card.data.base_model == [prompting, embedding]
    # a report put into the model folder is quoted by the next save's card, and kept
    (tmp_path / "bare" / "eval.md").write_text("# Evaluation: 1 tasks, 1 models\n\n| task | type | metric | x |\n")
    card = ModelCard.load(model.save_pretrained(tmp_path / "bare") / "README.md")
    assert "| task | type | metric | x |" in card.text and (tmp_path / "bare" / "eval.md").is_file()
