"""Learned bridges (SB-CFM, IPF, IMF) against the closed-form Gaussian bridge, trained by
the engine's phases through `experiments.bridges`.

One run per method covers a 2D and an 8D pair at once: the two Gaussians are block
diagonal in 10D (a 2D block and an 8D block, independent), and with the isotropic
Brownian reference the bridge factorises over independent blocks, so each block of the
learned bridge is compared with the closed-form bridge of that block's own pair. The model
is `time_affine` (drifts affine in x, as the Gaussian bridge's are), so a few hundred
steps suffice; the MLP figures at full size are `python -m experiments.bridges gaussian`.
"""
import jax
import numpy as np
import pytest

from configs.bridges import gaussian as gaussian_config
from diffjax.bridges import brownian, evaluation, gaussian
from diffjax.train import train
from experiments import bridges

BLOCKS = ((0, 2), (2, 10))   # Coordinates of the 2D block and the 8D block.


def small_config(method):
  config = gaussian_config.get_config(method)
  config.data.update(dim=10, blocks=(2, 8), seed=1)
  config.model = type(config.model)({"name": "time_affine", "degree": 4})
  config.bridge.update(sigma=1.0, num_steps=30, num_iterations=5 if method == "ipf" else 3,
                       steps_per_phase=300, cache_size=1024,
                       initial_steps=600 if method == "sbcfm" else 0)
  config.train.update(batch_size=256, steps_per_call=300, log_every=300, eval_every=0,
                      checkpoint_every=0)
  config.optim.update(learning_rate=1e-2, warmup_steps=0, schedule="cosine")
  config.eval.update(num_samples=4000, end_metrics=())
  return config


@pytest.mark.parametrize("method", ["sbcfm", "ipf", "imf"])
def test_learned_bridge_matches_the_closed_form(method, tmp_path):
  config = small_config(method)
  task = bridges.build_task(config)
  state = train(config, str(tmp_path), task)
  arrays, _ = task.sample(state.params, jax.random.PRNGKey(3))
  a, cov_a, b, cov_b = bridges.gaussian_endpoints(10, config.data.seed, (2, 8))
  ts = np.linspace(0.0, 1.0, config.bridge.num_steps + 1)
  for lo, hi in BLOCKS:
    block = slice(lo, hi)
    oracle = gaussian.gaussian_bridge(a[block], cov_a[block, block], b[block],
                                      cov_b[block, block], brownian(config.bridge.sigma))
    forward = evaluation.gaussian_report(oracle, arrays["forward_paths"][..., block], ts)
    backward = evaluation.gaussian_report(oracle, arrays["backward_paths"][..., block], ts)
    floor = evaluation.standard_error_floor(oracle, config.eval.num_samples)
    print(method, hi - lo, {k: round(v, 3) for k, v in forward.items()}, floor)
    for key in ("cross_cov", "cov_t0.25", "cov_t0.5", "cov_t0.75", "cov_t1"):
      assert forward[key] < TOLERANCE, (method, hi - lo, key, forward[key])
    assert backward["cov_t0"] < TOLERANCE and backward["cross_cov"] < TOLERANCE


TOLERANCE = 0.15
