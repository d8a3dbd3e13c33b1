"""Studies of what a trained model learned (`diffjax.diagnostics`): each trains a model with
the shared pipeline and measures in its evaluation.

  hallucination        a mixture of narrow modes (data.means, data.std); evaluation samples
                       eval.num_samples points recording x1_hat, counts samples farther
                       than eval.support_radius (in component stds) from every mode, fits
                       the detector threshold on one half and reports the share of
                       hallucinations removed / in-support samples kept on the other half
                       (also for each of the optional eval.windows),
                       and the W2 of the in-support samples to the true mixture beside its
                       sampling floor; a histogram of detector scores and of the samples.
  intrinsic_dimension  data on a known manifold (`diffjax.data.manifolds`) or the digits;
                       the rank of the learned score's Jacobian near data points at
                       eval.noise_levels, and its asymmetry (conservativity).
  h_space              (experiments.h_space) the digits U-Net's bottleneck: PCA, Jacobian
                       and supervised directions, BoundaryDiffusion edits.
"""
import jax
import jax.numpy as jnp
import numpy as np

from diffjax.data import mode_mixture
from diffjax.data.manifolds import manifold_data, manifold_data_names
from diffjax.diagnostics import hallucination as hal
from diffjax.diagnostics import intrinsic_dimension as idim
from diffjax.diagnostics import plots
from diffjax.errors import ConfigError
from diffjax.pipeline import (SAMPLE_KEYS, DataSpec, build_pipeline, component_options,
                              pipeline_record)
from diffjax.solvers import SAMPLERS
from diffjax.train import Task, parallel
from diffjax.train.validation import Key, check_keys

HALLUCINATION_KEYS = (
    Key("data.std", "float", 0.0, open_low=True, meaning="std of every mode"),
    Key("eval.support_radius", "float", 0.0, open_low=True,
        meaning="in-support radius around a mode, in mode stds"),
    Key("eval.window", "int", 2, meaning="final sampler steps the detector reads"),
)


def build_hallucination(config) -> Task:
  """The hallucination study of the module docstring."""
  check_keys(config, HALLUCINATION_KEYS)
  mixture = mode_mixture(config.data.means, config.data.std)
  dim = mixture.dim
  pipeline = build_pipeline(config, DataSpec((dim,)))
  num_steps = config.sample.num_steps
  if config.eval.window > num_steps:
    raise ConfigError(f"eval.window={config.eval.window} must be at most "
                      f"sample.num_steps={num_steps}.")
  if SAMPLERS.get(config.sample.solver).adaptive:
    raise ConfigError(f"sample.solver={config.sample.solver!r} is adaptive; the detector "
                      "reads a fixed grid of steps: use e.g. ancestral, ddim, euler_maruyama.")
  windows = tuple(config.eval.get("windows", ()))
  for window in windows:
    valid = isinstance(window, int) and not isinstance(window, bool)
    if not (valid and 2 <= window <= num_steps):
      raise ConfigError(f"eval.windows={list(windows)}: each window must be an integer in "
                        f"[2, sample.num_steps={num_steps}]; got {window!r}.")
  radius = config.eval.support_radius * config.data.std
  options = component_options(config.sample, SAMPLE_KEYS)
  num = config.eval.num_samples

  def loss(params, key, shard, step):
    del step
    k_data, k_loss = jax.random.split(key)
    return pipeline.loss(params, k_loss, shard, mixture.sample(k_data, config.train.batch_size))

  @jax.jit
  def generate(params, key):
    k_source, k_sampler = jax.random.split(key)
    solution = hal.sample_with_data_predictions(
        config.sample.solver, pipeline.fields(params), pipeline.path,
        pipeline.source(k_source, num), k_sampler, num_steps=num_steps, **options)
    scores = jnp.stack([hal.trajectory_variance(solution.records, w)
                        for w in (config.eval.window,) + windows])
    return solution.x, scores

  def study(params, key):
    x, all_scores = (np.asarray(parallel.to_host(a)) for a in generate(params, key))
    scores = all_scores[0]
    hallucinated = ~np.asarray(hal.in_support(x, mixture.means, radius))
    values = {"hallucination_rate": float(hallucinated.mean()),
              "num_hallucinated": int(hallucinated.sum())}
    if not hallucinated.all():
      values.update(hal.in_support_w2(x, hallucinated, mixture.sample,
                                      jax.random.fold_in(key, 1)))
    figures = {"samples": plots.mode_samples_figure(
        x, mixture.means, hallucinated,
        f"{dim}D modes: {hallucinated.mean():.2%} of {num} samples hallucinated")}
    half = num // 2
    rates = hal.held_out_rates(scores, hallucinated, half)
    if rates is not None:
      values.update(rates)
      figures["detector"] = plots.detector_histogram_figure(
          scores[half:], hallucinated[half:], rates["threshold"],
          f"held-out half: {rates['removed']:.1%} of hallucinations removed, "
          f"{rates['kept']:.1%} in-support kept")
    for window, window_scores in zip(windows, all_scores[1:]):
      rates = hal.held_out_rates(window_scores, hallucinated, half)
      if rates is not None:
        values.update({f"removed_window{window}": rates["removed"],
                       f"kept_window{window}": rates["kept"]})
    return values, figures, {"samples": x, "scores": scores, "hallucinated": hallucinated}

  def evaluate(params, key):
    values, figures, _ = study(params, key)
    return values, figures

  def sample(params, key):
    _, figures, arrays = study(params, key)
    return arrays, figures

  return Task(init_params=pipeline.model.init, loss=loss, evaluate=evaluate, sample=sample,
              record=pipeline_record(pipeline),
              batch_size=config.train.batch_size)






