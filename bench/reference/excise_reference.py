"""Plain-PyTorch peer of Excise's UNet2DConditionModel, for speed and parity comparisons.

Written from the architecture description of diffusers v0.31's ``UNet2DConditionModel`` (the
subset Excise builds: CrossAttnDownBlock2D / DownBlock2D, UNetMidBlock2DCrossAttn,
CrossAttnUpBlock2D / UpBlock2D, positional timesteps, GEGLU transformer blocks). It does not import
diffusers or the ``safetensors`` package; parameter names and ``state_dict()`` order are diffusers'
own, so diffusers checkpoints load with ``strict=True`` and the C# model's files load here.

Contents:

* ``read_safetensors`` / ``write_safetensors`` / ``load_file`` / ``save_file``: a minimal
  safetensors reader and writer (F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL).
* ``UNet2DConditionModel(config)``: the model, from a diffusers config dict (or the golden files'
  wrapper holding it under ``"config"``).
* ``load_weights(model, path, strict=True)``.

Runs with Debian's ``/usr/bin/python3`` and ``python3-torch`` 1.13.1 (no numpy tricks, no diffusers).
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
import sys
from collections import OrderedDict
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

# --------------------------------------------------------------------------------------------
# safetensors
# --------------------------------------------------------------------------------------------

_DTYPES: Dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
_DTYPE_NAMES: Dict[torch.dtype, str] = {v: k for k, v in _DTYPES.items()}
_ITEMSIZE: Dict[str, int] = {k: torch.empty(0, dtype=v).element_size() for k, v in _DTYPES.items()}

# The official reader refuses headers above 100 MB; so do we (a corrupt length would otherwise
# make us try to allocate it).
_MAX_HEADER_BYTES = 100 * 1024 * 1024


def _require_little_endian() -> None:
    if sys.byteorder != "little":
        raise RuntimeError("this safetensors reader/writer assumes a little-endian host")


def _no_duplicate_keys(pairs: List[Tuple[str, object]]) -> dict:
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"safetensors header: duplicate key {key!r}")
        result[key] = value
    return result


def parse_safetensors(data: bytes, source: str = "<bytes>") -> Tuple["OrderedDict[str, torch.Tensor]", Dict[str, str]]:
    """Parses a whole safetensors file held in memory.

    Returns ``(tensors, metadata)``: tensors in header order (the writer's order, i.e. ``state_dict()``
    order for weight files) and the ``__metadata__`` string map (empty if absent).
    Raises ``ValueError`` naming the problem for any malformed input.
    """
    _require_little_endian()
    if len(data) < 8:
        raise ValueError(f"{source}: not a safetensors file ({len(data)} bytes; the 8-byte header length is missing)")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > _MAX_HEADER_BYTES:
        raise ValueError(f"{source}: header length {header_len} exceeds the {_MAX_HEADER_BYTES}-byte limit")
    if 8 + header_len > len(data):
        raise ValueError(f"{source}: header length {header_len} runs past the end of the file ({len(data)} bytes)")
    try:
        header_text = data[8:8 + header_len].decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{source}: header is not UTF-8: {e}") from None
    if not header_text.lstrip().startswith("{"):
        raise ValueError(f"{source}: header is not a JSON object")
    try:
        header = json.loads(header_text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as e:
        raise ValueError(f"{source}: header is not valid JSON: {e}") from None
    except ValueError as e:  # duplicate keys
        raise ValueError(f"{source}: {e}") from None
    if not isinstance(header, dict):
        raise ValueError(f"{source}: header is not a JSON object")

    metadata: Dict[str, str] = {}
    raw_meta = header.pop("__metadata__", None)
    if raw_meta is not None:
        if not isinstance(raw_meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw_meta.items()):
            raise ValueError(f"{source}: __metadata__ must map strings to strings")
        metadata = dict(raw_meta)

    payload = memoryview(data)[8 + header_len:]
    spans: List[Tuple[int, int, str]] = []
    tensors: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for name, entry in header.items():
        if not isinstance(entry, dict):
            raise ValueError(f"{source}: entry {name!r} is not an object")
        extra = set(entry) - {"dtype", "shape", "data_offsets"}
        if extra:
            raise ValueError(f"{source}: entry {name!r} has unknown fields {sorted(extra)}")
        dtype_name = entry.get("dtype")
        if dtype_name not in _DTYPES:
            raise ValueError(f"{source}: entry {name!r} has unsupported dtype {dtype_name!r} (known: {', '.join(_DTYPES)})")
        shape = entry.get("shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise ValueError(f"{source}: entry {name!r} has an invalid shape {shape!r}")
        offsets = entry.get("data_offsets")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
            raise ValueError(f"{source}: entry {name!r} has invalid data_offsets {offsets!r}")
        begin, end = offsets
        if not 0 <= begin <= end <= len(payload):
            raise ValueError(f"{source}: entry {name!r} data_offsets {offsets} lie outside the {len(payload)}-byte payload")
        numel = math.prod(shape)
        if end - begin != numel * _ITEMSIZE[dtype_name]:
            raise ValueError(f"{source}: entry {name!r} holds {end - begin} bytes but {dtype_name} {shape} needs {numel * _ITEMSIZE[dtype_name]}")
        spans.append((begin, end, name))
        dtype = _DTYPES[dtype_name]
        if numel == 0:
            tensors[name] = torch.empty(shape, dtype=dtype)
        else:
            # bytearray: writable, so frombuffer does not warn; clone() gives an aligned, owned tensor.
            buf = bytearray(payload[begin:end])
            tensors[name] = torch.frombuffer(buf, dtype=dtype).reshape(shape).clone()

    # The format forbids holes and overlaps: entries must tile the payload exactly.
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            kind = "overlaps the previous entry" if begin < position else f"leaves a gap at byte {position}"
            raise ValueError(f"{source}: entry {name!r} (data_offsets [{begin}, {end}]) {kind}")
        position = end
    if position != len(payload):
        raise ValueError(f"{source}: payload has {len(payload) - position} trailing bytes not covered by any entry")
    return tensors, metadata


def read_safetensors(path: str) -> Tuple["OrderedDict[str, torch.Tensor]", Dict[str, str]]:
    with open(path, "rb") as f:
        data = f.read()
    return parse_safetensors(data, source=path)


def load_file(path: str) -> "OrderedDict[str, torch.Tensor]":
    return read_safetensors(path)[0]


def serialize_safetensors(tensors: "Dict[str, torch.Tensor]", metadata: Optional[Dict[str, str]] = None) -> bytes:
    _require_little_endian()
    header: "OrderedDict[str, object]" = OrderedDict()
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise ValueError("metadata must map strings to strings")
        header["__metadata__"] = dict(metadata)
    chunks: List[bytes] = []
    offset = 0
    for name, tensor in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError(f"invalid tensor name {name!r}")
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"{name!r} is not a tensor")
        if tensor.dtype not in _DTYPE_NAMES:
            raise ValueError(f"{name!r}: dtype {tensor.dtype} is not supported")
        t = tensor.detach().to("cpu").contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() > 0 else b""
        header[name] = {"dtype": _DTYPE_NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)
    return struct.pack("<Q", len(header_bytes)) + header_bytes + b"".join(chunks)


def write_safetensors(path: str, tensors: "Dict[str, torch.Tensor]", metadata: Optional[Dict[str, str]] = None) -> None:
    """Writes ``tensors`` (in their iteration order) atomically: a temporary file, then rename."""
    data = serialize_safetensors(tensors, metadata)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


save_file = write_safetensors

# --------------------------------------------------------------------------------------------
# config
# --------------------------------------------------------------------------------------------

CROSS_DOWN, PLAIN_DOWN = "CrossAttnDownBlock2D", "DownBlock2D"
CROSS_UP, PLAIN_UP = "CrossAttnUpBlock2D", "UpBlock2D"
CROSS_MID = "UNetMidBlock2DCrossAttn"

_DEFAULTS = {
    "sample_size": None,
    "in_channels": 4,
    "out_channels": 4,
    "center_input_sample": False,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "down_block_types": [CROSS_DOWN, CROSS_DOWN, CROSS_DOWN, PLAIN_DOWN],
    "mid_block_type": CROSS_MID,
    "up_block_types": [PLAIN_UP, CROSS_UP, CROSS_UP, CROSS_UP],
    "only_cross_attention": False,
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "downsample_padding": 1,
    "mid_block_scale_factor": 1,
    "dropout": 0.0,
    "act_fn": "silu",
    "norm_num_groups": 32,
    "norm_eps": 1e-5,
    "cross_attention_dim": 1280,
    "transformer_layers_per_block": 1,
    "reverse_transformer_layers_per_block": None,
    "attention_head_dim": 8,
    "num_attention_heads": None,
    "use_linear_projection": False,
    "time_embedding_dim": None,
}

# Keys that would change the architecture into something this module (and Excise) does not build,
# with the values accepted for them. Absent keys take diffusers' default, which is accepted.
_FIXED = {
    "center_input_sample": (False, None),
    "mid_block_only_cross_attention": (None, False),
    "dual_cross_attention": (False, None),
    "upcast_attention": (False, None),
    "class_embeddings_concat": (False, None),
    "resnet_skip_time_act": (False, None),
    "resnet_time_scale_shift": ("default",),
    "time_embedding_type": ("positional",),
    "attention_type": ("default",),
    "class_embed_type": (None,),
    "num_class_embeds": (None,),
    "addition_embed_type": (None,),
    "addition_time_embed_dim": (None,),
    "projection_class_embeddings_input_dim": (None,),
    "encoder_hid_dim": (None,),
    "encoder_hid_dim_type": (None,),
    "time_embedding_act_fn": (None,),
    "timestep_post_act": (None,),
    "time_cond_proj_dim": (None,),
    "cross_attention_norm": (None,),
    "act_fn": ("silu",),
    "mid_block_type": (CROSS_MID,),
    "downsample_padding": (1,),
}
_FIXED_NUMBERS = {"mid_block_scale_factor": 1.0, "resnet_out_scale_factor": 1.0, "dropout": 0.0,
                  "conv_in_kernel": 3, "conv_out_kernel": 3}


def _per_block(value, n: int, key: str) -> list:
    """diffusers broadcasts an int to every down block; a list must have one entry per block."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"config {key!r}: has {len(value)} entries; give one value or one per block ({n})")
        return list(value)
    return [value] * n


