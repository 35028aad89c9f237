#!/usr/bin/env python3
"""Paired differences between each arm and `standard`, across the seeds of an `excise demo` results.json.

Every arm of a seed is fine-tuned from the same base with the same data order and noise, so a seed moves all arms
together (in the published full run, seed 2 is the worst fine-tune for five of six arms). The report's intervals are
per arm; comparing arms seed by seed removes the shared seed effect. Prints a markdown table of mean difference with
a Student-t 95% interval over seeds; * marks intervals that exclude 0.

    python3 docs/scripts/paired_differences.py runs/demo/results.json
"""
import json
import math
import sys

T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228]
COLUMNS = [("prompt", "logo when named"), ("paraphrase", "paraphrased"), ("inversion", "textual inversion"),
           ("baseline-rate", "logo unasked"), ("fidelity", "semantic fidelity"), ("fd", "FD (in-domain)")]


def figure(run, key):
    ordinary = run["attacks"]["baseline-rate"]
    if key == "fd":
        return ordinary["distribution"]["fid"]
    if key == "fidelity":
        return ordinary["fidelity"]["overall"]["rate"]
    return run["attacks"][key]["extraction"]["rate"]["rate"]


def main(path):
    results = json.load(open(path))
    runs = {(r["arm"], r["seed_index"]): r for r in results["runs"]}
    seeds = sorted({r["seed_index"] for r in results["runs"]})
    if len(seeds) < 2:
        sys.exit("paired differences need at least two seeds")
    t = T975[len(seeds) - 2] if len(seeds) - 1 <= len(T975) else 1.96
    print(f"| arm − standard ({len(seeds)} seeds) | " + " | ".join(name for _, name in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for arm in [s["arm"] for s in results["summary"] if s["arm"] != "standard"]:
        cells = []
        for key, _ in COLUMNS:
            d = [figure(runs[(arm, s)], key) - figure(runs[("standard", s)], key) for s in seeds]
            mean = sum(d) / len(d)
            half = t * math.sqrt(sum((x - mean) ** 2 for x in d) / (len(d) - 1) / len(d))
            digits = 0 if key == "fd" else 3
            mark = "*" if mean + half < 0 or mean - half > 0 else ""
            cells.append(f"{mean:+.{digits}f} [{mean - half:+.{digits}f}, {mean + half:+.{digits}f}]{mark}")
        print(f"| {arm} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/demo/results.json")
