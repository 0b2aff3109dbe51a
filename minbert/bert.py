"""Our BERT encoder (Devlin et al. 2019): exact, fast, loads local Hugging Face checkpoints.

One switch, ``BertConfig.model_type = "mpnet"``, turns the same layer stack into MPNet (Song et
al. 2020), the encoder of all-mpnet-base-v2: no token-type embeddings, positions counted from
``pad_token_id + 1`` (padding rows take the padding position), and a bucketed relative-position
bias (``minbert/relative_position.py``) added to every layer's attention scores, one table
shared by all layers. ``state_dict()`` then uses the Hugging Face ``MPNetModel`` names
(``attention.attn.q`` ...), so its checkpoints load and ours load into transformers.

Same computation as Hugging Face's ``BertModel`` (post-LayerNorm transformer, exact-erf GELU,
absolute positions, tanh pooler) and the same parameter names in ``state_dict()``, so checkpoints
load directly and what we save loads into ``transformers``. Speed comes from:

- one fused QKV projection per layer (``attention.self.qkv``, one GEMM instead of three and one
  autocast copy of its input instead of three). Checkpoints still use HF's separate
  ``query``/``key``/``value`` names: a load pre-hook concatenates them, a state-dict hook splits
  them back;
- attention through ``F.scaled_dot_product_attention`` on strided views (no head transposes), with
  no mask at all when a batch has no padding, so SDPA may pick its flash kernel;
- position and segment-A embeddings added as broadcast rows instead of index lookups;
- under autocast, the residual stream between layers stays in bf16 (``residual_dtype="autocast"``,
  the default; LayerNorm statistics are still fp32 inside the kernel) instead of the fp32 that
  autocast gives transformers. ``residual_dtype="float32"`` reproduces transformers' autocast
  outputs exactly. Without autocast (fp32) both are the same exact computation.

Split like the CS224N skeleton: ``embed`` -> ``encode`` -> ``forward`` (+ pooler).

    model = BertModel.from_pretrained(resolve_backbone("minilm"))
    out = model(batch["input_ids"], batch["attention_mask"])
    out["last_hidden_state"]  # (B, T, H)
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import asdict, dataclass, fields, replace
from functools import partial
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from minbert.checkpoint import (
    CheckpointError,
    LoadReport,
    bert_to_mpnet_names,
    mpnet_to_bert_names,
    normalize_checkpoint_keys,
    read_checkpoint,
)
from minbert.relative_position import relative_position_bias

log = logging.getLogger(__name__)

HIDDEN_ACTIVATIONS = {
    "gelu": F.gelu,  # exact erf form, as HF "gelu"
    "gelu_new": partial(F.gelu, approximate="tanh"),
    "gelu_pytorch_tanh": partial(F.gelu, approximate="tanh"),
    "relu": F.relu,
}
ResidualDtype = Literal["autocast", "float32"]
# config.json model_type -> the prefix its architectures carry ("BertModel", "MPNetForMaskedLM")
MODEL_TYPES = {"bert": "Bert", "mpnet": "MPNet"}

# Attention kernels for batches whose shape changes from step to step (length-bucketed, dynamic
# padding). cuDNN attention, which SDPA may pick on Hopper GPUs, builds an execution plan for
# every new shape: 0.2-0.5 s per new shape on an H100 (measured), 10x slower training on bucketed
# batches. Flash and memory-efficient attention need no per-shape work.
DYNAMIC_SHAPE_BACKENDS = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                          SDPBackend.MATH]


def dynamic_shape_attention(device: torch.device) -> contextlib.AbstractContextManager:
    """Context for forward passes on batches of changing shapes: on CUDA, SDPA skips cuDNN
    attention (see DYNAMIC_SHAPE_BACKENDS); elsewhere nothing changes."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    return sdpa_kernel(DYNAMIC_SHAPE_BACKENDS)