# ----- intrinsic dimension -----

INTRINSIC_KEYS = (
    Key("data.name", "name", names=manifold_data_names),
    Key("eval.num_points", "int", 1, meaning="data points whose Jacobian is measured"),
    Key("eval.threshold", "float", 0.0, 1.0, open_low=True, open_high=True,
        meaning="vanishing level of sigma^2 times a singular value"),
)


def build_intrinsic_dimension(config) -> Task:
  """The intrinsic-dimension study of the module docstring."""
  check_keys(config, INTRINSIC_KEYS)
  draw, dim, truth, reference = manifold_data(config.data.name)
  noise_levels = tuple(float(s) for s in config.eval.noise_levels)
  if not noise_levels or min(noise_levels) <= 0:
    raise ConfigError(f"eval.noise_levels={noise_levels} must be positive noise-to-signal "
                      "ratios sigma / alpha, e.g. (0.02, 0.05, 0.1).")
  pipeline = build_pipeline(config, DataSpec((dim,)))
  view = pipeline.path.gaussian
  if view is None:
    raise ConfigError(f"The intrinsic-dimension study needs a Gaussian path; got "
                      f"path.name={config.path.name!r}.")
  count = min(config.eval.num_points, len(reference))
  points = jnp.asarray(reference[:count])
  reference_dimension = idim.two_nn_dimension(reference) if truth is None else None

  def loss(params, key, shard, step):
    del step
    k_data, k_loss = jax.random.split(key)
    return pipeline.loss(params, k_loss, shard, draw(k_data, config.train.batch_size))

  @jax.jit
  def jacobians(params, key, ratio):
    t = view.time_at_log_snr(-jnp.log(ratio))
    alpha, sigma = view.alpha(t), view.sigma(t)
    x = alpha * points + sigma * jax.random.normal(key, points.shape)
    score = lambda y: pipeline.fields(params).score(y, t)
    return idim.score_jacobians(score, x), sigma

  def evaluate(params, key):
    values, spectra = {}, {}
    if reference_dimension is not None:
      values["two_nn_dimension"] = reference_dimension
    for ratio in noise_levels:
      jac, sigma = jacobians(params, key, ratio)
      estimate = np.asarray(idim.estimate_dimension(jac, sigma, config.eval.threshold))
      gap = np.asarray(idim.largest_gap_dimension(jac))
      tag = f"{ratio:g}"
      values[f"dimension_median_{tag}"] = float(np.median(estimate))
      values[f"dimension_mean_{tag}"] = float(np.mean(estimate))
      values[f"gap_dimension_median_{tag}"] = float(np.median(gap))
      values[f"asymmetry_{tag}"] = float(np.mean(idim.jacobian_asymmetry(jac)))
      if truth is not None:
        values[f"within_one_{tag}"] = float(np.mean(np.abs(estimate - truth) <= 1))
      spectra[tag] = np.asarray(sigma ** 2 * idim.singular_values(jac))
    title = (f"{config.data.name}: D = {dim}, true d = {truth}" if truth is not None else
             f"{config.data.name}: D = {dim}, TwoNN d = {reference_dimension:.1f}")
    return values, {"spectra": plots.spectra_figure(spectra, config.eval.threshold, title)}

  def sample(params, key):
    values, figures = evaluate(params, key)
    return {k: np.asarray(v) for k, v in values.items()}, figures

  return Task(init_params=pipeline.model.init, loss=loss, evaluate=evaluate, sample=sample,
              record=pipeline_record(pipeline),
              batch_size=config.train.batch_size)


