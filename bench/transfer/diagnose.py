"""Why soft prompts do or do not carry to a new backbone: measured on a trained source (issue 15, item 2).

    OMP_NUM_THREADS=1 python bench/transfer/diagnose.py --model runs/full/model --data DATA \
        --targets qwen2.5-coder-0.5b smollm2-135m minilm-l6 --out bench/transfer/results/diagnosis

For the source PromptEmbedder (Prompting LLM -> W -> its Embedding LLM) and each training instruction:

1. **Softness**: the entropy of each step's relaxed distribution, and how much prompts differ between
   instructions (``prompt_statistics``). Near 0 nats every step is one token.
2. **W against its anchor fit**: W0 = the least-squares map from the (trained) Prompting LLM's vocabulary
   embeddings to the Embedding LLM's on the tokens both share (what a transfer's ``vocab`` init gives a new
   backbone), checked first by its top-1 accuracy on shared tokens held out of the fit. Reported:
   ||W - W0|| / ||W0||, and for the actual prompts the cosine between W s and W0 s. If the backbone reads
   W s and W0 s alike, the part of the prompt a new backbone can be given is what matters; if not, the
   trained W carries what the prompt means and a new W starts from nothing.
3. **Nearest tokens**: of each soft vector s in the prompter's vocabulary, of W s in the backbone's, and of
   W0' s in each target's (W0' its anchor fit). Cosine near 1: a token mixture any backbone can read.
4. **What a mixture table gives each target** (``transfer.init=mixture``): the share of the prompts' mixture
   weight on tokens the target shares (``shared_mass``), the nearest-token cosine of the mixture-table output
   and its cosine with W0' s.

Writes ``diagnosis.json`` and ``diagnosis.md`` (a table per model) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from promptembedder import PromptEmbedder
from promptembedder.alignment import AlignmentMap, held_out_map_accuracy, least_squares_map, shared_anchors
from promptembedder.atomic import write_text
from promptembedder.models.loading import load_base_model
from promptembedder.prompting import nearest_tokens, prompt_statistics, vocabulary_embeddings
from promptembedder.transfer.cli import _instructions_in


def anchor_fit(prompting, prompt_tokenizer, target_model, target_tokenizer) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """W0 (d_p, d_t) and b0 fitted on the shared tokens' input embeddings, with how many tokens were shared and
    the map's top-1 accuracy on a tenth of them held out of the fit."""
    src, tgt = shared_anchors(prompt_tokenizer, target_tokenizer)
    x = vocabulary_embeddings(prompting).detach()[src].float()
    vocabulary = vocabulary_embeddings(target_model).detach().float()
    y = vocabulary[tgt]
    w, b = least_squares_map(x, y)
    return w, b, {"shared_tokens": len(src), "held_out_top1": held_out_map_accuracy(x, y, vocabulary, tgt)}


