"""Contrastive training of the Prompting LLM and the alignment map; the Embedding LLM stays frozen.

One step: draw a batch of one task -> one soft prompt from its instruction -> embed the queries after it
(with gradients) and the documents (plain: cached, no gradient; prompted: with gradients) -> InfoNCE over
in-batch and hard negatives, gathered across processes -> AdamW on the Prompting LLM and W only. With
``tasks_per_step`` > 1 a step runs that many such batches and AdamW takes the mean of their gradients.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import get_scheduler

from promptembedder.atomic import write_text
from promptembedder.config import Conditioning
from promptembedder.data import default_data_dir, sample_dir
from promptembedder.data.format import TrainExample, list_train_files, load_train_file
from promptembedder.data.text import normalise
from promptembedder.embedder import PromptEmbedder
from promptembedder.prompting import prompt_statistics
from promptembedder.training.checkpoint import (
    list_checkpoints,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from promptembedder.training.config import (
    RESUMABLE_KEYS,
    ConfigError,
    InstructionChoice,
    Method,
    NegativesSource,
    Precision,
    PromptingTraining,
    TrainConfig,
    check_inputs,
    config_differences,
    config_from_dict,
)
from promptembedder.training.ema import WeightAverage
from promptembedder.training.loss import EntropyFloorLoss, InfoNCELoss, PromptRepulsionLoss, grad_cache_backward
from promptembedder.training.sampler import TaskBatch, TaskBatchSampler
from promptembedder.training.speed import apply_speed_options

logger = logging.getLogger(__name__)


def load_training_data(config: TrainConfig) -> tuple[dict[str, list[TrainExample]], dict[str, list[TrainExample]]]:
    """Training and dev examples per task; the dev slice is a seeded, disjoint draw from each task."""
    paths: list[Path] = []
    named = {"sample": sample_dir() / "train", "built": default_data_dir() / "train"}
    for entry in config.data.train_files or ["sample"]:
        p = named[entry] if entry in named else Path(entry).expanduser()
        if entry == "built" and not p.is_dir():
            raise ConfigError(f"data.train_files: 'built' data not found at {p}; run `promptembedder data build`")
        if p.is_dir():
            paths.extend(list_train_files(p))
        elif p.is_file():
            paths.append(p)
        else:
            raise ConfigError(f"data.train_files: {p} is neither a file nor a folder")
    if not paths:
        raise ConfigError("data.train_files found no *.jsonl training files")
    by_task: dict[str, list[TrainExample]] = {}
    for path in paths:  # every line is validated here, before any model is loaded
        for example in load_train_file(path):
            by_task.setdefault(example.task, []).append(example)
    train, dev = {}, {}
    split_seed = config.seed if config.data.split_seed == -1 else config.data.split_seed
    for i, (task, examples) in enumerate(sorted(by_task.items())):
        order = np.random.default_rng([split_seed, 7, i]).permutation(len(examples))
        n_dev = min(config.data.dev_per_task, len(examples) // 5)
        dev[task] = [examples[j] for j in order[:n_dev]]
        train[task] = [examples[j] for j in order[n_dev:]]
    return train, dev


INSTRUCTIONS_FILE = "instructions.json"  # {task: [wordings]} beside the training files, written by the build


def load_instructions(config: TrainConfig) -> dict[str, list[str]]:
    """Task -> its instruction wordings, from ``instructions.json`` in (or beside) each training entry."""
    if config.data.instructions is InstructionChoice.CANONICAL:
        return {}
    named = {"sample": sample_dir() / "train", "built": default_data_dir() / "train"}
    found: dict[str, list[str]] = {}
    for entry in config.data.train_files or ["sample"]:
        p = named[entry] if entry in named else Path(entry).expanduser()
        folder = p if p.is_dir() else p.parent
        if (folder / "train").is_dir():  # a build's root folder: its files (and their wordings) are in train/
            folder = folder / "train"
        file = folder / INSTRUCTIONS_FILE
        if not file.is_file():
            continue
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ConfigError(f"{file} is not valid JSON ({err}); rebuild the data") from None
        if not isinstance(data, dict) or not all(
            isinstance(v, list) and v and all(isinstance(i, str) and i.strip() for i in v) for v in data.values()
        ):
            raise ConfigError(f"{file} must map each task to a non-empty list of instructions; rebuild the data")
        for task, wordings in data.items():
            found.setdefault(task, list(dict.fromkeys(wordings)))
    return found


def false_negative_mask(queries: list[str], positives: list[str], pool: list[str | None]) -> list[list[bool]]:
    """True where pool document j must not count as a negative of query i: an empty slot, or the positive of
    any example whose query is the same text (normalised) as i's, its own positive included. Two examples
    "bank" -> "a river's edge" and "bank" -> "a money lender" then never push each other's answers away."""
    keys = [normalise(q) for q in queries]
    answers: dict[str, set[str]] = defaultdict(set)
    for key, positive in zip(keys, positives, strict=True):
        answers[key].add(positive)
    return [[t is None or t in answers[key] for t in pool] for key in keys]


