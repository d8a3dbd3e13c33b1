"""A learned bridge between two Gaussians, checked against the closed form (Bunne et al.).

  python -m experiments.main --config=configs/bridges/gaussian.py:ipf --workdir=/tmp/g_ipf
  python -m experiments.main --config=configs/bridges/gaussian.py:imf --workdir=/tmp/g_imf \\
      --config.data.dim=8

Argument: the method, sbcfm, ipf or imf (default ipf), and optionally ",tiny". Each
evaluation reports the relative errors of the learned bridge's cross-covariance
Cov(X0, X1) and marginal covariances at t = 0.25, 0.5, 0.75 against the closed form
(`forward_*` from the forward SDE, `backward_*` from the backward one) and the Monte-Carlo
floor of those errors (`cov_error_floor`). The study over 2D and 8D and the three methods:
`python -m experiments.bridge_studies gaussian --workdir=DIR`.
"""
from configs.bridges.base import apply_args, base_config, choose_method

METHODS = ("sbcfm", "ipf", "imf")
# SB-CFM's one phase (imf_0) trains as long as two of the others' phases.
METHOD_SETTINGS = {"sbcfm": dict(initial_steps=4000), "ipf": {}, "imf": {}}


def get_config(arg=None):
  config = base_config()
  choose_method(config, arg, {m: m for m in METHODS}, "ipf")
  config.bridge.update(sigma=1.0, num_steps=50, num_iterations=6, steps_per_phase=2000,
                       cache_size=4096, **METHOD_SETTINGS[config.bridge.method])
  config.data.update(kind="gaussian", dim=2, seed=0)
  config.model.update(width=128, depth=3)
  config.eval.update(num_samples=10_000, end_metrics=())   # Moments, not W2, at 10^4.
  apply_args(config, arg, METHODS)
  return config
