import pytest

from promptembedder.training import load_config

from tiny import save_tiny_pair, write_tiny_train_files


@pytest.fixture(scope="session")
def tiny_setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-baselines")
    prompting, embedding = save_tiny_pair(folder, kind="gemma")  # left padding, BOS, scaled embeddings
    return folder, prompting, embedding, write_tiny_train_files(folder)


@pytest.fixture
def make_config(tiny_setup):
    _, prompting, embedding, files = tiny_setup

    def make(out, *extra):
        return load_config(
            None,
            [
                f"model.prompting_model={prompting}",
                f"model.embedding_model={embedding}",
                f"data.train_files=[{files[0]}, {files[1]}]",
                "model.max_length=32",
                "model.num_soft_tokens=3",
                "batch_size=8",
                "steps=4",
                "log_every=1",
                "eval_every=0",
                "checkpoint_every=100",
                "data.dev_per_task=8",
                "optim.warmup_steps=0",
                f"output_dir={out}",
                *extra,
            ],
        )

    return make
