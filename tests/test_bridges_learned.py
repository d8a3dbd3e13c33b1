"""Learned bridges (SB-CFM, IPF, IMF) against the closed-form Gaussian bridge, trained by
the engine's phases through `experiments.bridges` (2D here, with the `time_affine` model,
whose drifts are affine in x like the Gaussian bridge's, so a few hundred steps suffice).
The 2D and 8D figures with MLPs at full size:
`python -m experiments.bridge_studies gaussian --workdir=DIR`.

Tolerance 0.15 on the relative Frobenius errors of Cov(X0, X1) and of the marginal
covariances at t = 0.25, 0.5, 0.75 and 1 of the forward SDE, and of the backward SDE's at
t = 0: the Monte-Carlo floor of 4000 paths is 0.026; measured 0.02-0.10. A bridge that
ignores the coupling (the independent one) has a cross-covariance error of 1, and IPF
stopped after its first iteration errors of 0.25-0.5.

SB-CFM and IMF share one run: IMF started from SB-CFM's coupling (minibatch entropic OT,
epsilon = 2 sigma^2), whose first phase is exactly SB-CFM (evaluated when it ends), then
two IMF iterations (evaluated at the end).
"""
import json
import os

import numpy as np
import pytest

from configs.bridges import gaussian as gaussian_config
from experiments import bridges
from diffjax.train import train

TOLERANCE = 0.15
KEYS = ("forward_cross_cov", "forward_cov_t0.25", "forward_cov_t0.5", "forward_cov_t0.75",
        "forward_cov_t1", "backward_cov_t0")


def small_config(method):
  config = gaussian_config.get_config(method)
  config.data.update(dim=2, seed=1)
  config.model = type(config.model)({"name": "time_affine", "degree": 4})
  config.bridge.update(sigma=1.0, num_steps=30, num_iterations=4 if method == "ipf" else 2,
                       steps_per_phase=300, cache_size=1024, initial_steps=600,
                       initial_coupling="sinkhorn_ot")
  bridges.set_intervals(config)
  config.train.update(batch_size=256, eval_every=600 if method == "imf" else 0,
                      checkpoint_every=0)
  config.optim.update(learning_rate=1e-2, warmup_steps=0)
  config.eval.update(num_samples=4000, end_metrics=())
  return config


@pytest.mark.parametrize("method", ["ipf", "imf"])
def test_learned_bridge_matches_the_closed_form(method, tmp_path):
  config = small_config(method)
  train(config, str(tmp_path), bridges.build_task(config))
  with open(os.path.join(tmp_path, "metrics.jsonl")) as f:
    records = {r["step"]: r for r in map(json.loads, f)}
  checks = {method: records[max(records)]}
  if method == "imf":
    checks["sbcfm"] = records[config.bridge.initial_steps]
  for name, record in checks.items():
    errors = {k: record[k] for k in KEYS}
    assert max(errors.values()) < TOLERANCE, (name, errors)
    assert record["cov_error_floor"] < 0.05
    print(name, {k: round(v, 3) for k, v in errors.items()})
