"""Coverage of the cost-per-acquisition interval (issue 28, point 1): how often the interval of
:func:`helpers.economics.cost_per_acquisition` holds the generator's planted cost per acquisition.

The spend file of a generated company is sign-ups x planted CPA x lognormal noise (mean 1, log-sd
``acquisition_spend_noise_sd``; :mod:`helpers.synth.acquisition`). Keeping the company's sign-ups
(months x channels), the script draws the noise again `--draws` times, computes the estimate and
its interval each time and prints, per channel, the share of intervals that hold the planted CPA,
and the share of draws in which all channels are covered at once. It also prints, for the
company's own spend file, each channel's estimate, the realized spend / sign-ups (the same number:
the estimator is the ratio of sums), the interval's standard error and the true one,
CPA x sd(noise) x sqrt(sum n_m^2) / sum n_m, and how many true standard errors the estimate lies
from the planted CPA.

    .venv/bin/python benchmarks/cpa_coverage.py [--data datasets] [--draws 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import economics, paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=paths.DATASETS, help="a generated company")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    truth = json.loads((args.data / "ground_truth.json").read_text())
    cpa = pd.Series(dict(truth["parameters"]["acquisition_cpa"]), dtype=float)
    sd = float(truth["parameters"]["acquisition_spend_noise_sd"])
    spend = pd.read_csv(args.data / "marketing_spend.csv")

    est = economics.cost_per_acquisition(spend)
    n = spend.groupby("channel")["signups"]
    noise_sd = np.sqrt(np.exp(sd**2) - 1)
    est["planted"] = cpa.reindex(est.index)
    est["realized"] = pd.Series(truth["realized"]["acquisition"]["cpa_by_channel"])
    est["se_true"] = pd.Series(
        {c: cpa[c] * noise_sd * np.sqrt((v**2).sum()) / v.sum() for c, v in n}
    )
    est["z_true"] = (est["cpa"] - est["planted"]) / est["se_true"]
    cols = ["signups", "cpa", "realized", "ci_low", "ci_high", "se", "se_true", "planted", "z_true"]
    print(est[cols].round(3).to_string())

    rng = np.random.default_rng(args.seed)
    signups = spend["signups"].to_numpy(float)
    channel = spend["channel"].to_numpy()
    mean = spend["channel"].map(cpa).to_numpy() * signups
    hits = pd.Series(0, index=est.index)
    together = 0
    for _ in range(args.draws):
        draw = np.round(mean * np.exp(rng.normal(-sd * sd / 2, sd, len(mean))), 2)
        e = economics.cost_per_acquisition(
            pd.DataFrame({"channel": channel, "spend": draw, "signups": signups})
        )
        inside = (e["ci_low"] <= cpa.reindex(e.index)) & (cpa.reindex(e.index) <= e["ci_high"])
        hits += inside.astype(int)
        together += bool(inside.all())
    print(f"\ncoverage over {args.draws} draws of the spend noise (95 % intervals):")
    print((hits / args.draws).round(3).to_string())
    print(f"all {len(hits)} channels at once: {together / args.draws:.3f}")


if __name__ == "__main__":
    main()
