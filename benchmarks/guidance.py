"""Guidance: the cost of a CFG step, and the closed-form studies behind the README.

  python -m benchmarks.guidance [--quick]

cfg_step_over_single_call: a 20-step DDIM run with classifier-free guidance (conditional
and unconditional predictions from ONE network call on 2B examples) against the same
unguided run on a batch of 2B (one call on 2B): the digits DiT of configs/images/digits.py
(random weights), B = 64; median of interleaved rounds. Target <= 1.1.
Also measured on exact fields (`diffjax.data`): DPS's mean and covariance error on the
linear-Gaussian problem of tests/test_guidance.py per step size zeta; Adaptive Guidance's
saved calls and energy distance to the exact conditional on the two-class 2D mixture per
threshold (CFG w = 2 for reference); SVDD's mean against the tilted target per M.
"""
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from diffjax.conditioning import class_condition
from diffjax.data import GaussianMixture, mixture_oracle, two_class_mixture
from diffjax.guidance import (ConditionalModel, Guidance, adaptive_guidance,
                              classifier_free, dps, posterior_mean_value,
                              saved_fraction, svdd)
from diffjax.metrics import energy_distance
from diffjax.models import build_model
from diffjax.objectives import build_objective
from diffjax.paths import build_path
from diffjax.solvers import sample


def cfg_cost(quick):
  path = build_path("rectified_flow")
  model = build_model("dit", (8, 8, 1), patch_size=2, hidden_dim=96, depth=4, num_heads=4,
                      num_classes=10)
  objective = build_objective("flow_matching", path)
  params = model.init(jax.random.PRNGKey(0))
  b = 64
  fields_of = lambda cond: objective.fields(model.apply, params, cond)
  labels = jnp.arange(b) % 10
  cond, null = class_condition(labels, 10)
  guided = jax.jit(lambda x0: sample("ddim", classifier_free(
      ConditionalModel(fields_of, cond, null), 3.0), path, x0, num_steps=20).x)
  plain = jax.jit(lambda x0: sample("ddim", fields_of(jnp.concatenate([cond, null])), path,
                                    x0, num_steps=20).x)
  x_small = jax.random.normal(jax.random.PRNGKey(1), (b, 8, 8, 1))
  x_big = jnp.concatenate([x_small, x_small])
  guided(x_small).block_until_ready(), plain(x_big).block_until_ready()
  ratios, times = [], []
  for _ in range(5 if quick else 20):
    t0 = time.perf_counter(); guided(x_small).block_until_ready(); tg = time.perf_counter() - t0
    t0 = time.perf_counter(); plain(x_big).block_until_ready(); tp = time.perf_counter() - t0
    ratios.append(tg / tp); times.append((tg, tp))
  return float(np.median(ratios)), np.median(np.array(times), 0).tolist()


def dps_study(quick):
  vp = build_path("vp")
  cov = jnp.array([[1.0, 0.6], [0.6, 1.0]])
  prior = GaussianMixture(jnp.ones(1), jnp.zeros((1, 2)), cov[None])
  a, noise_std, y = jnp.array([[1.0, 0.0]]), 0.3, jnp.array([1.5])
  gain = cov @ a.T / (a @ cov @ a.T + noise_std ** 2)
  mean, post = np.asarray(gain @ y), np.asarray(cov - gain @ a @ cov)
  fields = mixture_oracle(vp, prior).fields()
  n = 1000 if quick else 4000
  x0 = vp.source_sample(jax.random.PRNGKey(0), (n, 2))
  ys = jnp.broadcast_to(y, (n, 1))
  rows = []
  for zeta in (0.0, 0.025, 0.05, 0.1, 0.2):
    g = Guidance(wrap=lambda s, sampler, z=zeta: dps(s, lambda x: x @ a.T, ys, z, sampler))
    x = np.asarray(sample("ancestral", fields, vp, x0, jax.random.PRNGKey(1), num_steps=100,
                          guidance=g).x)
    rows.append((zeta, float(np.max(np.abs(x.mean(0) - mean))),
                 float(np.max(np.abs(np.cov(x.T) - post)))))
  return rows


