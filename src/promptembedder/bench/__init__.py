"""Benchmarks: LoRA, prompt tuning and PromptEmbedder side by side (``promptembedder bench``), and a step profiler."""
