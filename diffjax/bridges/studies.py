"""The tables of the bridge studies: several runs' evaluation records -> rows and summaries.

`experiments.bridge_studies` runs the studies (which configs, which seeds) and writes the
tables; the computations on the runs' `metrics.jsonl` records are here:
- the Gaussian study: the relative errors of each run's last evaluation against the
  closed form (`GAUSSIAN_STUDY_KEYS`);
- the toy study: end-marginal errors against network evaluations (each method's declared
  cost, `diffjax.bridges.methods.network_evaluations`), and the evaluations after which
  one method first reaches another's final errors at both ends;
- the snapshot study: held-out EMDs and refitted parameters, mean ± std over seeds.
"""
from typing import Dict, List, Sequence

import numpy as np

from diffjax.bridges.methods import network_evaluations

# Moments of the Gaussian study (`diffjax.bridges.evaluation.gaussian_report`) and their
# table headers.
GAUSSIAN_STUDY_KEYS = {
    "forward_cross_cov": "Cov(X0,X1)", "forward_cov_t0.25": "Cov t=.25",
    "forward_cov_t0.5": "Cov t=.5", "forward_cov_t0.75": "Cov t=.75",
    "forward_cov_t1": "Cov t=1", "backward_cov_t0": "Cov t=0 (backward)",
    "cov_error_floor": "MC floor"}
ENDS = ("forward", "backward")


def mean_std(values) -> str:
  """"mean ± std" (sample std; 0 for one value) to 4 decimals."""
  values = np.asarray(values, np.float64)
  std = values.std(ddof=1) if len(values) > 1 else 0.0
  return f"{values.mean():.4f} ± {std:.4f}"


def end_error_curve(config, records, metrics=("w2", "energy_distance")) -> List[Dict]:
  """One point per evaluation record of a two-marginal run of `config`: its step, the
  network evaluations used by then (simulation + regression) and the end errors
  "<end>_<metric>" (end: forward at t = 1, backward at t = 0)."""
  return [dict(step=r["step"], nfe=sum(network_evaluations(config, r["step"])),
               **{f"{end}_{m}": r[f"{end}_end_{m}"] for m in metrics for end in ENDS})
          for r in records if f"forward_end_{metrics[0]}" in r]


def first_reaching(curve: List[Dict], target: Dict, metric: str):
  """The network evaluations at the first point of `curve` whose errors of `metric` at
  both ends are at most those of the point `target`; None if none is."""
  reached = [p for p in curve
             if all(p[f"{end}_{metric}"] <= target[f"{end}_{metric}"] for end in ENDS)]
  return reached[0]["nfe"] if reached else None


def snapshot_rows(results: Dict, variants: Sequence[str], seeds: Sequence[int],
                  refined: str) -> List[List[str]]:
  """Rows of the snapshot study: each held-out time's EMD and their mean, then each
  refitted parameter's relative error (the `refined` variant's only), as mean ± std over
  seeds per variant. results[(variant, seed)]: the run's last evaluation record."""
  first = results[(variants[0], seeds[0])]
  rows = [[key.replace("emd_", "")] + [mean_std([results[(v, s)][key] for s in seeds])
                                       for v in variants]
          for key in [k for k in first if k.startswith("emd_t")] + ["emd_mean"]]
  errors = sorted(k for k in results[(refined, seeds[0])] if k.endswith("relative_error"))
  for key in errors:
    rows.append([key] + [mean_std([results[(v, s)][key] for s in seeds]) if v == refined
                         else "-" for v in variants])
  return rows
