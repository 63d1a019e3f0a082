"""Settings of ``promptembedder serve``: where it listens, how it batches, what it refuses."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ServeConfig:
    """Batching and limits of the embeddings server (defaults follow the OpenAI API and TEI where they have one)."""

    max_batch_tokens: int = field(
        default=8192,
        metadata={"help": "Most tokens (texts padded to the longest, soft prompt included) one model call reads."},
    )
    batch_window_ms: float = field(
        default=5.0,
        metadata={"help": "How long the worker waits for more requests to batch with the first one it holds."},
    )
    max_texts_per_request: int = field(default=2048, metadata={"help": "Most strings in one request's input."})
    max_tokens_per_text: int | None = field(
        default=None,
        metadata={"help": "Most tokens of one text (special tokens included); default: what the model reads."},
    )
    truncate: bool = field(
        default=False,
        metadata={"help": "Cut texts over max_tokens_per_text to it, instead of refusing the request (400)."},
    )
    max_body_bytes: int = field(default=4 * 1024 * 1024, metadata={"help": "Most bytes of one request body."})
    max_cached_instructions: int = field(
        default=1024,
        metadata={"help": "Soft prompts of request instructions (not tasks) kept, least recently used dropped."},
    )
    api_key: str | None = field(
        default=None, metadata={"help": "If set, /v1/* requires the header 'Authorization: Bearer KEY'."}
    )

    def __post_init__(self) -> None:
        for name in ("max_batch_tokens", "max_texts_per_request", "max_body_bytes", "max_cached_instructions"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.max_tokens_per_text is not None and self.max_tokens_per_text < 1:
            raise ValueError(f"max_tokens_per_text must be a positive integer, got {self.max_tokens_per_text!r}")
        if not self.batch_window_ms >= 0:
            raise ValueError(f"batch_window_ms must be >= 0, got {self.batch_window_ms!r}")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("api_key is empty: pass a non-empty key, or none to serve without one")
