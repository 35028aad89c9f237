#!/usr/bin/python3
"""Training-step parity and speed for the plain-PyTorch UNet peer (excise_reference.py).

Parity (compare with Excise's C# training step on identical weights and inputs):
  train_step.py --config unet_config.json --weights model.safetensors --inputs inputs.safetensors \\
      --parity OUT.safetensors [--adamw-steps N] [--lr 1e-3] [--weight-decay 0.01] [--grad-clip 1.0] [--threads 1]
  inputs: sample [B,C,H,W], timesteps [B] F32, encoder_hidden_states [B,T,D],
          encoder_attention_mask [B,T] F32 (1 keep / 0 pad; optional), target [B,C,H,W].
  OUT:    loss [1]  (train mode, before any step), grad.<name> for every attn2.to_k/to_v weight,
          loss_after [N]  (loss of each AdamW step, before its update), grad_norm_after [N] (total grad
          norm before clipping), final.<name> for every parameter after the last step.

Speed:
  train_step.py --bench --config unet_config.json [--batch 32] [--tokens 32] [--threads 2] [--warmup 3]
      [--steps 10] [--seed 0] [--json OUT.json] [--sampling] [--no-mask]
  training step = zero_grad(set_to_none=True) + forward + mse + backward + clip_grad_norm_(1.0) + AdamW step;
  --sampling instead times a no_grad eval forward of a 2*batch (classifier-free guidance) batch.
"""

import argparse
import ctypes
import ctypes.util
import json
import os
import re
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import excise_reference as ref  # noqa: E402


# --------------------------------------------------------------------------------------------
# BLAS introspection
# --------------------------------------------------------------------------------------------

class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def _sgemm_provider() -> str:
    """The file that provides the `sgemm_` libtorch binds to (libtorch_cpu NEEDs libblas.so.3, which
    comes first in its lookup scope), found with dlopen(RTLD_NOLOAD) + dladdr."""
    try:
        libdl = ctypes.CDLL(ctypes.util.find_library("dl") or "libc.so.6")
        RTLD_NOLOAD = 0x4
        handle = ctypes.CDLL("libblas.so.3", mode=RTLD_NOLOAD | os.RTLD_NOW)
        addr = ctypes.cast(handle.sgemm_, ctypes.c_void_p)
        info = _DlInfo()
        libdl.dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
        if libdl.dladdr(addr, ctypes.byref(info)) and info.dli_fname:
            return os.path.realpath(info.dli_fname.decode())
    except (OSError, AttributeError) as e:
        return f"unknown ({e})"
    return "unknown"


def blas_report() -> dict:
    """Call after at least one matmul so lazily loaded libraries are mapped."""
    config = torch.__config__.show()
    m = re.search(r"BLAS_INFO=([^,\s]+)", config)
    mapped = sorted({line.split()[-1] for line in open("/proc/self/maps")
                     if len(line.split()) >= 6 and re.search(r"blas|lapack|mkl|blis|dnnl|gomp|iomp", line.split()[-1])})
    provider = _sgemm_provider()
    if "openblas" in provider:
        kind = "OpenBLAS"
        for p in mapped:
            v = re.search(r"libopenblas\w*-r([\d.]+)\.so", p)
            if v:
                kind += f" {v.group(1)}"
        if "openmp" in provider:
            kind += " (OpenMP build)"
        elif "pthread" in provider:
            kind += " (pthreads build)"
    elif "/blas/" in provider:
        kind = "reference BLAS (netlib libblas3)"
    elif "blis" in provider:
        kind = "BLIS"
    elif "mkl" in provider:
        kind = "MKL"
    else:
        kind = provider
    return {
        "blas": kind,
        "sgemm_provider": provider,
        "torch_build_blas_info": m.group(1) if m else None,
        "mkldnn_convs": torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled,
        "mapped_libraries": mapped,
    }


# --------------------------------------------------------------------------------------------
# parity
# --------------------------------------------------------------------------------------------

def run_parity(args) -> int:
    torch.set_num_threads(args.threads or 1)
    torch.manual_seed(0)
    model = ref.UNet2DConditionModel(ref.load_config(args.config))
    ref.load_weights(model, args.weights, strict=True)
    inputs = ref.load_file(args.inputs)
    missing = [k for k in ("sample", "timesteps", "encoder_hidden_states", "target") if k not in inputs]
    if missing:
        raise SystemExit(f"{args.inputs}: missing {missing}")
    sample, timesteps, states, target = (inputs[k] for k in ("sample", "timesteps", "encoder_hidden_states", "target"))
    mask = inputs.get("encoder_attention_mask")

    model.train()
    params = list(model.parameters())
    model.zero_grad(set_to_none=True)
    loss = F.mse_loss(model(sample, timesteps, states, mask), target)
    loss.backward()
    named = dict(model.named_parameters())
    out = {"loss": loss.detach().reshape(1).clone()}
    for name in model.cross_attention_kv_names():
        out[f"grad.{name}"] = named[name].grad.detach().clone()

    optimizer = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=args.weight_decay)
    losses, norms = [], []
    for _ in range(args.adamw_steps):
        optimizer.zero_grad()
        step_loss = F.mse_loss(model(sample, timesteps, states, mask), target)
        step_loss.backward()
        if args.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(params, args.grad_clip)
        else:
            norm = torch.norm(torch.stack([p.grad.detach().norm(2) for p in params if p.grad is not None]), 2)
        optimizer.step()
        losses.append(step_loss.item())
        norms.append(float(norm))
    out["loss_after"] = torch.tensor(losses, dtype=torch.float32)
    out["grad_norm_after"] = torch.tensor(norms, dtype=torch.float32)
    for name, p in model.named_parameters():
        out[f"final.{name}"] = p.detach().clone()
    meta = {"torch_version": torch.__version__, "threads": str(torch.get_num_threads()),
            "blas": blas_report()["blas"], "adamw_steps": str(args.adamw_steps), "lr": repr(args.lr),
            "weight_decay": repr(args.weight_decay), "grad_clip": repr(args.grad_clip)}
    ref.write_safetensors(args.parity, out, meta)
    print(f"loss {loss.item():.8f}; {len(model.cross_attention_kv_names())} K/V grads; "
          f"{args.adamw_steps} AdamW steps, losses {[round(v, 8) for v in losses]}; wrote {args.parity}")
    return 0