class ResolvedConfig:
    """The per-block numbers diffusers' constructor derives from the raw config."""

    def __init__(self, raw: dict):
        cfg = dict(raw.get("config", raw)) if isinstance(raw.get("config"), dict) else dict(raw)
        if cfg.get("_class_name", "UNet2DConditionModel") != "UNet2DConditionModel":
            raise ValueError(f"config '_class_name': {cfg['_class_name']!r} is not supported")
        for key, allowed in _FIXED.items():
            if key in cfg and cfg[key] not in allowed:
                raise ValueError(f"config {key!r}: {cfg[key]!r} is not supported (only {allowed[0]!r})")
        for key, expected in _FIXED_NUMBERS.items():
            if key in cfg and cfg[key] is not None and float(cfg[key]) != expected:
                raise ValueError(f"config {key!r}: {cfg[key]!r} is not supported (only {expected})")
        only_cross = cfg.get("only_cross_attention", False)
        if only_cross not in (False, None) and not (isinstance(only_cross, list) and not any(only_cross)):
            raise ValueError("config 'only_cross_attention': only false is supported")
        merged = dict(_DEFAULTS)
        merged.update({k: v for k, v in cfg.items() if v is not None or k in ("num_attention_heads", "time_embedding_dim",
                                                                            "reverse_transformer_layers_per_block")})
        for key in ("mid_block_type", "norm_num_groups"):
            if key in cfg and cfg[key] is None:
                raise ValueError(f"config {key!r}: null is not supported (this part is always built)")
        self.raw = merged

        self.sample_size = merged["sample_size"]
        self.in_channels = int(merged["in_channels"])
        self.out_channels = int(merged["out_channels"])
        self.block_out_channels = [int(c) for c in merged["block_out_channels"]]
        n = len(self.block_out_channels)
        self.down_block_types = list(merged["down_block_types"])
        self.up_block_types = list(merged["up_block_types"])
        if len(self.down_block_types) != n or len(self.up_block_types) != n:
            raise ValueError("config: down_block_types, up_block_types and block_out_channels must have the same length")
        for t in self.down_block_types:
            if t not in (CROSS_DOWN, PLAIN_DOWN):
                raise ValueError(f"config 'down_block_types': {t!r} is not supported")
        for t in self.up_block_types:
            if t not in (CROSS_UP, PLAIN_UP):
                raise ValueError(f"config 'up_block_types': {t!r} is not supported")
        self.flip_sin_to_cos = bool(merged["flip_sin_to_cos"])
        self.freq_shift = merged["freq_shift"]
        self.norm_num_groups = int(merged["norm_num_groups"])
        self.norm_eps = float(merged["norm_eps"])
        self.use_linear_projection = bool(merged["use_linear_projection"])
        self.layers_per_block = [int(x) for x in _per_block(merged["layers_per_block"], n, "layers_per_block")]
        self.cross_attention_dim = [int(x) for x in _per_block(merged["cross_attention_dim"], n, "cross_attention_dim")]
        # diffusers' naming quirk: `num_attention_heads = num_attention_heads or attention_head_dim`, i.e.
        # attention_head_dim given alone is the NUMBER OF HEADS; the per-head width is channels // heads.
        heads = merged["num_attention_heads"] or merged["attention_head_dim"]
        self.num_attention_heads = [int(x) for x in _per_block(heads, n, "num_attention_heads")]
        tlpb = merged["transformer_layers_per_block"]
        self.transformer_layers_per_block = _per_block(tlpb, n, "transformer_layers_per_block")
        rev = merged["reverse_transformer_layers_per_block"]
        if rev is None:
            self.reverse_transformer_layers_per_block = list(reversed(self.transformer_layers_per_block))
        else:
            self.reverse_transformer_layers_per_block = list(rev)
        self.time_embed_dim = int(merged["time_embedding_dim"] or self.block_out_channels[0] * 4)
        self.timestep_input_dim = self.block_out_channels[0]
        for c in self.block_out_channels:
            if c % self.norm_num_groups:
                raise ValueError(f"config 'norm_num_groups': {self.norm_num_groups} groups do not divide {c} channels")


