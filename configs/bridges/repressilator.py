"""Snapshots of a stochastic repressilator (three genes) bridged with a repressilator
reference refined by maximum likelihood (SBIRR), or by vanilla multi-marginal SB.

  python -m experiments.main --config=configs/bridges/repressilator.py:refined \\
      --workdir=/tmp/rep

Argument: refined (default: bridge.method "sbirr"), vanilla ("multimarginal") or oracle
(vanilla under the true reference, reference.start="system"), and optionally ",tiny". 13
snapshots of 1000 points at tau = 0, 0.75, ..., 9 (true beta = 10, n = 3, k = 1,
gamma = 1, noise 0.1); training on the even-indexed ones, EMD on the odd-indexed ones.
The refit is nonlinear in n and k (Levenberg–Marquardt from beta = gamma = 0,
n = k = 1). The 3-seed table with the oracle column (README):
`python -m experiments.bridge_studies snapshots --system=repressilator --oracle
--workdir=DIR`.
"""
from configs.bridges.base import SNAPSHOT_VARIANTS, apply_args, base_config, choose_method


def get_config(arg=None):
  config = base_config()
  variant = choose_method(config, arg, SNAPSHOT_VARIANTS, "refined")
  config.bridge.update(sigma=0.1, num_steps=20, num_iterations=3, steps_per_phase=300,
                       cache_size=256)
  config.data.update(kind="snapshots", system="repressilator", times_start=0.0,
                     times_stop=9.0, times_step=0.75, num_points=1000)
  config.reference.update(family="repressilator", num_outer=8, refit_paths=256,
                          lm_iterations=50)
  config.model.update(width=64, depth=3, time_dim=16)
  config.eval.update(num_samples=1000, num_trajectories=100)
  config.optim.update(schedule="constant", learning_rate=1e-3)
  config.reference.start = "system" if variant == "oracle" else "family"
  apply_args(config, arg, tuple(SNAPSHOT_VARIANTS))
  return config
