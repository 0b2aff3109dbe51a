"""Sentence embeddings from our BERT: mean pooling + L2 normalisation (Reimers & Gurevych 2019).

With the embedded MiniLM backbone this reproduces sentence-transformers' all-MiniLM-L6-v2
embeddings. The augmentation stage uses ``cosine`` as its semantic-drift filter.

    encoder = SentenceEncoder("minilm")
    encoder.cosine(["How do I learn Python?"], ["What is the best way to learn Python?"])
    # array([0.9...], dtype=float32)
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from minbert.backbone import encode_batch, load_tokenizer, resolve_backbone
from minbert.batching import sequential_batches
from minbert.bert import BertModel, dynamic_shape_attention
from minbert.heads import pool

log = logging.getLogger(__name__)


class SentenceEncoder:
    """Mean-pooled, L2-normalised sentence embeddings; eval mode, no gradients."""

    def __init__(self, backbone: str | Path = "minilm", max_length: int = 128,
                 batch_size: int = 64, device: str = "cpu"):
        directory = resolve_backbone(backbone)
        self.tokenizer = load_tokenizer(directory, max_length)
        self.model = BertModel.from_pretrained(directory).to(device).eval()
        self.batch_size = batch_size
        self.device = torch.device(device)

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        """(N,) texts -> (N, H) float32 unit vectors on the CPU, in the input order."""
        texts = list(texts)  # also accepts a pandas Series / tuple
        if not texts:
            return torch.zeros(0, self.model.config.hidden_size)
        order = np.argsort([-len(text) for text in texts], kind="stable")  # similar lengths batch
        embeddings = torch.empty(len(texts), self.model.config.hidden_size)
        batches = sequential_batches(len(texts), self.batch_size)
        for rows in tqdm(batches, desc="embedding", unit="batch", disable=len(batches) < 20):
            index = order[rows]
            batch = encode_batch(self.tokenizer, [texts[i] for i in index])
            batch = {key: value.to(self.device) for key, value in batch.items()}
            with dynamic_shape_attention(self.device):
                hidden = self.model(**batch)["last_hidden_state"]
            pooled = pool(hidden, batch["attention_mask"], "mean")
            embeddings[torch.from_numpy(index)] = F.normalize(pooled, dim=-1).float().cpu()
        return embeddings

    def cosine(self, a_texts: list[str], b_texts: list[str]) -> np.ndarray:
        """(N,) cosine similarity of each pair (a_texts[i], b_texts[i])."""
        a_texts, b_texts = list(a_texts), list(b_texts)
        if len(a_texts) != len(b_texts):
            raise ValueError(f"{len(a_texts)} first texts but {len(b_texts)} second texts")
        embeddings = self.encode(a_texts + b_texts)
        a, b = embeddings[:len(a_texts)], embeddings[len(a_texts):]
        return (a * b).sum(-1).numpy()
