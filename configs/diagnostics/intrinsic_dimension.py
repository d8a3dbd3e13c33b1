"""Intrinsic dimension from the learned score's Jacobian (Horvat & Pfister, ICLR 2024).

  python -m experiments.main --config=configs/diagnostics/intrinsic_dimension.py:circle --workdir=workdirs/idim_circle

Variants: circle (d = 1 in R^2), sphere (d = 2 in R^3), linear_subspace (d = 3 in R^10),
digits (the 64-pixel digits; no true d: reported beside the TwoNN estimate of the test
digits). Trains an EDM-preconditioned MLP denoiser; the evaluation takes eval.num_points
data points, noises them to each sigma / alpha of eval.noise_levels, and reports the
median number of singular values of sigma^2 J below eval.threshold (J the score's
Jacobian; `diffjax.diagnostics.intrinsic_dimension`), the share of points within one of
the truth, the largest-gap estimate and the Jacobian's asymmetry ||J - J^T|| / ||J|| (the
network is not constrained to be a gradient); plots/spectra_<step>.png. A few minutes
each on a 2-core CPU; `:circle,tiny` (any variant with tiny) runs in seconds.
"""
from configs.diagnostics.base import intrinsic_dimension_config
from configs.common import parse_arg, shrink_to_tiny

VARIANTS = ("circle", "sphere", "linear_subspace", "digits")


def get_config(arg=None):
  variants, tiny = parse_arg(arg, VARIANTS)
  if len(variants) > 1:
    raise ValueError(f"Choose one of {', '.join(VARIANTS)}; got {arg!r}.")
  config = intrinsic_dimension_config(variants[0] if variants else "circle")
  if tiny:
    shrink_to_tiny(config, num_steps=100, batch_size=64)
    config.eval.update(num_points=16, noise_levels=(0.05,))
  return config
