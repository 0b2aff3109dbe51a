"""The multitask model: one shared BERT encoder and the three task heads.

    model = MultitaskModel(BertModel.from_pretrained(directory), heads_params)
    losses = model(batches, aux)          # {"sst": ..., "para": ..., "sts": ..., "simcse": ...}
    output, _ = model.task_output("sts", inputs)   # (B,) scores
    model.save("models/multitask", backbone_dir=directory, params=params_dict, max_length=64)
    model = MultitaskModel.load("models/multitask", device)

A saved model directory holds model.safetensors (encoder under `bert.` with Hugging Face
names, LoRA merged, plus the heads), config.json (the encoder's config), the tokenizer files,
params.json (the train params used) and heads.json (head settings and max_length).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import nn

from minbert.bert import BertConfig, BertModel
from minbert.data import is_cross
from minbert.heads import (
    HeadsParams,
    ParaphraseHead,
    SentimentHead,
    SimilarityHead,
    pool,
    task_loss,
)
from minbert.losses import mnrl_from_encoder, simcse_from_encoder
from minbert.params import from_dict
from minbert.smart import SmartSettings, with_smart

TASK_HEADS = {"sst": "sst_head", "para": "para_head", "sts": "sts_head"}
SMART_KIND = {"sst": "classification", "para": "classification", "sts": "regression"}
TOKENIZER_FILES = ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json")


@dataclass(frozen=True)
class AuxSettings:
    """Per-step extras of the training forward pass (None / 0 = off)."""

    smart: SmartSettings | None = None
    smart_tasks: tuple[str, ...] = tuple(TASK_HEADS)
    simcse_temperature: float = 0.05
    mnrl_scale: float = 20.0


class MultitaskModel(nn.Module):
    def __init__(self, bert: BertModel, heads: HeadsParams) -> None:
        super().__init__()
        self.bert, self.heads = bert, heads
        hidden, drop = bert.config.hidden_size, heads.dropout
        self.sst_head = SentimentHead(hidden, heads.sst.hidden_sizes, heads.sst.activation, drop)
        p, s = heads.para, heads.sts
        self.para_head = ParaphraseHead(
            hidden, p.kind, p.product, p.hidden_sizes, p.activation, drop
        )
        self.sts_head = SimilarityHead(hidden, s.kind, s.scale, s.hidden_sizes, s.activation, drop)

    def embed_sentences(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, T) token ids -> (B, H) pooled sentence embeddings."""
        embeddings = self.bert.embed(inputs["input_ids"], inputs["token_type_ids"])
        hidden = self.bert.encode(embeddings, inputs["attention_mask"])
        return pool(hidden, inputs["attention_mask"], self.heads.pooling)

    def output_from_embeddings(
        self, task: str, embeddings: torch.Tensor, inputs: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """(B', T, H) embedding output -> the task head's raw output (logits or scores)."""
        mask = inputs["attention_mask"]
        pooled = pool(self.bert.encode(embeddings, mask), mask, self.heads.pooling)
        if task == "sst":
            return self.sst_head(pooled)
        if is_cross(task, self.heads.para.kind):
            return self.para_head(pooled)
        u, v = pooled.chunk(2)  # (B, H) each: first sentences, then second sentences
        return self.para_head(u, v) if task == "para" else self.sts_head(u, v)

    def task_output(
        self, task: str, inputs: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (head output, embedding output); the latter is what SMART perturbs."""
        embeddings = self.bert.embed(inputs["input_ids"], inputs["token_type_ids"])
        return self.output_from_embeddings(task, embeddings, inputs), embeddings

    def forward(self, batches: dict[str, dict], aux: AuxSettings) -> dict[str, torch.Tensor]:
        """Training losses of one step, before the task weights: one per task batch and
        auxiliary batch. A batch may carry per-row loss `weights` (B,) (synthetic rows) and, for
        SimCSE / MNRL, source `groups` (B,): rows of one source are not each other's negatives."""
        losses = {}
        for task in (t for t in TASK_HEADS if t in batches):
            inputs, labels = batches[task]["inputs"], batches[task]["labels"]
            output, embeddings = self.task_output(task, inputs)
            loss = task_loss(task, output, labels, batches[task].get("weights"))
            if aux.smart is not None and task in aux.smart_tasks:
                forward_fn = partial(self.output_from_embeddings, task, inputs=inputs)
                loss = with_smart(loss, forward_fn, embeddings, output, SMART_KIND[task], aux.smart)
            losses[task] = loss
        if "simcse" in batches:  # "groups": sentences of one source are not negatives
            simcse = batches["simcse"]
            losses["simcse"] = simcse_from_encoder(
                self.embed_sentences, simcse["inputs"], aux.simcse_temperature,
                simcse.get("groups"),
            )
        if "mnrl" in batches:
            mnrl = batches["mnrl"]
            losses["mnrl"] = mnrl_from_encoder(
                self.embed_sentences, mnrl["inputs"], aux.mnrl_scale,
                mnrl.get("groups"), mnrl.get("weights"),
            )
        return losses

    def shared_and_head_parameters(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """Trainable parameters of the encoder (shared by all tasks) and of the heads."""
        shared = [
            p for n, p in self.named_parameters() if n.startswith("bert.") and p.requires_grad
        ]
        heads = [
            p for n, p in self.named_parameters() if not n.startswith("bert.") and p.requires_grad
        ]
        return shared, heads

    def save(self, directory: str | Path, *, backbone_dir: Path, params: dict, max_length: int):
        """Write the model directory (see module docstring); LoRA adapters are merged first."""
        from safetensors.torch import save_file

        from minbert.lora import merge_lora

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        merged = copy.deepcopy(self).cpu()
        merge_lora(merged.bert)
        state = {k: v.detach().contiguous() for k, v in merged.state_dict().items()}
        save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
        _write_json(directory / "config.json", merged.bert.config.to_dict())
        heads = {"max_length": max_length, "heads": dataclasses.asdict(self.heads)}
        _write_json(directory / "heads.json", heads)
        _write_json(directory / "params.json", params)
        for name in TOKENIZER_FILES:
            if (Path(backbone_dir) / name).is_file():
                shutil.copyfile(Path(backbone_dir) / name, directory / name)

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> MultitaskModel:
        """A saved model directory -> the model in eval mode; `.max_length` is set."""
        from safetensors.torch import load_file

        directory = Path(directory)
        for name in ("model.safetensors", "config.json", "heads.json", "vocab.txt"):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"{directory}: missing {name} (not a saved model)")
        info = json.loads((directory / "heads.json").read_text())
        heads = from_dict(HeadsParams, info["heads"], where=f"{directory}/heads.json:heads")
        model = cls(BertModel(BertConfig.from_json(directory / "config.json")), heads)
        model.load_state_dict(load_file(str(directory / "model.safetensors")), strict=True)
        model.max_length = int(info["max_length"])
        return model.to(device).eval()


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