# --------------------------------------------------------------------------------------------
# speed
# --------------------------------------------------------------------------------------------

def synthetic_inputs(cfg: ref.ResolvedConfig, batch: int, tokens: int, generator: torch.Generator, with_mask: bool):
    size = cfg.sample_size or 32
    sample = torch.randn(batch, cfg.in_channels, size, size, generator=generator)
    timesteps = torch.randint(0, 1000, (batch,), generator=generator).to(torch.float32)
    states = torch.randn(batch, tokens, cfg.cross_attention_dim[0], generator=generator)
    mask = None
    if with_mask:  # like tokenizer output: a kept prefix of random length, the rest padding
        lengths = torch.randint(2, tokens + 1, (batch,), generator=generator)
        mask = (torch.arange(tokens)[None, :] < lengths[:, None]).to(torch.float32)
    target = torch.randn(batch, cfg.out_channels, size, size, generator=generator)
    return sample, timesteps, states, mask, target


def run_bench(args) -> int:
    threads = args.threads or 2
    torch.set_num_threads(threads)
    torch.manual_seed(args.seed)
    loadavg = os.getloadavg()
    model = ref.UNet2DConditionModel(ref.load_config(args.config))
    cfg = model.rc
    g = torch.Generator().manual_seed(args.seed + 1)
    n_params = sum(p.numel() for p in model.parameters())

    timings, losses = [], []
    first = None
    if args.sampling:
        model.eval()
        sample, timesteps, states, mask, _ = synthetic_inputs(cfg, 2 * args.batch, args.tokens, g, not args.no_mask)
        timesteps = timesteps[:1]  # one sampling timestep for the whole CFG batch (expanded by the model)

        def step():
            with torch.no_grad():
                out = model(sample, timesteps, states, mask)
            return float(out.float().pow(2).mean())
    else:
        model.train()
        sample, timesteps, states, mask, target = synthetic_inputs(cfg, args.batch, args.tokens, g, not args.no_mask)
        params = list(model.parameters())
        optimizer = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=args.weight_decay)

        def step():
            optimizer.zero_grad(set_to_none=True)
            loss = F.mse_loss(model(sample, timesteps, states, mask), target)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            return loss.item()

    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        value = step()
        dt = time.perf_counter() - t0
        if first is None:
            first = dt
        losses.append(value)
        if i >= args.warmup:
            timings.append(dt)
        print(f"  {'warmup' if i < args.warmup else 'step'} {i + 1}: {dt:.3f} s", file=sys.stderr, flush=True)

    blas = blas_report()
    median = statistics.median(timings)
    result = {
        "framework": "pytorch",
        "mode": "sampling" if args.sampling else "train",
        "torch_version": torch.__version__,
        "python": sys.version.split()[0],
        "blas": blas["blas"],
        "blas_detail": blas,
        "attention": "explicit baddbmm + softmax + bmm (torch 1.13 has no scaled_dot_product_attention)",
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "config": os.path.abspath(args.config),
        "parameters": n_params,
        "batch": args.batch,
        "forward_batch": 2 * args.batch if args.sampling else args.batch,
        "tokens": args.tokens,
        "mask": not args.no_mask,
        "sample_size": cfg.sample_size or 32,
        "warmup": args.warmup,
        "first_step_seconds": first,
        "step_seconds": timings,
        "median_seconds": median,
        "min_seconds": min(timings),
        "max_seconds": max(timings),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "loadavg_at_start": list(loadavg),
    }
    if args.sampling:
        result["forward_seconds"] = median
        result["images_per_second"] = 2 * args.batch / median
        result["mean_square_output_last"] = losses[-1]
    else:
        result["images_per_second"] = args.batch / median
        result["loss_last"] = losses[-1]
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="diffusers unet_config.json (or Excise run config with 'model')")
    p.add_argument("--weights")
    p.add_argument("--inputs")
    p.add_argument("--parity", metavar="OUT.safetensors")
    p.add_argument("--adamw-steps", type=int, default=0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--bench", action="store_true")
    p.add_argument("--sampling", action="store_true", help="with --bench: time a no_grad forward of 2*batch")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--tokens", type=int, default=32)
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default 2 for --bench, 1 for --parity)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-mask", action="store_true", help="bench without encoder_attention_mask")
    p.add_argument("--json")
    args = p.parse_args()
    if args.sampling:
        args.bench = True
    if args.bench == bool(args.parity):
        p.error("give exactly one of --bench / --sampling or --parity")
    if args.parity:
        if not (args.weights and args.inputs):
            p.error("--parity needs --weights and --inputs")
        return run_parity(args)
    if args.steps < 1:
        p.error("--steps must be at least 1")
    return run_bench(args)


if __name__ == "__main__":
    sys.exit(main())