# --------------------------------------------------------------------------------------------
# building blocks (names = diffusers' attribute names, so state_dict keys match)
# --------------------------------------------------------------------------------------------


def timestep_features(timesteps: torch.Tensor, dim: int, flip_sin_to_cos: bool, freq_shift: float,
                      max_period: float = 10000.0) -> torch.Tensor:
    """diffusers ``get_timestep_embedding`` (scale 1), float32 throughout, same op order."""
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(0, half, dtype=torch.float32, device=timesteps.device)
    exponent = exponent / (half - freq_shift)
    freqs = torch.exp(exponent)
    angles = timesteps[:, None].float() * freqs[None, :]
    emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    if dim % 2 == 1:
        emb = F.pad(emb, (0, 1, 0, 0))
    return emb


class Timesteps(nn.Module):
    def __init__(self, dim: int, flip_sin_to_cos: bool, freq_shift: float):
        super().__init__()
        self.dim, self.flip_sin_to_cos, self.freq_shift = dim, flip_sin_to_cos, freq_shift

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        return timestep_features(timesteps, self.dim, self.flip_sin_to_cos, self.freq_shift)


class TimestepEmbedding(nn.Module):
    def __init__(self, in_features: int, embed_dim: int):
        super().__init__()
        self.linear_1 = nn.Linear(in_features, embed_dim)
        self.act = nn.SiLU()
        self.linear_2 = nn.Linear(embed_dim, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(x)))


