"""Hallucination by mode interpolation (Aithal et al., NeurIPS 2024) and its detector.

  python -m experiments.main --config=configs/diagnostics/hallucination.py --workdir=workdirs/hallucination_1d
  python -m experiments.main --config=configs/diagnostics/hallucination.py:2d --workdir=workdirs/hallucination_2d

Trains a DDPM-style VP diffusion (noise prediction, MLP) on the 1D mixture with means 1, 2,
3 and std 0.05, samples eval.num_samples points (100,000) with 250 ancestral steps recording
the predicted x1, counts samples farther than eval.support_radius mode stds from every mode
(hallucinations) and reports the share of hallucinations removed and of in-support samples
kept by the trajectory-variance detector over the last eval.window steps (threshold fitted
on one half of the samples, rates on the other), and the W2 of the in-support samples to
the mixture beside its sampling floor; plots/detector_<step>.png and samples_<step>.png.
About 3 minutes on a shared 2-core CPU.

`:2d` is the paper's 5 x 5 grid in the paper's code's setting (their normalised grid,
T = 1,000 DDPM schedule, 1,000 ancestral steps, window 10; see
`configs.diagnostics.base.hallucination_config`): 40,000 steps of batch 2,048 and 50,000
samples, which take hours on a shared 2-core CPU. `:tiny` (or `:2d,tiny`) runs in seconds.
"""
from configs.diagnostics.base import hallucination_config
from configs.common import parse_arg, shrink_to_tiny


def get_config(arg=None):
  variants, tiny = parse_arg(arg, ("1d", "2d"))
  if len(variants) > 1:
    raise ValueError(f"Choose one of 1d, 2d; got {arg!r}.")
  config = hallucination_config(variants[0] if variants else "1d")
  if tiny:
    shrink_to_tiny(config, num_steps=100, batch_size=64, num_samples=400, sample_steps=20)
    config.eval.window = 5
    if "2d" in variants:
      # Near the noise end the 2D schedule (beta up to 200) multiplies x by
      # alpha(s_next) / alpha(s) at every step, which only a model that has learned
      # eps_hat ~ x there cancels; a 100-step model has not (its samples reach 1e10). The
      # tiny run uses a mild schedule (beta_max = 5) and a small time embedding, and counts
      # samples within 15 stds (0.27, about 0.4 of the spacing) as in support, so that
      # both groups exist.
      config.path.update(beta_max=5.0, s_min=1e-3)
      config.eval.windows = (3, 10)
      config.model.time_dim = 32
      config.eval.support_radius = 15.0
  return config