@dataclass(frozen=True)
class BertConfig:
    """The architecture fields of a Hugging Face BERT or MPNet ``config.json`` (others ignored)."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    initializer_range: float = 0.02
    model_type: str = "bert"  # "mpnet": no token types, offset positions, relative bias
    relative_attention_num_buckets: int = 32  # MPNet only

    def __post_init__(self) -> None:
        if self.model_type not in MODEL_TYPES:
            raise ValueError(f"model_type {self.model_type!r} not supported; "
                             f"one of {list(MODEL_TYPES)}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of "
                             f"num_attention_heads {self.num_attention_heads}")
        if self.hidden_act not in HIDDEN_ACTIVATIONS:
            raise ValueError(f"hidden_act {self.hidden_act!r} not supported; "
                             f"one of {list(HIDDEN_ACTIVATIONS)}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> BertConfig:
        """Build from a HF config dict; rejects other architectures, names a missing key."""
        model_type = values.get("model_type", "bert")
        architectures = values.get("architectures") or []
        prefix = MODEL_TYPES.get(model_type)
        if prefix is None or any(not a.startswith(prefix) for a in architectures):
            raise CheckpointError(f"{source}: not a BERT checkpoint (model_type={model_type!r}, "
                                  f"architectures={architectures}); only model_type 'bert' or "
                                  f"'mpnet' loads")
        absolute = values.get("position_embedding_type", "absolute") == "absolute"
        if not absolute or values.get("is_decoder"):
            raise CheckpointError(f"{source}: only encoder BERT with absolute positions loads")
        required = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                    "intermediate_size")
        missing = [key for key in required if key not in values]
        if missing:
            raise CheckpointError(f"{source}: missing key(s) {missing}")
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})

    @classmethod
    def from_json(cls, path: str | Path) -> BertConfig:
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path.parent}: no config.json (expected {path})")
        return cls.from_dict(json.loads(path.read_text()), source=str(path))

    @property
    def is_mpnet(self) -> bool:
        return self.model_type == "mpnet"

    @property
    def max_tokens(self) -> int:
        """Longest input: MPNet's positions start after the padding index."""
        offset = self.pad_token_id + 1 if self.is_mpnet else 0
        return self.max_position_embeddings - offset

    def to_dict(self) -> dict:
        """A config.json that both this module and ``transformers`` read."""
        return {"architectures": [f"{MODEL_TYPES[self.model_type]}Model"], **asdict(self)}


class BertEmbeddings(nn.Module):
    """Word + position (+ token type, BERT only) embeddings, LayerNorm, dropout."""

    def __init__(self, config: BertConfig):
        super().__init__()
        h, pad = config.hidden_size, config.pad_token_id
        self.config = config
        self.word_embeddings = nn.Embedding(config.vocab_size, h, padding_idx=pad)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, h,
                                                padding_idx=pad if config.is_mpnet else None)
        if not config.is_mpnet:  # MPNet has no token types
            self.token_type_embeddings = nn.Embedding(config.type_vocab_size, h)
        self.LayerNorm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None) -> torch.Tensor:
        seq_len = input_ids.shape[1]
        if seq_len > self.config.max_tokens:
            raise ValueError(f"sequence length {seq_len} exceeds the {self.config.max_tokens} "
                             f"positions of the model (max_position_embeddings)")
        x = self.word_embeddings(input_ids)  # (B, T, H)
        if self.config.is_mpnet:  # token types ignored
            return self.dropout(self.LayerNorm(x + self.position_embeddings(
                mpnet_position_ids(input_ids, self.config.pad_token_id))))
        if token_type_ids is None:  # every token in segment A: add row 0, no lookup
            x = x + self.token_type_embeddings.weight[0]
        else:
            x = x + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings.weight[:seq_len]  # (T, H) broadcast over the batch
        return self.dropout(self.LayerNorm(x))


def mpnet_position_ids(input_ids: torch.Tensor, pad_token_id: int) -> torch.Tensor:
    """(B, T) ids -> MPNet/RoBERTa positions: real tokens count from pad_token_id + 1, padding
    tokens take pad_token_id (as transformers' ``create_position_ids_from_input_ids``)."""
    real = input_ids.ne(pad_token_id).long()
    return torch.cumsum(real, dim=1) * real + pad_token_id  # (B, T)


