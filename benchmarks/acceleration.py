"""Cheaper or better sampling from a trained network: the closed-form studies.

  python -m benchmarks.acceleration [--quick]

w2sd: Weak-to-Strong Diffusion with Reflection (`diffjax.acceleration.w2sd`) on exact
mixture fields whose distance from the truth is known. The truth is four 2D Gaussians
(weights 0.4, 0.3, 0.2, 0.1 at (+-2, 0), (0, +-2), std 0.5); the strong model is the
truth with every mean moved by (0.3, 0.2) and stds x1.2, the weak one by (0.75, 0.5) and
x1.5 (both exact oracles of their own mixtures). 25 DDIM steps on the VP path from the same
noise; W2 (exact, `diffjax.metrics.wasserstein2`) of 1,000 samples to 1,000 draws of the
truth, for each reflection strength lambda and reflection window (the first half of the
steps, or all), mean and std over 3 seeds; the floor is the W2 between two sets of 1,000
draws of the truth. The strong model also runs 75 steps, W2SD's largest cost. Writes results/acceleration.{json,md} and acceleration_w2sd.png.
"""
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from diffjax.acceleration import w2sd_guidance
from diffjax.conditioning import class_condition
from diffjax.data import GaussianMixture, mixture_oracle, two_class_mixture
from diffjax.guidance import (ConditionalModel, Guidance, adaptive_guidance,
                              classifier_free, fit_linear_ag, linear_ag)
from diffjax.metrics import wasserstein2
from diffjax.paths import build_path
from diffjax.solvers import sample

VP = build_path("vp")
STEPS = 25


def shifted_mixture(shift, scale):
  """The study's four Gaussians with every mean moved by `shift` and stds times `scale`."""
  means = jnp.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
  means = means + jnp.asarray(shift, jnp.float32)[None]
  covs = (0.5 * scale) ** 2 * jnp.broadcast_to(jnp.eye(2), (4, 2, 2))
  return GaussianMixture(jnp.array([0.4, 0.3, 0.2, 0.1]), means, covs)


TRUTH = shifted_mixture([0.0, 0.0], 1.0)
STRONG = mixture_oracle(VP, shifted_mixture([0.3, 0.2], 1.2)).fields()
WEAK = mixture_oracle(VP, shifted_mixture([0.75, 0.5], 1.5)).fields()


@functools.partial(jax.jit, static_argnums=2)
def _w2sd(x0, strength, t_end):
  result = sample("ddim", None, VP, x0, num_steps=STEPS,
                  guidance=w2sd_guidance(STRONG, WEAK, VP, strength, (0.0, t_end)))
  return result.x, result.nfe


@jax.jit
def _plain(x0):
  """The strong and weak models at 25 steps, and the strong one at W2SD's largest NFE."""
  return (sample("ddim", STRONG, VP, x0, num_steps=STEPS).x,
          sample("ddim", WEAK, VP, x0, num_steps=STEPS).x,
          sample("ddim", STRONG, VP, x0, num_steps=3 * STEPS).x)


def w2sd_study(quick):
  n = 500 if quick else 1000
  strengths = (0.05, 0.1, 0.2) if quick else (0.025, 0.05, 0.1, 0.15, 0.2, 0.3)
  windows = (0.5, 1.0)
  w2 = {key: [] for key in ["strong", "strong_75", "weak", "floor"] + [
      (t_end, s) for t_end in windows for s in strengths]}
  nfe = {}
  for seed in range(3):
    x0 = VP.source_sample(jax.random.PRNGKey(seed), (n, 2))
    truth = np.asarray(TRUTH.sample(jax.random.PRNGKey(100 + seed), n))
    strong, weak, strong_75 = _plain(x0)
    w2["strong"].append(wasserstein2(np.asarray(strong), truth))
    w2["strong_75"].append(wasserstein2(np.asarray(strong_75), truth))
    w2["weak"].append(wasserstein2(np.asarray(weak), truth))
    w2["floor"].append(wasserstein2(np.asarray(TRUTH.sample(jax.random.PRNGKey(200 + seed),
                                                            n)), truth))
    for t_end in windows:
      for s in strengths:
        x, used = _w2sd(x0, s, t_end)
        w2[(t_end, s)].append(wasserstein2(np.asarray(x), truth))
        nfe[t_end] = int(used)
  stats = {key: (float(np.mean(v)), float(np.std(v))) for key, v in w2.items()}
  return stats, w2, nfe, strengths, windows, n