def decode(tokenizer, ids: torch.Tensor) -> list[str]:
    return [tokenizer.decode([int(i)]) for i in ids]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="A trained PromptEmbedder folder.")
    parser.add_argument("--data", type=Path, help="A built data folder whose training instructions to read.")
    parser.add_argument("--targets", nargs="*", default=[], help="New Embedding LLMs to fit anchor maps for.")
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    tic = time.perf_counter()
    torch.set_grad_enabled(False)
    model = PromptEmbedder.from_pretrained(args.model, device="cpu").eval()
    instructions = _instructions_in([args.data / "train"]) if args.data else []
    if args.data and not instructions:
        sys.exit(f"error: no training instructions under {args.data}/train")
    if not instructions:
        from promptembedder.data import sample_dir

        instructions = _instructions_in([sample_dir()])
    prompting, prompt_tok = model.prompting.model, model.prompting.tokenizer
    soft, entropy, weights = model.prompting(instructions, return_weights=True)  # (N, K, d_p), (N, K), (N, K, V)
    flat = soft.reshape(-1, soft.shape[-1]).float()
    flat_weights = weights.reshape(-1, weights.shape[-1]).float()
    report: dict = {"model": str(args.model), "instructions": len(instructions)}
    report["softness"] = prompt_statistics(model.prompting, instructions, made=(soft, entropy))

    # W against its anchor fit on the source's own backbone.
    backbone, backbone_tok = model.embedding.model, model.embedding.tokenizer
    w0, b0, fit = anchor_fit(prompting, prompt_tok, backbone, backbone_tok)
    w = model.alignment.linear.weight.detach().float().T  # (d_p, d_e)
    b = model.alignment.linear.bias.detach().float() if model.alignment.linear.bias is not None else 0
    trained, anchored = flat @ w + b, flat @ w0 + b0
    report["alignment"] = {
        **fit,
        "relative_distance": float((w - w0).norm() / w0.norm()),
        "cos_trained_vs_anchor_output": float(F.cosine_similarity(trained, anchored, dim=-1).mean()),
        "norm_ratio_trained_to_anchor_output": float(trained.norm(dim=-1).mean() / anchored.norm(dim=-1).mean()),
        "bias_share_of_output": float(
            (b if isinstance(b, torch.Tensor) else torch.zeros(1)).norm() / trained.norm(dim=-1).mean()
        ),
    }
    cos_p, ids_p = nearest_tokens(flat, vocabulary_embeddings(prompting), args.top)
    cos_e, ids_e = nearest_tokens(trained, vocabulary_embeddings(backbone), args.top)
    cos_a, ids_a = nearest_tokens(anchored, vocabulary_embeddings(backbone), args.top)
    report["nearest"] = {
        "prompter_mean_cos": float(cos_p[:, 0].mean()),
        "backbone_trained_mean_cos": float(cos_e[:, 0].mean()),
        "backbone_anchor_mean_cos": float(cos_a[:, 0].mean()),
    }
    rows = []
    k = soft.shape[1]
    for i, text in enumerate(instructions[:4]):  # a few instructions in full; the means cover all
        for j in range(k):
            n = i * k + j
            rows.append(
                {
                    "instruction": text,
                    "step": j + 1,
                    "entropy": float(entropy[i, j]),
                    "prompter": list(zip(decode(prompt_tok, ids_p[n]), cos_p[n].tolist(), strict=True)),
                    "backbone (W)": list(zip(decode(backbone_tok, ids_e[n]), cos_e[n].tolist(), strict=True)),
                    "backbone (W0)": list(zip(decode(backbone_tok, ids_a[n]), cos_a[n].tolist(), strict=True)),
                }
            )
    report["targets"] = {}
    for name in args.targets:
        target, target_tok = load_base_model(name)
        wt, bt, fit_t = anchor_fit(prompting, prompt_tok, target, target_tok)
        cos_t, ids_t = nearest_tokens(flat @ wt + bt, vocabulary_embeddings(target), args.top)
        # What transfer.init=mixture starts from: the weight on shared tokens lands on the target's own rows.
        table = AlignmentMap(flat.shape[-1], wt.shape[1])
        table.linear.weight.copy_(wt.T)
        table.linear.bias.copy_(bt)
        table.build_mixture_table(prompting, prompt_tok, target, target_tok)
        mixed = table(flat, flat_weights)
        cos_m, _ = nearest_tokens(mixed, vocabulary_embeddings(target), 1)
        report["targets"][name] = {
            **fit_t,
            "anchor_mean_cos": float(cos_t[:, 0].mean()),
            "shared_mass": float(flat_weights[:, table.table_ids].sum(-1).mean()),
            "mixture_mean_cos": float(cos_m[:, 0].mean()),
            "cos_mixture_vs_anchor_output": float(F.cosine_similarity(mixed, flat @ wt + bt, dim=-1).mean()),
        }
        for n, row in enumerate(rows):
            row[name] = list(zip(decode(target_tok, ids_t[n]), cos_t[n].tolist(), strict=True))
        del target
    report["rows"] = rows
    report["seconds"] = round(time.perf_counter() - tic, 1)

    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "diagnosis.json", json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    md = [f"# Diagnosis of {args.model}", "", f"{len(instructions)} training instructions.", ""]
    md += [f"- softness: {json.dumps(report['softness'])}", f"- alignment: {json.dumps(report['alignment'])}"]
    md += [f"- nearest (mean top-1 cosine): {json.dumps(report['nearest'])}"]
    md += [f"- targets: {json.dumps(report['targets'])}", ""]
    columns = ["prompter", "backbone (W)", "backbone (W0)", *args.targets]
    md += ["| instruction | step | entropy | " + " | ".join(columns) + " |", "|---" * (3 + len(columns)) + "|"]
    for row in rows:
        cells = [", ".join(f"{t!r} {c:.2f}" for t, c in row[col]).replace("|", "\\|") for col in columns]
        label = row["instruction"][:40] if row["step"] == 1 else ""
        md.append(f"| {label} | {row['step']} | {row['entropy']:.2f} | " + " | ".join(cells) + " |")
    write_text(args.out / "diagnosis.md", "\n".join(md) + "\n")
    print("\n".join(md[:8]))
    print(f"wrote {args.out}/diagnosis.json and diagnosis.md ({report['seconds']} s)")


if __name__ == "__main__":
    main()
