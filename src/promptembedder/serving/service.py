"""What one embeddings request means: which soft prompt, how many tokens, and the model call itself."""

from __future__ import annotations

import copy
from collections import OrderedDict
from enum import Enum

import numpy as np
import torch
import torch.nn.functional as F

from promptembedder.config import Conditioning, DocumentPrompt
from promptembedder.serving.bundle import Servable
from promptembedder.serving.config import ServeConfig
from promptembedder.serving.errors import APIError


class EncodingFormat(str, Enum):
    FLOAT = "float"
    BASE64 = "base64"
    """Little-endian float32 bytes, base64-encoded (what the openai client asks for by default)."""


class InputType(str, Enum):
    QUERY = "query"
    """The task's soft prompt goes in front of the texts."""
    DOCUMENT = "document"
    """The document side: a soft prompt only if the model's config prompts documents (document_prompt)."""


class EmbeddingService:
    """Resolves requests to a soft prompt and embeds texts with it. ``embed`` runs on the model worker only."""

    def __init__(self, servable: Servable, config: ServeConfig) -> None:
        self.servable, self.config = servable, config
        embedding = servable.embedding
        # The event loop's own copy: a fast tokenizer is not safe to use from two threads at once.
        self.counter = copy.deepcopy(embedding.tokenizer)
        readable = embedding.max_length - servable.num_soft_tokens
        if config.max_tokens_per_text is not None and config.max_tokens_per_text > readable:
            raise ValueError(
                f"max_tokens_per_text={config.max_tokens_per_text} is more than this model reads per text: "
                f"{readable} (max_length {embedding.max_length} minus {servable.num_soft_tokens} soft tokens)"
            )
        self.max_tokens = config.max_tokens_per_text or readable
        if servable.name in servable.tasks:
            raise ValueError(f"a task is named {servable.name!r} like the served model itself: rename the task")
        self.model_ids = [servable.name, *servable.tasks]
        # Aligned prompts of instructions sent in requests, on the worker thread only. Bounded, unlike the
        # model's own cache: clients choose these strings.
        self._generated: OrderedDict[str, torch.Tensor] = OrderedDict()

    @property
    def dimension(self) -> int:
        return self.servable.embedding.output_dim

    # ------------------------------------------------------------------ on the event loop
    def _how_to_add(self) -> str:
        if self.servable.model is None:
            return (
                "To add a task, name its instruction in your tasks file and export the bundle again "
                "(promptembedder export --model MODEL --tasks tasks.yaml --out BUNDLE), or serve the bundle with "
                "--prompting MODEL so that any instruction can be sent in the 'instruction' field."
            )
        return (
            f"Send model='{self.servable.name}' with an 'instruction' field, or name the task in a --tasks file "
            "when starting the server."
        )

    def resolve(self, model_id: str, instruction: str | None, input_type: InputType) -> str | None:
        """The instruction whose soft prompt these texts get (None: no soft prompt), or an APIError."""
        tasks = self.servable.tasks
        if model_id in tasks:
            if instruction is not None:
                raise APIError(
                    400,
                    f"model '{model_id}' is a task with its own instruction; send either a task as 'model', or "
                    f"model='{self.servable.name}' with an 'instruction'.",
                    param="instruction",
                )
            instruction = tasks[model_id]
        elif model_id != self.servable.name:
            raise APIError(
                404,
                f"The model '{model_id}' does not exist here. This server serves: "
                f"{', '.join(repr(m) for m in self.model_ids)}. {self._how_to_add()}",
                param="model",
                code="model_not_found",
            )
        if instruction is not None and not instruction.strip():
            message = "'instruction' is empty: send a task description, or leave it out."
            raise APIError(400, message, param="instruction")
        if input_type is InputType.DOCUMENT and self.servable.config.document_prompt is DocumentPrompt.PLAIN:
            return None
        if instruction is None or instruction in self.servable.task_prompts or self.servable.model is not None:
            return instruction
        raise APIError(
            400,
            f"This bundle has no Prompting LLM, so it serves only its tasks "
            f"({', '.join(repr(t) for t in tasks)}), not the instruction {instruction!r}. {self._how_to_add()}",
            param="instruction",
            code="unknown_instruction",
        )

    def prefix_tokens(self, instruction: str | None) -> int:
        return 0 if instruction is None else self.servable.num_soft_tokens

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens each text is read as (special tokens included, after truncation); refuses texts over the limit."""
        rows = self.counter(texts, add_special_tokens=True)["input_ids"]
        counts = [max(len(row), 1) for row in rows]  # an empty text is read as one end-of-text token
        if not self.config.truncate:
            for i, n in enumerate(counts):
                if n > self.max_tokens:
                    raise APIError(
                        400,
                        f"input[{i}] is {n} tokens, more than the {self.max_tokens} this server reads per text. "
                        "Shorten it, or start the server with --truncate to cut long texts.",
                        param="input",
                        code="context_length_exceeded",
                    )
        return [min(n, self.max_tokens) for n in counts]

    # ------------------------------------------------------------------ on the model worker
    def embed(self, instruction: str | None, texts: list[str]) -> np.ndarray:
        """(len(texts), d) float32, L2-normalised: what ``PromptEmbedder.encode`` returns for them."""
        servable = self.servable
        with torch.inference_mode():
            prefix = None
            if instruction is not None:
                prefix = servable.task_prompts.get(instruction)
                if prefix is None:
                    prefix = self._prompt(texts, instruction)
            limit = self.max_tokens + self.prefix_tokens(instruction)
            vectors = servable.embedding(texts, prefix=prefix, max_length=limit)
            if prefix is not None and servable.gate is not None:  # as PromptEmbedder.forward blends it
                vectors = servable.embedding.blend(texts, vectors, servable.gate, max_length=limit)
            vectors = F.normalize(vectors, dim=-1)
        return vectors.float().cpu().numpy()

    def _prompt(self, texts: list[str], instruction: str) -> torch.Tensor:
        model = self.servable.model
        if model.config.conditioning is not Conditioning.INSTRUCTION:
            return model.prompt_for(texts, instruction, use_cache=False)  # one soft prompt per text
        prompt = self._generated.pop(instruction, None)
        if prompt is None:
            prompt = model.prompt_for([], instruction, use_cache=False)
        self._generated[instruction] = prompt  # now the most recently used
        while len(self._generated) > self.config.max_cached_instructions:
            self._generated.popitem(last=False)
        return prompt
