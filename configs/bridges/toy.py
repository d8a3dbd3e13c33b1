"""IPF (DSB) or IMF (DSBM) from two moons to 8 gaussians (Brownian reference, sigma 1).

  python -m experiments.main --config=configs/bridges/toy.py:ipf --workdir=/tmp/toy_ipf
  python -m experiments.main --config=configs/bridges/toy.py:imf --workdir=/tmp/toy_imf

Argument: ipf or imf (default ipf), and optionally ",tiny". Each evaluation (once per
iteration) reports the end-marginal errors, W2 between the forward SDE's samples at t = 1
and held-out 8-gaussian samples and between the backward SDE's at t = 0 and held-out moons
(`forward_end_w2`, `backward_end_w2`). Both methods side by side, with their network
evaluations: `python -m experiments.bridge_studies toy --workdir=DIR`.
"""
from configs.bridges.base import apply_args, base_config, choose_method

METHODS = ("ipf", "imf")


def get_config(arg=None):
  config = base_config()
  choose_method(config, arg, {m: m for m in METHODS}, "ipf")
  config.bridge.update(sigma=1.0, num_steps=20, num_iterations=8, steps_per_phase=1500,
                       cache_size=2048, initial_coupling="independent")
  config.data.update(kind="toy2d", source="moons", target="eight_gaussians")
  config.model.update(width=128, depth=3)
  apply_args(config, arg, METHODS)
  return config
