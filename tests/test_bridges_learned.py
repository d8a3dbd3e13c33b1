"""Learned bridges (SB-CFM, IPF, IMF) against the closed-form Gaussian bridge, trained by
the engine's phases through `experiments.bridges` (2D here, with the `time_affine` model,
whose drifts are affine in x like the Gaussian bridge's, so a few hundred steps suffice).
The 2D and 8D figures with MLPs at full size:
`python -m experiments.bridge_studies gaussian --workdir=DIR`; IPF and IMF on moons ->
8 gaussians: `python -m experiments.bridge_studies toy --workdir=DIR`.

Tolerance 0.15 on the relative Frobenius errors of Cov(X0, X1) and of the marginal
covariances at t = 0.25, 0.5, 0.75 and 1 of the forward SDE, and of the backward SDE's at
t = 0, after the last iteration: the Monte-Carlo floor of 4000 paths is 0.026; measured
0.01-0.11. A bridge that ignores the coupling (the independent one) has a cross-covariance
error of 1. IPF and IMF are evaluated after every iteration and must converge: IPF's errors
at both ends (t = 1 forward, t = 0 backward) fall from the first iteration to the last (it
starts from the reference, whose end marginal is not rho1); IMF keeps both ends at every
iteration (each Markovian projection preserves the marginals) and its coupling converges:
the cross-covariance error falls (it starts from the independent coupling).
"""
import json
import os

import pytest

from configs.bridges import gaussian as gaussian_config
from diffjax.train import train
from configs.bridges import base as bridge_base
from experiments import bridges

TOLERANCE = 0.15
KEYS = ("forward_cross_cov", "forward_cov_t0.25", "forward_cov_t0.5", "forward_cov_t0.75",
        "forward_cov_t1", "backward_cov_t0")
CONVERGING = {"ipf": ("forward_cov_t1", "backward_cov_t0"), "imf": ("forward_cross_cov",)}


def small_config(method):
  config = gaussian_config.get_config(method)
  config.data.update(dim=2, seed=1)
  config.model = type(config.model)({"name": "time_affine", "degree": 4})
  config.bridge.update(sigma=1.0, num_steps=30, num_iterations=4 if method == "ipf" else 3,
                       steps_per_phase=300, cache_size=1024, initial_steps=600,
                       initial_coupling="independent")
  bridge_base.set_intervals(config)
  config.train.update(batch_size=256, checkpoint_every=0)
  config.optim.update(learning_rate=1e-2, warmup_steps=0)
  # 16 drawn paths: matplotlib's figures of 200 took a third of a run's time.
  config.eval.update(num_samples=4000, end_metrics=(), num_trajectories=16)
  return config


@pytest.mark.parametrize("method", ["sbcfm", "ipf", "imf"])
def test_learned_bridge_matches_the_closed_form(method, tmp_path):
  config = small_config(method)
  train(config, str(tmp_path), bridges.build_task(config))
  with open(os.path.join(tmp_path, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  last = records[-1]
  errors = {k: last[k] for k in KEYS}
  assert max(errors.values()) < TOLERANCE, (method, errors)
  assert last["cov_error_floor"] < 0.05
  for key in CONVERGING.get(method, ()):
    history = [r[key] for r in records]
    assert len(history) >= 3 and history[-1] < history[0], (method, key, history)