class BertSelfAttention(nn.Module):
    """Multi-head self-attention with one fused ``qkv`` Linear (rows: query, key, value)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        h = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_size = h // self.num_heads
        self.dropout_p = config.attention_probs_dropout_prob
        self.qkv = nn.Linear(h, 3 * h)
        # The named row blocks of qkv: lets LoRA target "query"/"key"/"value" (minbert/lora.py).
        self.qkv.output_blocks = {"query": (0, h), "key": (h, 2 * h), "value": (2 * h, 3 * h)}
        self.register_state_dict_post_hook(_split_qkv)
        self.register_load_state_dict_pre_hook(_fuse_qkv)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        batch, seq_len, hidden = x.shape
        qkv = self.qkv(x).view(batch, seq_len, 3, self.num_heads, self.head_size)
        # 3 x (B, T, nh, hs) -> (B, nh, T, hs): strided views, no copies. Unbinding dim 2 (not a
        # leading permuted dim) lets backward stack the q/k/v grads straight into qkv's layout.
        q, k, v = (t.transpose(1, 2) for t in qkv.unbind(2))
        dropout_p = self.dropout_p if self.training else 0.0
        if mask is not None and mask.is_floating_point():  # MPNet bias: SDPA wants q's dtype
            mask = mask.to(q.dtype)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        return y.transpose(1, 2).reshape(batch, seq_len, hidden)  # (B, nh, T, hs) -> (B, T, H)


def _split_qkv(module: nn.Module, state_dict: dict, prefix: str, local_metadata: dict) -> None:
    """state_dict() hook: qkv.{weight,bias} -> HF query/key/value.{weight,bias}."""
    for name in ("weight", "bias"):
        fused = state_dict.pop(f"{prefix}qkv.{name}", None)
        if fused is None:
            continue
        for part, tensor in zip(("query", "key", "value"), fused.chunk(3, dim=0), strict=True):
            # own storage: safetensors refuses tensors that share memory
            state_dict[f"{prefix}{part}.{name}"] = tensor.detach().clone()


def _fuse_qkv(module: nn.Module, state_dict: dict, prefix: str, *args) -> None:
    """load_state_dict() pre-hook: HF query/key/value.{weight,bias} -> qkv.{weight,bias}."""
    for name in ("weight", "bias"):
        keys = [f"{prefix}{part}.{name}" for part in ("query", "key", "value")]
        if all(key in state_dict for key in keys):
            state_dict[f"{prefix}qkv.{name}"] = torch.cat([state_dict.pop(key) for key in keys])


class BertAddNorm(nn.Module):
    """HF's BertSelfOutput / BertOutput: LayerNorm(dropout(dense(x)) + residual)."""

    def __init__(self, in_features: int, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(in_features, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.residual_dtype: ResidualDtype = "autocast"  # set by BertModel

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        delta = self.dropout(self.dense(x))
        device_type = delta.device.type
        if self.residual_dtype == "float32" or not torch.is_autocast_enabled(device_type):
            return self.LayerNorm(delta + residual)  # autocast would run this in fp32
        # Under autocast keep the residual stream in the autocast dtype (bf16): the sum and the
        # LayerNorm output are stored in bf16 while the kernel still computes its statistics in
        # fp32. Half the memory traffic of the fp32 stream, and the next Linear needs no cast.
        dtype = torch.get_autocast_dtype(device_type)
        norm = self.LayerNorm
        with torch.autocast(device_type, enabled=False):
            return F.layer_norm(delta.to(dtype) + residual.to(dtype), norm.normalized_shape,
                                norm.weight.to(dtype), norm.bias.to(dtype), norm.eps)


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertAddNorm(config.hidden_size, config)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return self.output(self.self(x, mask), x)


class BertIntermediate(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = HIDDEN_ACTIVATIONS[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(x))  # (B, T, intermediate_size)


class BertLayer(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertAddNorm(config.intermediate_size, config)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = self.attention(x, mask)
        return self.output(self.intermediate(x), x)


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))
        if config.is_mpnet:  # one (num_buckets, num_heads) bias table for all layers
            self.relative_attention_bias = nn.Embedding(config.relative_attention_num_buckets,
                                                        config.num_attention_heads)

    def attention_mask(self, seq_len: int, mask: torch.Tensor | None) -> torch.Tensor | None:
        """SDPA mask of every layer: the bool padding mask (B, 1, 1, T) or None for BERT; for
        MPNet the float relative-position bias (1, nh, T, T), -inf at padding keys (B, nh, T, T).
        """
        if not hasattr(self, "relative_attention_bias"):
            return mask
        bias = relative_position_bias(self.relative_attention_bias, seq_len)
        if mask is None:
            return bias
        return bias.masked_fill(~mask, float("-inf"))  # (B, nh, T, T)


class BertPooler(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden_states[:, 0]))  # [CLS] token -> (B, H)


def sdpa_mask(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """(B, T) 1=token 0=pad -> (B, 1, 1, T) bool "may attend" mask, or None without padding.

    None lets SDPA use its fastest kernel. The all-ones check reads the mask on the host, which a
    compiled graph cannot do: under torch.compile the mask is always passed.
    """
    if attention_mask is None:
        return None
    if not torch.compiler.is_compiling() and bool(attention_mask.all()):
        return None
    return attention_mask.bool()[:, None, None, :]


class BertModel(nn.Module):
    """BERT encoder + pooler with Hugging Face parameter names."""

    def __init__(self, config: BertConfig, *, residual_dtype: ResidualDtype = "autocast"):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config)
        self.load_report: LoadReport | None = None
        self.apply(self._init_weights)
        self.set_residual_dtype(residual_dtype)
        if config.is_mpnet:  # checkpoints and state_dict() speak transformers' MPNetModel names
            self.register_state_dict_post_hook(_to_mpnet_names)
            self.register_load_state_dict_pre_hook(_from_mpnet_names)

    def set_residual_dtype(self, residual_dtype: ResidualDtype) -> None:
        """Under autocast: "autocast" keeps the layers' residual stream in bf16 (fast, default);
        "float32" runs add + LayerNorm in fp32 exactly as autocast does for transformers.
        Without autocast both are the same fp32 computation."""
        if residual_dtype not in ("autocast", "float32"):
            raise ValueError(f"residual_dtype must be 'autocast' or 'float32', "
                             f"got {residual_dtype!r}")
        for module in self.modules():
            if isinstance(module, BertAddNorm):
                module.residual_dtype = residual_dtype

    def _init_weights(self, module: nn.Module) -> None:
        """HF's initialisation: N(0, initializer_range) weights, zero biases, unit LayerNorm."""
        std = self.config.initializer_range
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
        if isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def embed(self, input_ids: torch.Tensor,
              token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) token ids -> (B, T, H) embedding output (after LayerNorm and dropout)."""
        return self.embeddings(input_ids, token_type_ids)

    def encode(self, hidden_states: torch.Tensor,
               attention_mask: torch.Tensor | None) -> torch.Tensor:
        """(B, T, H) embedding output -> (B, T, H) last hidden state; mask (B, T) 1=token 0=pad."""
        mask = self.encoder.attention_mask(hidden_states.shape[1], sdpa_mask(attention_mask))
        for layer in self.encoder.layer:
            hidden_states = layer(hidden_states, mask)
        return hidden_states

    def forward(self, input_ids: torch.Tensor | None, attention_mask: torch.Tensor | None,
                token_type_ids: torch.Tensor | None = None,
                inputs_embeds: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """-> {"last_hidden_state": (B, T, H), "pooler_output": (B, H)}.

        ``inputs_embeds`` is an embedding *output* (as from ``embed``, e.g. perturbed by SMART);
        when given, ``input_ids`` is not used.
        """
        if inputs_embeds is None:
            if input_ids is None:
                raise ValueError("pass input_ids or inputs_embeds")
            inputs_embeds = self.embed(input_ids, token_type_ids)
        hidden = self.encode(inputs_embeds, attention_mask)
        return {"last_hidden_state": hidden, "pooler_output": self.pooler(hidden)}

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, hidden_dropout_prob: float | None = None,
                        attention_probs_dropout_prob: float | None = None) -> BertModel:
        """Load a local HF BERT or MPNet checkpoint directory (config.json + safetensors or .bin).

        The report of missing / unexpected / ignored keys is logged and kept in ``load_report``.
        """
        directory = Path(directory)
        if not directory.is_dir():
            raise CheckpointError(f"{directory}: backbone directory does not exist")
        config = BertConfig.from_json(directory / "config.json")
        overrides = {"hidden_dropout_prob": hidden_dropout_prob,
                     "attention_probs_dropout_prob": attention_probs_dropout_prob}
        config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
        model = cls(config)
        try:
            model.load_report = model.load_hf_state_dict(read_checkpoint(directory))
        except CheckpointError as error:
            raise CheckpointError(f"{directory}: {error}") from error
        return model

    def load_hf_state_dict(self, state_dict: dict[str, torch.Tensor]) -> LoadReport:
        """Load HF-named weights (with or without ``bert.``); report what did not fit."""
        state, ignored = normalize_checkpoint_keys(state_dict)
        expected = self.state_dict()  # HF names (qkv split by the hook)
        for key, tensor in state.items():
            if key in expected and tensor.shape != expected[key].shape:
                raise CheckpointError(f"checkpoint weight {key} has shape {tuple(tensor.shape)}, "
                                      f"the config.json gives {tuple(expected[key].shape)}")
        report = LoadReport(missing=tuple(sorted(expected.keys() - state.keys())),
                            unexpected=tuple(sorted(state.keys() - expected.keys())),
                            ignored=tuple(sorted(ignored)))
        self.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=False)
        if report.missing:
            log.warning("weights not in the checkpoint (left at init): %s", list(report.missing))
        if report.unexpected:
            log.warning("checkpoint keys not used by BertModel: %s", list(report.unexpected))
        if report.ignored:
            log.info("skipped %d head/buffer keys (e.g. %s)", len(ignored), report.ignored[0])
        return report

    def save_pretrained(self, directory: str | Path) -> None:
        """Write config.json + model.safetensors (HF names; loads into transformers.BertModel,
        or MPNetModel)."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(json.dumps(self.config.to_dict(), indent=2) + "\n")
        tensors = {k: v.contiguous() for k, v in self.state_dict().items()}
        save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})


def _to_mpnet_names(module: nn.Module, state_dict: dict, prefix: str, local_metadata: dict) -> None:
    """state_dict() hook of an MPNet BertModel: our BERT module names -> transformers' MPNet."""
    renamed = bert_to_mpnet_names(state_dict, prefix)
    state_dict.clear()
    state_dict.update(renamed)


def _from_mpnet_names(module: nn.Module, state_dict: dict, prefix: str, *args) -> None:
    """load_state_dict() pre-hook of an MPNet BertModel: transformers' MPNet names -> ours."""
    renamed = mpnet_to_bert_names(state_dict, prefix)
    state_dict.clear()
    state_dict.update(renamed)
