"""Learned bridges (SB-CFM, IPF, IMF) against the closed-form Gaussian bridge, trained by
the engine's phases through `experiments.bridges` (2D here, with the `time_affine` model,
whose drifts are affine in x like the Gaussian bridge's, so a few hundred steps suffice).
The 2D and 8D figures with MLPs at full size:
`python -m experiments.bridge_studies gaussian --workdir=DIR`.

Tolerance 0.15 on the relative Frobenius errors of Cov(X0, X1) and of the marginal
covariances at t = 0.25, 0.5, 0.75 and 1 (and of the backward SDE's Cov at t = 0): the
Monte-Carlo floor of 4000 paths is 0.026; measured 0.02-0.10. A bridge that ignores the
coupling (the independent one) has a cross-covariance error of 1, and IPF stopped after
its first iteration errors of 0.25-0.5.
"""
import jax
import numpy as np
import pytest

from configs.bridges import gaussian as gaussian_config
from diffjax.bridges import evaluation
from diffjax.train import train
from experiments import bridges

TOLERANCE = 0.15
KEYS = ("cross_cov", "cov_t0.25", "cov_t0.5", "cov_t0.75", "cov_t1")


def small_config(method):
  config = gaussian_config.get_config(method)
  config.data.update(dim=2, seed=1)
  config.model = type(config.model)({"name": "time_affine", "degree": 4})
  config.bridge.update(sigma=1.0, num_steps=30, num_iterations=4 if method == "ipf" else 2,
                       steps_per_phase=300, cache_size=1024,
                       initial_steps=600 if method == "sbcfm" else 0)
  config.train.update(batch_size=256, steps_per_call=300, log_every=300, eval_every=0,
                      checkpoint_every=0)
  config.optim.update(learning_rate=1e-2, warmup_steps=0)
  config.eval.update(num_samples=4000, end_metrics=())
  return config


@pytest.mark.parametrize("method", ["sbcfm", "ipf", "imf"])
def test_learned_bridge_matches_the_closed_form(method, tmp_path):
  config = small_config(method)
  task = bridges.build_task(config)
  state = train(config, str(tmp_path), task)
  arrays, _ = task.sample(state.params, jax.random.PRNGKey(3))
  oracle = bridges.gaussian_oracle(config)
  ts = np.linspace(0.0, 1.0, config.bridge.num_steps + 1)
  forward = evaluation.gaussian_report(oracle, arrays["forward_paths"], ts)
  backward = evaluation.gaussian_report(oracle, arrays["backward_paths"], ts)
  errors = {**{k: forward[k] for k in KEYS}, "backward_cov_t0": backward["cov_t0"]}
  assert max(errors.values()) < TOLERANCE, (method, errors)