def _text_key(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def upcast_trainable(model: torch.nn.Module) -> int:
    """Keep every trainable weight in float32 (returns how many were cast); frozen ones keep their dtype.

    A GPU loads models in bfloat16, whose 8-bit mantissa cannot hold an AdamW update smaller than about 1/256
    of a weight: such updates round away and training silently stalls. bf16 *compute* is autocast's job
    (``precision: bf16``); the master weights and the optimiser state stay float32.
    """
    cast = 0
    for p in model.parameters():
        if p.requires_grad and p.is_floating_point() and p.dtype != torch.float32:
            p.data = p.data.float()
            cast += 1
    return cast


def dev_scores(
    encode_queries: Callable[[list[str], str], np.ndarray],
    encode_documents: Callable[[list[str], str], np.ndarray],
    dev: dict[str, list[TrainExample]],
) -> dict[str, float]:
    """Per task: MRR@10 and recall@1 of each dev query's positive among that task's dev positives.

    Any encoder fits (a training model, or a baseline through ``encode_queries``/``encode_documents``), so a
    run's dev score can be set beside the frozen backbone's on exactly the same queries.
    """
    scores: dict[str, float] = {}
    for task, examples in dev.items():
        if len(examples) < 2:
            continue
        instruction = examples[0].instruction
        q = encode_queries([e.query for e in examples], instruction)
        docs = sorted({e.positive for e in examples})
        d = encode_documents(docs, instruction)
        gold = np.array([docs.index(e.positive) for e in examples])
        sims = q @ d.T
        ranks = (sims > sims[np.arange(len(gold)), gold][:, None]).sum(1)
        scores[f"dev/{task}/mrr@10"] = float(np.where(ranks < 10, 1.0 / (ranks + 1), 0.0).mean())
        scores[f"dev/{task}/recall@1"] = float((ranks == 0).mean())
    mrrs = [v for k, v in scores.items() if k.endswith("mrr@10")]
    if mrrs:
        scores["dev/mean_mrr@10"] = float(np.mean(mrrs))
    return scores


class Trainer:
    """Runs one training job described by a :class:`TrainConfig`; ``run(resume=...)`` returns the model folder."""

    def __init__(
        self, config: TrainConfig, accelerator: Accelerator | None = None, on_step: Callable[..., None] | None = None
    ) -> None:
        """``on_step(step=, model=, batch=, batches=, record=)`` is called after every optimiser step (benchmarks,
        probes): ``batches`` are the step's ``tasks_per_step`` batches, ``batch`` the first of them."""
        if config.transfer.source:  # checked (source, output folder) and given the source's prompting settings
            from promptembedder.transfer import prepare_transfer_config

            config = prepare_transfer_config(config)
        self.config = config
        mixed = "bf16" if config.precision is Precision.BF16 else "no"
        self.accelerator = accelerator or Accelerator(mixed_precision=mixed, cpu=not torch.cuda.is_available())
        self.output = Path(config.output_dir)
        self.loss_fn = InfoNCELoss(config.loss_temperature)
        self.entropy_floor = EntropyFloorLoss(config.entropy_floor, config.entropy_weight)
        self.repulsion = PromptRepulsionLoss(config.prompt_similarity_ceiling, config.prompt_similarity_weight)
        self.task_instructions: dict[str, str] = {}  # one wording per task: the prompts a step's prompt is kept from
        self.current_step = 0
        self.step_stats: dict[str, float] = {}  # what the last step measured besides its loss (logged with it)
        self.doc_cache: dict[str, torch.Tensor] = {}
        self.dev_doc_cache: dict[str, np.ndarray] = {}  # a dev task's documents, where nothing trained reads them
        self.history: list[dict] = []
        self.average: WeightAverage | None = None  # optim.ema_decay's average of the trainable weights
        self.on_step = on_step
        self.precompute_s: float | None = None
        self.precompute_steps: int | None = None  # how many steps' documents precompute_s embedded
        self.instructions: list[str] = []  # of the training data; prompt tuning learns one prompt for each
        self.dev_scores: list[tuple[int, float]] = []  # (step, dev mean MRR@10) of each evaluation during the run
        self.summary: dict = {}  # steps run, minutes, why it stopped; written to summary.json
        self.best: dict | None = None  # restore_best: the best dev evaluation's step, scores and weights (CPU)
        self.restored_step: int | None = None  # the step whose weights were saved instead of the last ones
        self._stop_requested = False

    # ---------------------------------------------------------------- set-up
    def _build_model(self) -> PromptEmbedder:
        c = self.config
        if c.transfer.source:  # the trained Prompting LLM frozen, a new W for a new Embedding LLM
            from promptembedder.transfer import build_transfer_model

            model = build_transfer_model(c, device=self.accelerator.device)
        elif c.method is not Method.PROMPTEMBEDDER:  # a baseline, driven through the same interface
            from promptembedder.baselines import build_baseline

            model = build_baseline(c, instructions=self.instructions, device=self.accelerator.device)
        else:
            model = PromptEmbedder.from_config(c.model, device=self.accelerator.device, seed=c.seed)
            if c.prompting_training is PromptingTraining.LORA:
                from peft import LoraConfig, get_peft_model

                lora = LoraConfig(
                    r=c.lora.r,
                    lora_alpha=c.lora.alpha,
                    lora_dropout=c.lora.dropout,
                    target_modules=c.lora.target_modules,
                )
                model.prompting.model = get_peft_model(model.prompting.model, lora)
        apply_speed_options(model, c)  # and gradient checkpointing
        upcast_trainable(model)
        return model

    def trainable_parameters(self, model: PromptEmbedder) -> dict[str, torch.nn.Parameter]:
        if self.config.method is not Method.PROMPTEMBEDDER:
            return model.trainable_parameters()
        named = {f"prompting.{n}": p for n, p in model.prompting.named_parameters() if p.requires_grad}
        named.update({f"alignment.{n}": p for n, p in model.alignment.named_parameters()})
        assert not any(p.requires_grad for p in model.embedding.parameters()), "the Embedding LLM must stay frozen"
        return named

    def build_optimizer(self, params: dict[str, torch.nn.Parameter]) -> torch.optim.AdamW:
        """AdamW with W on its own learning rate; fused when configured."""
        c = self.config
        # The gate and the deep maps get a group of their own only when they have their own rate, so runs without
        # one keep the optimiser layout (and resume from) the checkpoints they always had.
        own_gate = {"alignment.gate"} if c.optim.gate_lr else set()
        own_deep = {"alignment.deep"} if c.optim.deep_lr else set()
        own = own_gate | own_deep
        groups = [
            {"params": [p for n, p in params.items() if not n.startswith("alignment.")], "lr": c.optim.lr},
            {
                "params": [p for n, p in params.items() if n.startswith("alignment.") and n not in own],
                "lr": c.optim.alignment_lr,
            },
            {"params": [p for n, p in params.items() if n in own_gate], "lr": c.optim.gate_lr},
            {"params": [p for n, p in params.items() if n in own_deep], "lr": c.optim.deep_lr},
        ]
        groups = [g for g in groups if g["params"]]  # a transfer trains W only: no Prompting LLM group
        fused = True if c.speed.fused_optimizer else None
        optimizer = torch.optim.AdamW(groups, weight_decay=c.optim.weight_decay, fused=fused)
        if fused:  # its kernel leaves version counters alone; the prompt and fingerprint caches watch them
            optimizer.register_step_post_hook(_mark_updated)
        return optimizer

    # ---------------------------------------------------------------- one step
    def _documents(
        self, model: PromptEmbedder, texts: list[str], instruction: str, prompt: torch.Tensor | None = None
    ) -> torch.Tensor:
        max_len = self.config.data.max_document_length
        if model.prompts_documents:
            if not self.config.document_gradient:  # the step's prompt, read as a constant: no backward here
                with torch.no_grad():
                    given = {} if prompt is None else {"prompt": prompt.detach()}
                    return model.embed_documents(texts, instruction, max_length=max_len, **given).float()
            if prompt is not None:
                return model.embed_documents(texts, instruction, max_length=max_len, prompt=prompt)
            return model.embed_documents(texts, instruction, max_length=max_len)
        with torch.no_grad():
            if not self.config.document_cache:
                return model.embed_documents(texts, max_length=max_len).float()
            keys = [_text_key(t) for t in texts]
            missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in self.doc_cache}.items())
            if missing:
                vectors = model.embed_documents([t for _, t in missing], max_length=max_len).float().cpu()
                self.doc_cache.update({k: v for (k, _), v in zip(missing, vectors, strict=True)})
            return torch.stack([self.doc_cache[k] for k in keys]).to(self.accelerator.device)

    @torch.no_grad()
    def precompute_documents(self, model, sampler: TaskBatchSampler, steps: int, batch_size: int = 32) -> None:
        """Fill the document cache with every document of the next ``steps`` batches (a copy of the sampler
        draws them), embedded longest first in large batches; exact, the backbone is frozen."""
        if model.prompts_documents or not self.config.document_cache:
            return
        tic = time.perf_counter()
        ahead = TaskBatchSampler(
            sampler.tasks, sampler.batch_size, seed=sampler.seed, instructions=sampler.instructions
        )
        ahead.probabilities = sampler.probabilities
        ahead.load_state_dict(sampler.state_dict())
        n_neg = self.config.data.hard_negatives
        texts: dict[str, str] = {}
        for _ in range(steps):
            for ex in ahead.next_batch().examples:
                for text in [ex.positive, *self._negatives(ex)[:n_neg]]:
                    texts.setdefault(_text_key(text), text)
        todo = sorted(((k, t) for k, t in texts.items() if k not in self.doc_cache), key=lambda kt: -len(kt[1]))
        was_training = model.training
        model.eval()
        max_len = self.config.data.max_document_length
        for i in tqdm(range(0, len(todo), batch_size), desc="documents", disable=not self.accelerator.is_main_process):
            chunk = todo[i : i + batch_size]
            vectors = model.embed_documents([t for _, t in chunk], max_length=max_len).float().cpu()
            self.doc_cache.update({k: v for (k, _), v in zip(chunk, vectors, strict=True)})
        model.train(was_training)
        self.precompute_s = time.perf_counter() - tic
        self.precompute_steps = steps
        logger.info("precomputed %d document embeddings in %.1f s", len(todo), self.precompute_s)

    def _gather(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.accelerator.num_processes == 1:
            return tensor
        if tensor.requires_grad:  # autograd-aware: each rank gets back the gradients of everyone's loss
            from torch.distributed.nn.functional import all_gather

            return torch.cat(all_gather(tensor.contiguous()))
        return self.accelerator.gather(tensor.contiguous())

    def _negatives(self, example: TrainExample) -> list[str]:
        source = self.config.data.negatives
        mined = list(getattr(example, "mined_negatives", None) or [])
        if source is NegativesSource.MINED:
            return mined or list(example.negatives)
        if source is NegativesSource.BOTH:
            return mined + [n for n in example.negatives if n not in mined]
        return list(example.negatives)

    def _step(self, ddp_model, model: PromptEmbedder, batch: TaskBatch) -> float:
        c, acc = self.config, self.accelerator
        world, rank = acc.num_processes, acc.process_index
        per_rank = c.batch_size // world
        local = batch.examples[rank * per_rank : (rank + 1) * per_rank]
        n_neg = c.data.hard_negatives
        # Every rank knows the global batch, so the doc pool's layout and its false negatives are computed
        # alike everywhere: [positives of rank 0..W-1][negatives of rank 0..W-1, n_neg slots per example].
        negatives = [(self._negatives(ex)[:n_neg] + [None] * n_neg)[:n_neg] for ex in batch.examples]
        pool_texts = [ex.positive for ex in batch.examples] + [t for row in negatives for t in row]
        positives = [ex.positive for ex in batch.examples]
        mine = slice(rank * per_rank, (rank + 1) * per_rank)
        mask = false_negative_mask([ex.query for ex in batch.examples], positives, pool_texts)
        false_neg = torch.tensor(mask[mine], device=acc.device)
        local_pos = [ex.positive for ex in local]
        local_neg = [
            t if t is not None else ex.positive for ex, row in zip(local, negatives[mine], strict=True) for t in row
        ]
        labels = torch.arange(rank * per_rank, (rank + 1) * per_rank, device=acc.device)
        # Queries in length order, so that each GradCache chunk pads to lengths alike; the representations go
        # back to batch order before the loss.
        order = sorted(range(len(local)), key=lambda i: len(local[i].query))
        unsort = torch.tensor(sorted(range(len(order)), key=order.__getitem__), device=acc.device)

        with acc.autocast():
            # One soft prompt for the whole step: its uses see a leaf, whose summed gradient goes back through the
            # Prompting LLM once at the end (the same gradients as regenerating it for each use, at one cost).
            made, entropy, soft = self._step_prompt(model, batch.instruction)
            leaf = None if made is None else made.detach().requires_grad_(True)

            def pool(instruction: str) -> torch.Tensor:
                pos = self._documents(model, local_pos, instruction, leaf)
                if not n_neg:
                    return self._gather(pos)
                negs = self._documents(model, local_neg, instruction, leaf)
                return torch.cat([self._gather(pos), self._gather(negs)])

            def encode_queries(part: slice) -> torch.Tensor:
                texts = [local[i].query for i in order[part]]
                if leaf is not None:
                    return ddp_model(texts, batch.instruction, max_length=c.data.max_query_length, prompt=leaf).float()
                return ddp_model(texts, batch.instruction, max_length=c.data.max_query_length).float()

            def loss_fn(queries: torch.Tensor, docs: torch.Tensor) -> torch.Tensor:
                queries = queries[unsort]
                return self.loss_fn(queries, docs, positives=labels, false_negatives=false_neg)

            docs = pool(batch.instruction)
            if c.grad_cache_chunk and c.grad_cache_chunk < per_rank:
                loss = grad_cache_backward(encode_queries, docs, per_rank, c.grad_cache_chunk, loss_fn, acc.backward)
            else:
                loss = loss_fn(encode_queries(slice(None)), docs)
                acc.backward(loss)
            outputs, grads = [], []
            if made is not None and made.requires_grad and leaf.grad is not None:
                outputs.append(made)
                grads.append(leaf.grad.to(made.dtype))
            for penalty in (self._entropy_penalty(model, batch, entropy), self._repulsion_penalty(model, batch, soft)):
                if penalty is not None:
                    outputs.append(penalty)
                    grads.append(torch.ones_like(penalty))
            if outputs:
                torch.autograd.backward(outputs, grads)
        return float(acc.reduce(loss.detach(), "mean"))

    def _entropy_penalty(self, model, batch: TaskBatch, entropy: torch.Tensor | None) -> torch.Tensor | None:
        """The entropy floor's penalty on this step's relaxed distributions, and their mean entropy logged.

        ``entropy`` comes with the step's shared prompt; without one (DDP, instruction+text conditioning) the
        Prompting LLM reads the step's inputs once more for it. Those are the global batch's, the same on every
        process, so the penalty's gradient, which no process syncs, is the same everywhere too.
        """
        self.step_stats = {}
        if not isinstance(model, PromptEmbedder):
            return None
        if entropy is None:
            if not self.config.entropy_floor:
                return None
            texts = model._prompting_inputs([ex.query for ex in batch.examples], batch.instruction)
            _, entropy = model.prompting(texts, return_entropy=True)
        self.step_stats["prompt_entropy"] = float(entropy.detach().mean())
        if not (self.config.entropy_floor and entropy.requires_grad):
            return None
        return self.entropy_floor(entropy)

    def _repulsion_penalty(self, model, batch: TaskBatch, soft: torch.Tensor | None) -> torch.Tensor | None:
        """The repulsion between this step's prompt and those of a few other tasks (drawn from the step number,
        so a resumed run draws the same), made without gradient with the Prompting LLM as it is now.

        ``soft`` is the step's shared prompt before W (K, d_p); without one (DDP) it is made again here from the
        step's instruction, the same on every process.
        """
        c = self.config
        if c.prompt_similarity_ceiling >= 1 or not isinstance(model, PromptEmbedder):
            return None
        others = sorted(t for t in self.task_instructions if t != batch.task)
        if not others:
            return None
        rng = np.random.default_rng([c.seed, 11, self.current_step])
        picked = rng.choice(len(others), size=min(c.prompt_similarity_tasks, len(others)), replace=False)
        with torch.no_grad():
            their = model.prompting([self.task_instructions[others[i]] for i in sorted(picked)])
        if soft is None:
            soft = model.prompting([batch.instruction])[0]
        self.step_stats["prompt_max_cos"] = float(self.repulsion.similarity(soft.detach(), their).max())
        return self.repulsion(soft, their)

    def _step_prompt(
        self, model: PromptEmbedder, instruction: str
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """The step's aligned soft prompt (K, d_e), its steps' entropies (1, K) and, where W reads no mixture
        weights, the prompt before W (K, d_p), with their graphs, when it can be made once and shared (else
        None, None, None).

        Under DDP each use goes through the wrapper's forward, which is what its gradient sync hooks into;
        per-text prompts (instruction+text conditioning) differ for every text; baselines make none.
        """
        if not self.config.speed.prompt_once or self.accelerator.num_processes > 1:
            return None, None, None
        if not isinstance(model, PromptEmbedder) or model.config.conditioning is not Conditioning.INSTRUCTION:
            return None, None, None
        if model.alignment.has_table:
            aligned, entropy = model.aligned_prompts([instruction], return_entropy=True)
            return aligned[0], entropy, None
        soft, entropy = model.prompting([instruction], return_entropy=True)
        return model.alignment(soft)[0], entropy, soft[0]

    # ---------------------------------------------------------------- evaluation on the dev slice
    @torch.no_grad()
    def evaluate_dev(self, model: PromptEmbedder, dev: dict[str, list[TrainExample]]) -> dict[str, float]:
        """Per task: MRR@10 and recall@1 of each dev query's positive among that task's dev positives."""
        was_training = model.training
        model.eval()

        def documents(texts: list[str], instruction: str) -> np.ndarray:
            if model.prompts_documents:  # as for the training document cache: only plain documents stay fixed
                return model.encode_documents(texts, instruction, batch_size=16)
            # Plain documents through the frozen backbone come out the same at every evaluation: on a 0.5B
            # backbone embedding them again was about half of each evaluation's time.
            key = _text_key("\x00".join(texts))
            if key not in self.dev_doc_cache:
                self.dev_doc_cache[key] = model.encode_documents(texts, instruction, batch_size=16)
            return self.dev_doc_cache[key]

        scores = dev_scores(
            lambda texts, instruction: model.encode(texts, instruction=instruction, batch_size=16), documents, dev
        )
        if isinstance(model, PromptEmbedder):  # is the relaxation still soft, and do instructions still differ?
            instructions = [examples[0].instruction for examples in dev.values() if examples]
            stats = prompt_statistics(model.prompting, instructions)
            scores.update({f"dev/prompt_{k}": v for k, v in stats.items()})
        model.train(was_training)
        return scores

    # ---------------------------------------------------------------- the loop
    def run(self, resume: bool | str = False) -> Path:
        c, acc = self.config, self.accelerator
        check_inputs(c)
        if c.batch_size % acc.num_processes:
            raise ConfigError(f"batch_size={c.batch_size} is not divisible by {acc.num_processes} processes")
        train, dev = load_training_data(c)
        self.instructions = sorted({ex.instruction for examples in train.values() for ex in examples})
        wordings = load_instructions(c)
        self.instructions = sorted(set(self.instructions) | {w for ws in wordings.values() for w in ws})
        sampler = TaskBatchSampler(train, c.batch_size, seed=c.seed, alpha=c.data.mixing_alpha, instructions=wordings)
        if sampler.skipped:
            logger.warning("tasks with fewer examples than batch_size are skipped: %s", sampler.skipped)
        self.task_instructions = {
            name: (sampler.instructions.get(name) or [sampler.tasks[name][0].instruction])[0] for name in sampler.names
        }
        set_seed(c.seed)
        model = self._build_model()
        params = self.trainable_parameters(model)
        optimizer = self.build_optimizer(params)
        scheduler = get_scheduler(
            c.optim.decay.value, optimizer, num_warmup_steps=c.optim.warmup_steps, num_training_steps=c.steps
        )
        ddp_model, optimizer = acc.prepare(model, optimizer)
        self.average = WeightAverage(params, c.optim.ema_decay) if c.optim.ema_decay else None

        start = 0
        checkpoint = self._find_checkpoint(resume)
        if checkpoint is not None:
            start = self._restore(checkpoint, model, params, optimizer, scheduler, sampler)
        self.output.mkdir(parents=True, exist_ok=True)
        if acc.is_main_process:
            (self.output / "config.json").write_text(json.dumps(c.to_dict(), indent=2))
        metrics = self._open_metrics(start)
        writer = self._tensorboard()

        model.train()
        if c.speed.precompute_documents and start < c.steps:
            self.precompute_documents(model, sampler, (c.steps - start) * c.tasks_per_step)
        bar = tqdm(total=c.steps, initial=start, desc="training", unit="step", disable=not acc.is_local_main_process)
        tic, done_since = time.perf_counter(), 0
        completed, final = start, {}
        # What a checkpoint of the last completed step must hold, whenever an interrupt lands.
        snapshot = {"sampler": sampler.state_dict(), "rng": rng_state()}
        previous_handler = self._catch_ctrl_c()
        try:
            for step in range(start + 1, c.steps + 1):
                step_tic = time.perf_counter()
                batches = [sampler.next_batch() for _ in range(c.tasks_per_step)]
                self.current_step = step
                loss, stats = 0.0, []
                for batch in batches:
                    loss += self._step(ddp_model, model, batch) / len(batches)
                    stats.append(self.step_stats)
                if len(batches) > 1:  # the gradients summed over the batches, made their mean
                    for p in params.values():
                        if p.grad is not None:
                            p.grad.div_(len(batches))
                    self.step_stats = {k: float(np.mean([s[k] for s in stats if k in s])) for k in stats[-1]}
                if c.optim.max_grad_norm > 0:
                    acc.clip_grad_norm_(list(params.values()), c.optim.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                if self.average is not None:
                    self.average.update(params, step)
                completed, done_since = step, done_since + 1
                snapshot = {"sampler": sampler.state_dict(), "rng": rng_state()}
                task = "+".join(b.task for b in batches)
                record = {"step": step, "loss": loss, "lr": scheduler.get_last_lr()[0], "task": task}
                record.update(self.step_stats)
                record["step_s"] = time.perf_counter() - step_tic
                self.history.append(record)
                if self.on_step is not None:
                    self.on_step(step=step, model=model, batch=batches[0], batches=batches, record=record)
                elapsed = time.perf_counter() - tic
                bar.set_postfix(loss=f"{loss:.4f}", task=task[:18], steps_s=f"{done_since / elapsed:.2f}")
                bar.update()
                if step % c.log_every == 0 or step == c.steps:
                    record["steps_per_s"] = done_since / elapsed
                    self._log(metrics, writer, record)
                if c.eval_every and step % c.eval_every == 0 and step != c.steps:
                    with self._averaged(params):
                        scores = self.evaluate_dev(model, dev)
                        self._remember_if_best(step, scores, params)
                    self._log(metrics, writer, {"step": step, **scores})
                    if "dev/mean_mrr@10" in scores:
                        self.dev_scores.append((step, scores["dev/mean_mrr@10"]))
                    if c.patience and plateaued([v for _, v in self.dev_scores], c.patience, c.min_delta):
                        final = scores
                        break
                if step % c.checkpoint_every == 0 and step != c.steps:
                    self._save(step, model, params, optimizer, scheduler, snapshot)
                if self._stop_requested:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            bar.close()
            if completed > start:
                path = self._save(completed, model, params, optimizer, scheduler, snapshot)
                print(f"\ninterrupted: checkpoint saved at {path}; continue with --resume", flush=True)
            raise
        finally:
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
        bar.close()
        self._save(completed, model, params, optimizer, scheduler, snapshot)
        if self.average is not None:  # from here on the model is the average: the final score and the saved model
            self.average.copy_to(params)
        if completed == c.steps:
            final = self.evaluate_dev(model, dev)
            self._log(metrics, writer, {"step": c.steps, **final})
        final = self._restore_best(params, final)
        self._summarise(completed, time.perf_counter() - tic + self._earlier_seconds(start), final)
        if metrics is not None:
            metrics.close()
        if writer is not None:
            writer.close()
        return self._finish(model)

    def _earlier_seconds(self, start: int) -> float:
        """Training time a resumed run spent before its checkpoint (from the steps' own timings)."""
        return sum(h.get("step_s", 0.0) for h in self.history if h["step"] <= start)

    def _averaged(self, params: dict[str, torch.nn.Parameter]):
        """The weight average in place of the weights (optim.ema_decay), or nothing changed without one."""
        return self.average.applied(params) if self.average is not None else contextlib.nullcontext()

    def _remember_if_best(self, step: int, scores: dict[str, float], params: dict[str, torch.nn.Parameter]) -> None:
        """Keep a CPU copy of the trainable weights (the average where there is one) at a new best dev score."""
        score = scores.get("dev/mean_mrr@10")
        if not self.config.restore_best or score is None:
            return
        if self.best is None or score > self.best["scores"]["dev/mean_mrr@10"]:
            weights = {n: p.detach().to("cpu", copy=True) for n, p in params.items()}
            self.best = {"step": step, "scores": scores, "weights": weights}

    def _restore_best(self, params: dict[str, torch.nn.Parameter], final: dict[str, float]) -> dict[str, float]:
        """The best remembered weights in place of the last ones when they scored higher; the scores that go with
        the weights the model is saved with."""
        best, self.best = self.best, None
        last = final.get("dev/mean_mrr@10")
        if best is None or last is None or best["scores"]["dev/mean_mrr@10"] <= last:
            return final
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(best["weights"][name].to(p.device, p.dtype))
        self.restored_step = best["step"]
        return best["scores"]

    def _summarise(self, completed: int, seconds: float, final: dict[str, float]) -> None:
        c = self.config
        best = max(self.dev_scores, key=lambda s: s[1]) if self.dev_scores else None
        self.summary = {
            "steps": completed,
            "max_steps": c.steps,
            "minutes": round(seconds / 60, 2),
            "stopped": "plateau" if completed < c.steps else "steps",
            "dev_mean_mrr@10": final.get("dev/mean_mrr@10"),
            "best_dev": None if best is None else {"step": best[0], "mean_mrr@10": best[1]},
            "restored_step": self.restored_step,
        }
        if self.accelerator.is_main_process:
            write_text(self.output / "summary.json", json.dumps(self.summary, indent=2) + "\n")

    def describe(self) -> str:
        """One line on how the run ended, for the command line."""
        s = self.summary
        if not s:
            return ""
        why = f"stopped at a plateau (patience {self.config.patience})" if s["stopped"] == "plateau" else "all steps"
        dev = "" if s["dev_mean_mrr@10"] is None else f", dev mean MRR@10 {s['dev_mean_mrr@10']:.3f}"
        if s.get("restored_step") is not None:
            dev += f" (the weights of step {s['restored_step']}, the best dev score)"
        return f"{s['steps']} of {s['max_steps']} steps in {s['minutes']:.1f} min ({why}){dev}"

    # ---------------------------------------------------------------- persistence
    def _find_checkpoint(self, resume: bool | str) -> Path | None:
        if not resume:
            return None
        if isinstance(resume, str) and resume not in ("auto", "latest"):
            path = Path(resume)
            if not (path / "state.json").is_file():
                raise ConfigError(f"--resume {path}: not a checkpoint folder (no state.json)")
            return path
        found = list_checkpoints(self.output / "checkpoints")
        if not found:
            logger.warning("--resume: no checkpoint under %s, starting from scratch", self.output / "checkpoints")
            return None
        return found[-1]

    def _restore(self, path, model, params, optimizer, scheduler, sampler) -> int:
        saved = load_checkpoint(path)
        saved_config = config_from_dict(saved["state"]["config"])
        differ = config_differences(saved_config, self.config)
        if differ:
            raise ConfigError(
                f"cannot resume from {path}: its config differs in {', '.join(differ)} "
                f"(only {', '.join(sorted(RESUMABLE_KEYS))} may change between a checkpoint and its resume)"
            )
        try:  # first, before any weight is touched: other tasks or wordings cannot continue exactly
            sampler.load_state_dict(saved["state"]["sampler"])
        except ValueError as err:
            raise ConfigError(f"cannot resume from {path}: {err}") from None
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(saved["trainable"][name].to(p.device, p.dtype))
        if self.average is not None:
            self.average.load_state_dict(saved["trainable"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        set_rng_state(saved["rng"])
        self.doc_cache = dict(saved["doc_cache"])
        self.history = list(saved["state"].get("history", []))
        self.dev_scores = [(int(a), float(b)) for a, b in saved["state"].get("dev_scores", [])]
        best = saved["state"].get("best")
        if best is not None and saved["best"] is not None:
            self.best = {"step": int(best["step"]), "scores": best["scores"], "weights": saved["best"]}
        logger.info("resumed from %s at step %d", path, saved["state"]["step"])
        return int(saved["state"]["step"])

    def _catch_ctrl_c(self):
        """First Ctrl-C: finish the step, save a checkpoint, leave. Second: leave at once."""
        self._stop_requested = False
        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum, frame):
            if self._stop_requested:
                raise KeyboardInterrupt
            self._stop_requested = True
            print("\nstopping after this step to save a checkpoint (Ctrl-C again to leave at once)", flush=True)

        return signal.signal(signal.SIGINT, handler)

    def _save(self, step, model, params, optimizer, scheduler, snapshot: dict) -> Path | None:
        self.accelerator.wait_for_everyone()
        if not self.accelerator.is_main_process:
            return None
        history = [h for h in self.history if h["step"] <= step]
        dev_scores = [list(s) for s in self.dev_scores if s[0] <= step]
        state = {
            "config": self.config.to_dict(),
            "sampler": snapshot["sampler"],
            "history": history,
            "dev_scores": dev_scores,
        }
        if self.best is not None:  # restore_best's pick so far, which a resumed run must not forget
            state["best"] = {"step": self.best["step"], "scores": self.best["scores"]}
        return save_checkpoint(
            self.output / "checkpoints",
            step,
            {n: p.data for n, p in params.items()} | (self.average.state_dict() if self.average is not None else {}),
            optimizer.state_dict(),
            scheduler.state_dict(),
            state,
            self.doc_cache if self.config.document_cache else None,
            keep=self.config.keep_checkpoints,
            rng=snapshot["rng"],
            best=None if self.best is None else self.best["weights"],
        )

    def _open_metrics(self, start: int):
        if not self.accelerator.is_main_process:
            return None
        path = self.output / "metrics.jsonl"
        kept = []
        if path.is_file():  # a resumed run rewrites what came after its checkpoint
            kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= start]
        write_text(path, "".join(line + "\n" for line in kept))
        return path.open("a")

    def _tensorboard(self):
        if not self.accelerator.is_main_process:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return None
        return SummaryWriter(str(self.output / "tensorboard"))

    def _log(self, metrics, writer, record: dict) -> None:
        if metrics is not None:
            metrics.write(json.dumps(record) + "\n")
            metrics.flush()
        if writer is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, float) and math.isfinite(value):
                    writer.add_scalar(key, value, record["step"])

    def _finish(self, model: PromptEmbedder) -> Path:
        acc = self.accelerator
        acc.wait_for_everyone()
        final = self.output / "model"
        if acc.is_main_process:
            c = self.config
            if c.method is Method.PROMPTEMBEDDER and c.prompting_training is PromptingTraining.LORA:
                model.prompting.model = model.prompting.model.merge_and_unload()
            model.eval()
            model.save_pretrained(final)
            plot_losses(self.history, self.output / "loss.png")
        acc.wait_for_everyone()
        return final


def plateaued(scores: list[float], patience: int, min_delta: float = 0.0) -> bool:
    """Whether the last ``patience`` scores all failed to beat the best before them by more than ``min_delta``.

    >>> plateaued([0.40, 0.45, 0.44, 0.45], patience=2)
    True
    >>> plateaued([0.40, 0.45, 0.44, 0.46], patience=2)
    False
    """
    if patience < 1 or len(scores) <= patience:
        return False
    best_before = max(scores[:-patience])
    return all(score <= best_before + min_delta for score in scores[-patience:])


def _mark_updated(optimizer: torch.optim.Optimizer, args, kwargs) -> None:
    for group in optimizer.param_groups:
        for p in group["params"]:
            torch.autograd.graph.increment_version(p)


def plot_losses(history: list[dict], path: Path) -> None:
    if not history:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.array([h["step"] for h in history])
    losses = np.array([h["loss"] for h in history])
    window = max(1, len(losses) // 20)
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, losses, alpha=0.3, label="loss")
    ax.plot(steps[window - 1 :], smooth, label=f"mean of {window}")
    ax.set_xlabel("step")
    ax.set_ylabel("InfoNCE loss")
    ax.legend()
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


__all__ = ["Trainer", "load_training_data", "plot_losses"]