def adaptive_study(quick):
  vp = build_path("vp")
  task = two_class_mixture(separation=1.0, std=0.7)
  n = 1000 if quick else 4000
  labels = jnp.arange(n) % 2
  cond, null = class_condition(labels, 2)
  model = ConditionalModel(task.fields_of(vp), cond, null)
  x0 = vp.source_sample(jax.random.PRNGKey(0), (n, 2))
  exact = np.asarray(task.sample_class(jax.random.PRNGKey(9), labels))
  steps = 20
  rows = []
  for threshold in (1.0, 0.999, 0.99, 0.95, 0.9):
    g = Guidance(model.conditional(), lambda s, sampler, th=threshold: adaptive_guidance(
        s, model, 2.0, th, sampler, "data"))
    result = sample("ddim", None, vp, x0, num_steps=steps, guidance=g)
    x = np.asarray(result.x)
    rows.append((threshold, saved_fraction(result.nfe, steps),
                 float(energy_distance(x[labels == 1], exact[labels == 1]))))
  return rows


def svdd_study(quick):
  vp = build_path("vp")
  prior = GaussianMixture(jnp.ones(1), jnp.array([[0.5]]), jnp.ones((1, 1, 1)))
  fields = mixture_oracle(vp, prior).fields()
  x0 = vp.source_sample(jax.random.PRNGKey(0), (2000, 1))
  rows = []
  for m in ((1, 8) if quick else (1, 4, 8, 16, 32, 64)):
    g = Guidance(wrap=lambda s, sampler, m=m: svdd(
        s, posterior_mean_value(lambda x1: x1[:, 0]), m, 1.0, shared_evaluation=True))
    x = np.asarray(sample("ancestral", fields, vp, x0, jax.random.PRNGKey(1), num_steps=100,
                          guidance=g).x)
    rows.append((m, float(x.mean()), float(x.var())))
  return rows


def main(argv=None):
  args = common.parse_args(__doc__.splitlines()[0], argv)
  ratio, (t_guided, t_plain) = cfg_cost(args.quick)
  dps_rows, ag_rows, svdd_rows = dps_study(args.quick), adaptive_study(args.quick), svdd_study(args.quick)
  best = min(dps_rows[1:], key=lambda r: r[1])
  figures = {"cfg_step_over_single_call": ratio,
             "dps_best_zeta": best[0], "dps_mean_error_at_best": best[1],
             "dps_cov_error_at_best": best[2],
             "adaptive_saved_fraction_at_0.95": [r[1] for r in ag_rows if r[0] == 0.95][0],
             "svdd_mean_largest_m": svdd_rows[-1][1]}
  markdown = "\n\n".join([
      f"CFG run / unguided run on 2B: **{ratio:.3f}** ({t_guided * 1e3:.1f} vs "
      f"{t_plain * 1e3:.1f} ms for 20 DDIM steps, B = 64)",
      "DPS (linear-Gaussian, 100 ancestral steps)\n\n" + common.markdown_table(
          ("zeta", "max |mean error|", "max |cov error|"), dps_rows),
      "Adaptive Guidance (two-class mixture, CFG w = 2, 20 DDIM steps)\n\n" +
      common.markdown_table(("threshold", "saved fraction", "energy distance to exact "
                             "conditional (class 1)"), ag_rows),
      "SVDD (prior N(0.5, 1), r = x, alpha = 1: target N(1.5, 1))\n\n" +
      common.markdown_table(("M", "mean", "variance"), svdd_rows)])
  common.write_results("guidance" + ("_quick" if args.quick else ""), figures,
                       {"dps": dps_rows, "adaptive": ag_rows, "svdd": svdd_rows},
                       markdown, args.quick,
                       "python -m benchmarks.guidance" + (" --quick" if args.quick else ""))


if __name__ == "__main__":
  main()
