"""Soft prompts exported from the source (-> gemma3-270m) give a transferred model's embeddings exactly.

Real models, after run.py (the paths are the experiment's, see bench/RESULTS.md):
    OMP_NUM_THREADS=1 python bench/transfer/travel_check.py
"""

import time

import numpy as np

from promptembedder import PromptEmbedder
from promptembedder.transfer import SoftPrompts, export_soft_prompts

tic = time.perf_counter()
source = PromptEmbedder.from_pretrained("runs/full/model", device="cpu")
instructions = ["Given a word, retrieve the dictionary definition of one of its senses"]
export_soft_prompts(source, instructions).save("runs/transfer-bench/prompts")
del source
texts = ["spitfire", "a voyage outside the Earth's atmosphere", "reciprocation"]
for target in ("smollm2-135m", "minilm-l6"):
    model = PromptEmbedder.from_pretrained(f"runs/transfer-bench/{target}/transfer-compose/model", device="cpu")
    travelled = SoftPrompts.load("runs/transfer-bench/prompts").attach(model)
    a = travelled.encode(texts, instruction=instructions[0])
    b = model.encode(texts, instruction=instructions[0])
    print(target, "identical:", np.array_equal(a, b), "max abs diff:", float(np.abs(a - b).max()), a.shape)
print(f"{time.perf_counter() - tic:.0f} s")
