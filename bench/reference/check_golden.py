#!/usr/bin/python3
"""Checks excise_reference.UNet2DConditionModel against the diffusers golden data.

For each config (mnist32, sdtiny) in /work/shared/golden (or --golden DIR):
  * builds the model from <name>.config.json, loads <name>.weights.safetensors strictly and checks
    the state_dict order equals the file's (= diffusers' state_dict order);
  * eval + no_grad forward of x / timesteps / encoder_hidden_states: max|Δ output| <= 5e-6;
    act.* block outputs are reported (max|Δ| / max|ref|) to localise a mismatch;
  * grad-enabled forward, loss = (output**2).mean(): relative loss difference <= 1e-5, and for every
    stored grad.<param> (attn2.to_k / to_v weights) max|Δ| / max|g| <= 2e-5.
Prints one line per config; exits 1 on any mismatch.

Run: /usr/bin/python3 bench/reference/check_golden.py [--threads 1] [--golden DIR] [--verbose]
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import excise_reference as ref  # noqa: E402

OUTPUT_TOL = 5e-6
LOSS_REL_TOL = 1e-5
GRAD_REL_TOL = 2e-5


def check(golden: str, name: str, verbose: bool) -> bool:
    config = ref.load_config(os.path.join(golden, f"{name}.config.json"))
    torch.manual_seed(1234)  # any seed: every parameter is overwritten
    model = ref.UNet2DConditionModel(config)
    weights_path = os.path.join(golden, f"{name}.weights.safetensors")
    ref.load_weights(model, weights_path, strict=True)
    file_order = list(ref.load_file(weights_path).keys())
    order_ok = file_order == list(model.state_dict().keys())
    io = ref.load_file(os.path.join(golden, f"{name}.io.safetensors"))
    x, t, ctx = io["x"], io["timesteps"], io["encoder_hidden_states"]

    model.eval()
    acts = {}
    with torch.no_grad():
        out = model(x, t, ctx, observer=lambda k, v: acts.__setitem__(k, v.clone()))
    out_err = (out - io["output"]).abs().max().item()
    act_errs = {}
    for key, value in io.items():
        if key.startswith("act."):
            mine = acts.get(key[4:])
            if mine is None or mine.shape != value.shape:
                act_errs[key[4:]] = float("inf")
            else:
                act_errs[key[4:]] = ((mine - value).abs().max() / value.abs().max().clamp_min(1e-30)).item()

    model.zero_grad(set_to_none=True)
    out_g = model(x, t, ctx)
    loss = (out_g ** 2).mean()
    loss.backward()
    ref_loss = io["loss"].reshape(-1)[0].item()
    loss_rel = abs(loss.item() - ref_loss) / abs(ref_loss)

    params = dict(model.named_parameters())
    grad_keys = [k for k in io if k.startswith("grad.")]
    expected = sorted("grad." + k for k in model.cross_attention_kv_names())
    grads_listed_ok = sorted(grad_keys) == expected
    worst_grad, worst_name = 0.0, ""
    for key in grad_keys:
        g_ref = io[key]
        g = params[key[5:]].grad
        rel = ((g - g_ref).abs().max() / g_ref.abs().max()).item()
        if rel > worst_grad:
            worst_grad, worst_name = rel, key[5:]

    ok = (order_ok and grads_listed_ok and out_err <= OUTPUT_TOL and loss_rel <= LOSS_REL_TOL
          and worst_grad <= GRAD_REL_TOL and all(e < 1e-4 for e in act_errs.values()))
    print(f"{'PASS' if ok else 'FAIL'} {name}: {len(params)} params ({sum(p.numel() for p in params.values()):,} floats), "
          f"state_dict order {'matches' if order_ok else 'DIFFERS'}; "
          f"output max|d|={out_err:.3g} (tol {OUTPUT_TOL:g}); loss {loss.item():.7f} vs {ref_loss:.7f} rel={loss_rel:.2g}; "
          f"{len(grad_keys)} K/V grads worst max|d|/max|g|={worst_grad:.3g} (tol {GRAD_REL_TOL:g}){' at ' + worst_name if verbose else ''}; "
          f"worst act rel={max(act_errs.values()) if act_errs else 0:.3g}")
    if verbose or not ok:
        for k, e in act_errs.items():
            print(f"    act.{k}: max|d|/max|ref| = {e:.3g}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--golden", default="/work/shared/golden")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--configs", nargs="*", default=["mnist32", "sdtiny"])
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    results = [check(args.golden, name, args.verbose) for name in args.configs]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