class ResnetBlock2D(nn.Module):
    """time_embedding_norm 'default', output_scale_factor 1, dropout 0."""

    def __init__(self, in_channels: int, out_channels: int, temb_channels: int, groups: int, eps: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=eps, affine=True)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=1, padding=1)
        self.time_emb_proj = nn.Linear(temb_channels, out_channels)
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=eps, affine=True)
        self.dropout = nn.Dropout(0.0)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1)
        self.nonlinearity = nn.SiLU()
        self.conv_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.nonlinearity(self.norm1(x)))
        # diffusers applies SiLU to temb inside every resnet (same value each time).
        t = self.time_emb_proj(self.nonlinearity(temb))[:, :, None, None]
        h = self.norm2(h + t)
        h = self.conv2(self.dropout(self.nonlinearity(h)))
        shortcut = self.conv_shortcut(x) if self.conv_shortcut is not None else x
        return shortcut + h  # / output_scale_factor (1.0): exact, omitted


class Attention(nn.Module):
    """diffusers ``Attention`` with the classic ``AttnProcessor``.

    torch 1.13 has no ``F.scaled_dot_product_attention`` (it arrived in 2.0), so this is the explicit
    path diffusers itself takes on torch 1.13: scores = baddbmm(mask or 0, q, kᵀ, alpha=dim_head**-0.5),
    softmax over keys, bmm with v. Without a mask diffusers passes an *uninitialised* buffer with
    beta=0, and torch 1.13's small-problem CPU kernel (head_dim*q_len*kv_len < 400) multiplies the
    uninitialised result by 0 instead of ignoring it (pytorch#80588/#96037): NaN when the heap holds
    NaN bits. We run baddbmm_ in place on a zeros tensor, which is bit-identical to the intended
    softmax(scale*q*kᵀ)*v (check_golden.py reproduces the golden data bit for bit on reference BLAS).
    Excise's C# side uses libtorch 2.x SDPA (same maths, different rounding order).
    """

    def __init__(self, query_dim: int, cross_attention_dim: Optional[int], heads: int, dim_head: int):
        super().__init__()
        inner = heads * dim_head
        context_dim = cross_attention_dim if cross_attention_dim is not None else query_dim
        self.heads = heads
        self.scale = dim_head ** -0.5
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(inner, query_dim, bias=True), nn.Dropout(0.0)])

    def _to_batch(self, x: torch.Tensor) -> torch.Tensor:  # [B, N, H*d] -> [B*H, N, d]
        b, n, dim = x.shape
        return x.reshape(b, n, self.heads, dim // self.heads).permute(0, 2, 1, 3).reshape(b * self.heads, n, dim // self.heads)

    def _from_batch(self, x: torch.Tensor) -> torch.Tensor:  # [B*H, N, d] -> [B, N, H*d]
        bh, n, d = x.shape
        b = bh // self.heads
        return x.reshape(b, self.heads, n, d).permute(0, 2, 1, 3).reshape(b, n, d * self.heads)

    def forward(self, hidden: torch.Tensor, context: Optional[torch.Tensor] = None,
                mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``mask``: None, or an additive bias [B, 1, T] (0 keep, -10000 pad) as the UNet prepares it."""
        context = hidden if context is None else context
        q = self._to_batch(self.to_q(hidden))
        k = self._to_batch(self.to_k(context))
        v = self._to_batch(self.to_v(context))
        if mask is None:
            # In place on explicit zeros: the accumulator torch 1.13 scales by beta=0 is then zeros, not
            # garbage. (Out-of-place baddbmm(zeros, ..., beta=0) is NOT enough: beta=0 skips copying the
            # input into the fresh, uninitialised result buffer, and the bug scales that buffer.)
            scores = torch.zeros(q.shape[0], q.shape[1], k.shape[1], dtype=q.dtype, device=q.device)
            scores.baddbmm_(q, k.transpose(-1, -2), beta=0, alpha=self.scale)
        else:
            # prepare_attention_mask: [B, 1, T] -> [B*heads, 1, T] (batch-major, like _to_batch).
            # beta=1, so the mask is copied into the result first: no uninitialised memory involved.
            base = mask.repeat_interleave(self.heads, dim=0)
            scores = torch.baddbmm(base, q, k.transpose(-1, -2), beta=1, alpha=self.scale)
        probs = scores.softmax(dim=-1)
        out = self._from_batch(torch.bmm(probs, v))
        out = self.to_out[1](self.to_out[0](out))
        return out  # / rescale_output_factor (1.0): exact, omitted


class GEGLU(nn.Module):
    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, gate = self.proj(x).chunk(2, dim=-1)
        return a * F.gelu(gate)  # exact erf GELU (approximate="none")


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        inner = dim * mult
        self.net = nn.ModuleList([GEGLU(dim, inner), nn.Dropout(0.0), nn.Linear(inner, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self.net:
            x = module(x)
        return x


class BasicTransformerBlock(nn.Module):
    """norm_type 'layer_norm' (eps 1e-5, affine), self-attn, cross-attn, GEGLU feed-forward."""

    def __init__(self, dim: int, heads: int, dim_head: int, cross_attention_dim: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5, elementwise_affine=True)
        self.attn1 = Attention(dim, None, heads, dim_head)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5, elementwise_affine=True)
        self.attn2 = Attention(dim, cross_attention_dim, heads, dim_head)
        self.norm3 = nn.LayerNorm(dim, eps=1e-5, elementwise_affine=True)
        self.ff = FeedForward(dim)

    def forward(self, h: torch.Tensor, context: torch.Tensor, context_mask: Optional[torch.Tensor]) -> torch.Tensor:
        h = self.attn1(self.norm1(h)) + h
        h = self.attn2(self.norm2(h), context, context_mask) + h
        h = self.ff(self.norm3(h)) + h
        return h


class Transformer2DModel(nn.Module):
    """Continuous input: GroupNorm (eps 1e-6!), proj_in, blocks over H*W tokens, proj_out, residual."""

    def __init__(self, heads: int, dim_head: int, in_channels: int, num_layers: int, cross_attention_dim: int,
                 groups: int, use_linear_projection: bool):
        super().__init__()
        inner = heads * dim_head
        self.use_linear_projection = use_linear_projection
        self.norm = nn.GroupNorm(groups, in_channels, eps=1e-6, affine=True)
        self.proj_in = nn.Linear(in_channels, inner) if use_linear_projection else nn.Conv2d(in_channels, inner, 1)
        self.transformer_blocks = nn.ModuleList(
            [BasicTransformerBlock(inner, heads, dim_head, cross_attention_dim) for _ in range(num_layers)])
        self.proj_out = nn.Linear(inner, in_channels) if use_linear_projection else nn.Conv2d(inner, in_channels, 1)

    def forward(self, x: torch.Tensor, context: torch.Tensor, context_mask: Optional[torch.Tensor]) -> torch.Tensor:
        b, _, height, width = x.shape
        residual = x
        h = self.norm(x)
        if not self.use_linear_projection:
            h = self.proj_in(h)
            inner = h.shape[1]
            h = h.permute(0, 2, 3, 1).reshape(b, height * width, inner)
        else:
            inner = h.shape[1]
            h = h.permute(0, 2, 3, 1).reshape(b, height * width, inner)
            h = self.proj_in(h)
        for block in self.transformer_blocks:
            h = block(h, context, context_mask)
        if not self.use_linear_projection:
            h = h.reshape(b, height, width, -1).permute(0, 3, 1, 2).contiguous()
            h = self.proj_out(h)
        else:
            h = self.proj_out(h)
            h = h.reshape(b, height, width, -1).permute(0, 3, 1, 2).contiguous()
        return h + residual


class Downsample2D(nn.Module):
    def __init__(self, channels: int, padding: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample2D(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, output_size: Optional[Sequence[int]] = None) -> torch.Tensor:
        if x.shape[0] >= 64:
            x = x.contiguous()
        if output_size is None:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        else:
            x = F.interpolate(x, size=tuple(int(s) for s in output_size), mode="nearest")
        return self.conv(x)


class DownBlock(nn.Module):
    """CrossAttnDownBlock2D (has ``attentions``) or DownBlock2D. Attribute order = diffusers' state_dict order."""

    def __init__(self, cross: bool, in_channels: int, out_channels: int, temb: int, num_layers: int,
                 transformer_layers, heads: int, cross_attention_dim: int, groups: int, eps: float,
                 use_linear_projection: bool, add_downsample: bool, downsample_padding: int):
        super().__init__()
        layers_per = _per_block(transformer_layers, num_layers, "transformer_layers_per_block")
        resnets, attentions = [], []
        for i in range(num_layers):
            resnets.append(ResnetBlock2D(in_channels if i == 0 else out_channels, out_channels, temb, groups, eps))
            if cross:
                attentions.append(Transformer2DModel(heads, out_channels // heads, out_channels, int(layers_per[i]),
                                                     cross_attention_dim, groups, use_linear_projection))
        self.attentions = nn.ModuleList(attentions) if cross else None
        self.resnets = nn.ModuleList(resnets)
        self.downsamplers = nn.ModuleList([Downsample2D(out_channels, downsample_padding)]) if add_downsample else None

    def forward(self, h, temb, context, context_mask):
        skips = []
        for i, resnet in enumerate(self.resnets):
            h = resnet(h, temb)
            if self.attentions is not None:
                h = self.attentions[i](h, context, context_mask)
            skips.append(h)
        if self.downsamplers is not None:
            for d in self.downsamplers:
                h = d(h)
            skips.append(h)
        return h, skips


class MidBlock(nn.Module):
    """UNetMidBlock2DCrossAttn with num_layers 1: resnet, (transformer, resnet)."""

    def __init__(self, channels: int, temb: int, transformer_layers, heads: int, cross_attention_dim: int,
                 groups: int, eps: float, use_linear_projection: bool, num_layers: int = 1):
        super().__init__()
        layers_per = _per_block(transformer_layers, num_layers, "transformer_layers_per_block")
        resnets = [ResnetBlock2D(channels, channels, temb, groups, eps)]
        attentions = []
        for i in range(num_layers):
            attentions.append(Transformer2DModel(heads, channels // heads, channels, int(layers_per[i]),
                                                 cross_attention_dim, groups, use_linear_projection))
            resnets.append(ResnetBlock2D(channels, channels, temb, groups, eps))
        self.attentions = nn.ModuleList(attentions)
        self.resnets = nn.ModuleList(resnets)

    def forward(self, h, temb, context, context_mask):
        h = self.resnets[0](h, temb)
        for attn, resnet in zip(self.attentions, self.resnets[1:]):
            h = attn(h, context, context_mask)
            h = resnet(h, temb)
        return h


class UpBlock(nn.Module):
    """CrossAttnUpBlock2D (has ``attentions``) or UpBlock2D; num_layers = layers_per_block + 1."""

    def __init__(self, cross: bool, in_channels: int, prev_output_channel: int, out_channels: int, temb: int,
                 num_layers: int, transformer_layers, heads: int, cross_attention_dim: int, groups: int, eps: float,
                 use_linear_projection: bool, add_upsample: bool):
        super().__init__()
        layers_per = _per_block(transformer_layers, num_layers, "transformer_layers_per_block")
        resnets, attentions = [], []
        for i in range(num_layers):
            skip_channels = in_channels if i == num_layers - 1 else out_channels
            resnet_in = prev_output_channel if i == 0 else out_channels
            resnets.append(ResnetBlock2D(resnet_in + skip_channels, out_channels, temb, groups, eps))
            if cross:
                attentions.append(Transformer2DModel(heads, out_channels // heads, out_channels, int(layers_per[i]),
                                                     cross_attention_dim, groups, use_linear_projection))
        self.attentions = nn.ModuleList(attentions) if cross else None
        self.resnets = nn.ModuleList(resnets)
        self.upsamplers = nn.ModuleList([Upsample2D(out_channels)]) if add_upsample else None

    def forward(self, h, skips: List[torch.Tensor], temb, context, context_mask, upsample_size=None):
        skips = list(skips)
        for i, resnet in enumerate(self.resnets):
            skip = skips.pop()  # most recent first
            h = resnet(torch.cat([h, skip], dim=1), temb)  # hidden first, then skip
            if self.attentions is not None:
                h = self.attentions[i](h, context, context_mask)
        if self.upsamplers is not None:
            for u in self.upsamplers:
                h = u(h, upsample_size)
        return h


# --------------------------------------------------------------------------------------------
# the UNet
# --------------------------------------------------------------------------------------------


class UNet2DConditionModel(nn.Module):
    """diffusers v0.31 ``UNet2DConditionModel`` subset; ``forward`` returns the sample tensor directly."""

    MASK_BIAS = -10000.0

    def __init__(self, config: dict):
        super().__init__()
        rc = ResolvedConfig(config)
        self.rc = rc
        self.config = rc.raw
        boc = rc.block_out_channels
        n = len(boc)
        temb = rc.time_embed_dim

        # Assignment order = diffusers' = state_dict order: conv_in, time_embedding, down_blocks,
        # up_blocks (the ModuleList is created before the mid block), mid_block, conv_norm_out, conv_out.
        self.conv_in = nn.Conv2d(rc.in_channels, boc[0], 3, padding=1)
        self.time_proj = Timesteps(boc[0], rc.flip_sin_to_cos, rc.freq_shift)
        self.time_embedding = TimestepEmbedding(rc.timestep_input_dim, temb)
        self.down_blocks = nn.ModuleList([])
        self.up_blocks = nn.ModuleList([])

        output_channel = boc[0]
        for i, kind in enumerate(rc.down_block_types):
            input_channel, output_channel = output_channel, boc[i]
            self.down_blocks.append(DownBlock(
                kind == CROSS_DOWN, input_channel, output_channel, temb, rc.layers_per_block[i],
                rc.transformer_layers_per_block[i], rc.num_attention_heads[i], rc.cross_attention_dim[i],
                rc.norm_num_groups, rc.norm_eps, rc.use_linear_projection, add_downsample=i < n - 1,
                downsample_padding=1))

        self.mid_block = MidBlock(boc[-1], temb, rc.transformer_layers_per_block[-1], rc.num_attention_heads[-1],
                                  rc.cross_attention_dim[-1], rc.norm_num_groups, rc.norm_eps, rc.use_linear_projection)

        rev_boc = list(reversed(boc))
        rev_heads = list(reversed(rc.num_attention_heads))
        rev_layers = list(reversed(rc.layers_per_block))
        rev_cross = list(reversed(rc.cross_attention_dim))
        self.num_upsamplers = 0
        output_channel = rev_boc[0]
        for i, kind in enumerate(rc.up_block_types):
            is_final = i == n - 1
            prev_output_channel, output_channel = output_channel, rev_boc[i]
            input_channel = rev_boc[min(i + 1, n - 1)]
            if not is_final:
                self.num_upsamplers += 1
            self.up_blocks.append(UpBlock(
                kind == CROSS_UP, input_channel, prev_output_channel, output_channel, temb, rev_layers[i] + 1,
                rc.reverse_transformer_layers_per_block[i], rev_heads[i], rev_cross[i], rc.norm_num_groups,
                rc.norm_eps, rc.use_linear_projection, add_upsample=not is_final))

        self.conv_norm_out = nn.GroupNorm(rc.norm_num_groups, boc[0], eps=rc.norm_eps)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(boc[0], rc.out_channels, 3, padding=1)

    def forward(self, sample: torch.Tensor, timesteps, encoder_hidden_states: torch.Tensor,
                encoder_attention_mask: Optional[torch.Tensor] = None,
                observer: Optional[Callable[[str, torch.Tensor], None]] = None) -> torch.Tensor:
        """sample [B,C,H,W]; timesteps [B], a scalar or a number; encoder_hidden_states [B,T,D];
        encoder_attention_mask [B,T] with 1 = keep, 0 = pad (or None). ``observer(name, tensor)`` receives
        the golden files' ``act.*`` block outputs."""
        note = observer or (lambda name, t: None)
        batch = sample.shape[0]

        # diffusers: the up path forwards explicit upsample sizes when a side is not a multiple of 2**num_upsamplers.
        factor = 2 ** self.num_upsamplers
        forward_upsample_size = any(s % factor != 0 for s in sample.shape[-2:])

        if encoder_attention_mask is not None:
            encoder_attention_mask = (1 - encoder_attention_mask.to(sample.dtype)) * self.MASK_BIAS
            encoder_attention_mask = encoder_attention_mask.unsqueeze(1)  # [B,1,T]; C# writes it as [B,1,1,T]

        if not torch.is_tensor(timesteps):
            timesteps = torch.tensor([timesteps], dtype=torch.float32 if isinstance(timesteps, float) else torch.int64,
                                     device=sample.device)
        elif timesteps.dim() == 0:
            timesteps = timesteps[None].to(sample.device)
        timesteps = timesteps.expand(batch)
        t_emb = self.time_proj(timesteps).to(dtype=sample.dtype)
        note("time_proj", t_emb)
        emb = self.time_embedding(t_emb)
        note("time_embedding", emb)

        h = self.conv_in(sample)
        note("conv_in", h)
        skips: List[torch.Tensor] = [h]
        for i, block in enumerate(self.down_blocks):
            h, res = block(h, emb, encoder_hidden_states, encoder_attention_mask)
            skips.extend(res)
            note(f"down_blocks.{i}", h)

        h = self.mid_block(h, emb, encoder_hidden_states, encoder_attention_mask)
        note("mid_block", h)

        for i, block in enumerate(self.up_blocks):
            is_final = i == len(self.up_blocks) - 1
            count = len(block.resnets)
            res, skips = skips[-count:], skips[:-count]
            upsample_size = skips[-1].shape[2:] if (not is_final and forward_upsample_size) else None
            h = block(h, res, emb, encoder_hidden_states, encoder_attention_mask, upsample_size)
            note(f"up_blocks.{i}", h)

        h = self.conv_out(self.conv_act(self.conv_norm_out(h)))
        return h

    def cross_attention_kv_names(self) -> List[str]:
        return [name for name, _ in self.named_parameters()
                if name.endswith(".attn2.to_k.weight") or name.endswith(".attn2.to_v.weight")]


def load_weights(model: nn.Module, path: str, strict: bool = True) -> Tuple[List[str], List[str]]:
    """Loads a safetensors file by exact parameter name. With ``strict`` any missing or unexpected name,
    or any shape mismatch, raises ``ValueError``. Returns (missing, unexpected)."""
    tensors = load_file(path)
    own = model.state_dict()
    missing = [k for k in own if k not in tensors]
    unexpected = [k for k in tensors if k not in own]
    wrong = [(k, list(tensors[k].shape), list(own[k].shape)) for k in own if k in tensors and tensors[k].shape != own[k].shape]
    if wrong:
        raise ValueError(f"{path}: shape mismatch for {len(wrong)} tensors, e.g. {wrong[:3]} (file, model)")
    if strict and (missing or unexpected):
        raise ValueError(f"{path}: {len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]})")
    with torch.no_grad():
        for k, v in own.items():
            if k in tensors:
                if tensors[k].dtype != v.dtype and strict:
                    raise ValueError(f"{path}: {k} is {tensors[k].dtype}, model has {v.dtype}")
                v.copy_(tensors[k])
    return missing, unexpected


def _strip_json_comments(text: str) -> str:
    """Removes // and /* */ comments outside strings (Excise's configs/*.json use them)."""
    out, i, n, in_str = [], 0, len(text), False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
            out.append(c)
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise ValueError("unterminated /* comment")
            i = end + 2
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def load_config(path: str) -> dict:
    """Reads a diffusers config.json, the golden wrapper ({"config": ...}) or an Excise run config ("model")."""
    with open(path, "r", encoding="utf-8") as f:
        text = f.read()
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        raw = json.loads(re.sub(r",(\s*[}\]])", r"\1", _strip_json_comments(text)))
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: config must be a JSON object")
    if isinstance(raw.get("config"), dict):
        raw = raw["config"]
    # Excise's configs/*.json keep the diffusers config under "model".
    if isinstance(raw.get("model"), dict) and "block_out_channels" in raw["model"]:
        raw = raw["model"]
    return raw
