"""The request -> soft prompt logic without HTTP: instructions sent by clients, token counts and limits."""

import numpy as np
import pytest

from promptembedder.serving import ServeConfig, load_servable
from promptembedder.serving.errors import APIError
from promptembedder.serving.service import EmbeddingService, InputType


def test_request_instructions_are_cached_only_up_to_the_limit(saved, reference):
    service = EmbeddingService(load_servable(saved["model"], device="cpu"), ServeConfig(max_cached_instructions=2))
    instructions = ["find the same animal", "find the same song", "find the same food", "find the same animal"]
    for instruction in instructions:
        np.testing.assert_allclose(
            service.embed(instruction, saved["texts"]),
            reference.encode(saved["texts"], instruction=instruction),
            atol=1e-6,
        )
        assert len(service._generated) <= 2
    assert list(service._generated) == ["find the same food", "find the same animal"]


def test_resolve_and_count(saved):
    service = EmbeddingService(load_servable(saved["bundle"], device="cpu"), ServeConfig(max_tokens_per_text=4))
    assert service.resolve("animals", None, InputType.QUERY) == saved["tasks"]["animals"]
    assert service.resolve("animals", None, InputType.DOCUMENT) is None  # documents are embedded plain
    assert service.resolve(saved["bundle"].name, None, InputType.QUERY) is None
    assert service.count_tokens(["cat", "the red cat"]) == [2, 4]  # BOS included
    with pytest.raises(APIError, match="input\\[1\\] is 5 tokens, more than the 4"):
        service.count_tokens(["cat", "the red cat runs"])
    truncating = EmbeddingService(service.servable, ServeConfig(max_tokens_per_text=4, truncate=True))
    assert truncating.count_tokens(["cat", "the red cat runs"]) == [2, 4]