def linear_ag_study(quick):
  n, steps, scale = (1000 if quick else 4000), 20, 2.0
  task = two_class_mixture(separation=1.0, std=0.7)
  labels = jnp.ones(n, jnp.int32)
  model = ConditionalModel(task.fields_of(VP), *class_condition(labels, 2))
  x0 = VP.source_sample(jax.random.PRNGKey(0), (n, 2))
  calibration = VP.source_sample(jax.random.PRNGKey(1), (n, 2))

  @jax.jit
  def cfg_and_fit():
    cfg = sample("ddim", classifier_free(model, scale), VP, x0, num_steps=steps).x
    return cfg, fit_linear_ag(model, VP, "ddim", calibration, scale, num_steps=steps)

  @functools.partial(jax.jit, static_argnums=1)
  def linear(coefficients, exact_steps):
    result = sample("ddim", None, VP, x0, num_steps=steps, guidance=Guidance(
        model.conditional(), lambda s, b: linear_ag(s, model, VP, scale, coefficients,
                                                    exact_steps, b)))
    return result.x, result.nfe

  @jax.jit
  def adaptive(threshold):
    result = sample("ddim", None, VP, x0, num_steps=steps, guidance=Guidance(
        model.conditional(), lambda s, b: adaptive_guidance(s, model, scale, threshold, b,
                                                            "data")))
    return result.x, result.nfe

  cfg, coefficients = cfg_and_fit()
  rms = lambda x: float(jnp.sqrt(jnp.mean((x - cfg) ** 2)))
  rows = [("CFG", "-", 2 * steps, 0.0)]
  for exact in (1, 2, 5, 10):
    x, nfe = linear(coefficients, exact)
    rows.append(("LinearAG", f"{exact} exact steps", int(nfe), rms(x)))
  for threshold in (0.999, 0.99, 0.95, 0.9):
    x, nfe = adaptive(threshold)
    rows.append(("Adaptive Guidance", f"threshold {threshold:g}", int(nfe), rms(x)))
  return rows


def w2sd_figure(stats, strengths, windows, path):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(6, 4))
  for t_end, marker in zip(windows, "os"):
    mean = [stats[(t_end, s)][0] for s in strengths]
    std = [stats[(t_end, s)][1] for s in strengths]
    ax.errorbar(strengths, mean, std, marker=marker, capsize=3,
                label=f"W2SD, reflections for t <= {t_end:g}")
  for key, style in (("strong", "--"), ("weak", ":"), ("floor", "-.")):
    ax.axhline(stats[key][0], linestyle=style, color="gray")
    ax.text(strengths[-1], stats[key][0], f" {key}", va="bottom", ha="right")
  ax.set_xlabel("reflection strength lambda")
  ax.set_ylabel("W2 to the truth (mean over 3 seeds)")
  ax.set_title(f"W2SD on exact mixture fields ({STEPS} DDIM steps, VP)")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main(argv=None):
  args = common.parse_args(__doc__.splitlines()[0], argv)
  stats, raw, nfe, strengths, windows, n = w2sd_study(args.quick)
  suffix = "_quick" if args.quick else ""
  w2sd_figure(stats, strengths, windows,
              os.path.join(common.RESULTS_DIR, f"acceleration_w2sd{suffix}.png"))
  rows = [("strong (plain DDIM)", "-", STEPS, *stats["strong"]),
          ("strong (plain DDIM)", "-", 3 * STEPS, *stats["strong_75"]),
          ("weak (plain DDIM)", "-", STEPS, *stats["weak"])]
  rows += [(f"W2SD, t <= {t_end:g}", s, nfe[t_end], *stats[(t_end, s)])
           for t_end in windows for s in strengths]
  rows.append(("floor (truth vs truth)", "-", "-", *stats["floor"]))
  ag_rows = linear_ag_study(args.quick)
  best = min(((t_end, s) for t_end in windows for s in strengths),
             key=lambda k: stats[k][0])
  ordered = all(a < b < c for a, b, c in zip(raw[best], raw["strong"], raw["weak"]))
  figures = {"w2_strong": stats["strong"][0], "w2_weak": stats["weak"][0],
             "w2_w2sd_best": stats[best][0], "best_strength": best[1],
             "best_window_end": best[0], "ordered_every_seed": ordered,
             "linear_ag_rms_at_5_exact": ag_rows[3][3], "linear_ag_nfe_at_5_exact": ag_rows[3][2]}
  markdown = (f"W2SD on exact mixture fields ({n} samples, 3 seeds; W2 mean and std)\n\n"
              + common.markdown_table(("sampler", "lambda", "NFE", "W2 mean", "W2 std"),
                                      rows)
              + f"\n\nBest: lambda = {best[1]:g}, reflections for t <= {best[0]:g}; "
              f"W2SD < strong < weak on every seed: {ordered}.\n\n"
              "LinearAG vs Adaptive Guidance (two-class 2D mixture, CFG w = 2, 20 DDIM "
              "steps)\n\n" + common.markdown_table(
                  ("method", "setting", "evaluations per example", "RMS to CFG's samples"),
                  ag_rows))
  common.write_results("acceleration" + suffix, figures,
                       {"w2": {str(k): v for k, v in raw.items()}, "linear_ag": ag_rows},
                       markdown, args.quick,
                       "python -m benchmarks.acceleration" + (" --quick" if args.quick
                                                                else ""))


if __name__ == "__main__":
  main()
