"""Denoising score matching on Gaussian paths, in every prediction and standard weighting.

With x_t = alpha x1 + sigma z and the network predicting `prediction` (noise, data, score,
v or velocity; see `diffjax.fields`), the loss is
    E_{t, x1, z} w(t) |pred_hat(x_t, t) - pred(x1, z)|^2 / dim
("A Connection Between Score Matching and Denoising Autoencoders", Vincent, eq. 11;
"Score-Based Generative Modeling through SDEs", Song et al., eq. 7). All weightings are
stated on the noise residual, w_eps(t) |eps_hat - eps|^2, and moved to the chosen
prediction by the exact factor of `diffjax.fields.prediction_mse_factor`:
  prediction  w = 1 on the prediction's own residual (DDPM's "simple" loss for noise);
  likelihood  lambda(s) = g(s)^2 on the score residual (Song et al., "Maximum Likelihood
              Training of Score-Based Diffusion Models", Thm. 1), i.e. w_eps = 2 lambda'(t);
              with `importance_sampling` t is drawn with density proportional to lambda'(t)
              (log-SNR uniform; ibid., Sec. 5) and the weight becomes the constant
              2 (lambda(1) - lambda(0));
  snr         w_eps = alpha^2 / sigma^2 (the data-prediction residual);
  min_snr     w_eps = min(SNR, gamma) / SNR ("Efficient Diffusion Training via Min-SNR
              Weighting Strategy", Hang et al., eq. 6);
  edm         w_eps = (sigma~^2 + sigma_data^2) / sigma_data^2, EDM's lambda(sigma) on the
              denoiser residual (Karras et al., Table 1).
The source sample x0 ~ N(0, sigma(0)^2 I) of the path's prior is the noise: z = x0 /
sigma(0), so couplings of (x0, x1) carry over.

The `edm` objective trains EDM's preconditioned denoiser with log-normal noise levels.
"""
import jax
import jax.numpy as jnp

from diffjax import fields as fields_lib
from diffjax.core import require_gaussian, time_column
from diffjax.objectives.base import OBJECTIVES, Objective
from diffjax.objectives.time_sampling import TIME_SAMPLERS
from diffjax.registry import Registry

WEIGHTINGS = Registry("score-matching weighting")


@WEIGHTINGS.register("prediction")
def _prediction_weight(view, t, **_):
  return None  # No reweighting: the prediction's own residual.


@WEIGHTINGS.register("likelihood")
def _likelihood_weight(view, t, **_):
  return 2 * view.dlog_snr(t)


@WEIGHTINGS.register("snr")
def _snr_weight(view, t, **_):
  return jnp.exp(2 * view.log_snr(t))


@WEIGHTINGS.register("min_snr")
def _min_snr_weight(view, t, min_snr_gamma=5.0, **_):
  snr = jnp.exp(2 * view.log_snr(t))
  return jnp.minimum(snr, min_snr_gamma) / snr


@WEIGHTINGS.register("edm")
def _edm_weight(view, t, sigma_data=0.5, **_):
  level2 = jnp.exp(-2 * view.log_snr(t))
  return (level2 + sigma_data ** 2) / sigma_data ** 2


def _per_example_mse(residual):
  return jnp.mean(residual.reshape(residual.shape[0], -1) ** 2, axis=-1)


def log_snr_uniform_times(view, key, num_samples):
  """t = lambda^{-1}(u), u ~ U[lambda(0), lambda(1)]: density lambda'(t) / (lambda(1) -
  lambda(0)); view: a `GaussianView`."""
  lam = jax.random.uniform(key, (num_samples,), minval=view.log_snr(0.0),
                           maxval=view.log_snr(1.0))
  return view.time_at_log_snr(lam)


@OBJECTIVES.register("score_matching")
def denoising_score_matching(path, prediction="noise", weighting="prediction",
                             importance_sampling=False, time_sampler="uniform",
                             min_snr_gamma=5.0, sigma_data=0.5,
                             **time_sampler_options) -> Objective:
  """Denoising score matching on a Gaussian `path` (see the module docstring).

  Args:
    prediction: what the network outputs: noise, data, score, v or velocity.
    weighting: a name in `WEIGHTINGS`.
    importance_sampling: draw t log-SNR-uniformly (only with weighting="likelihood").
    time_sampler, **time_sampler_options: a `TIME_SAMPLERS` entry otherwise.
  """
  view = require_gaussian(path, "The score_matching objective")
  fields_lib.PREDICTIONS.get(prediction)
  weight_fn = WEIGHTINGS.get(weighting)
  sample_times = TIME_SAMPLERS.get(time_sampler)
  if importance_sampling and weighting != "likelihood":
    raise ValueError("importance_sampling is the likelihood weighting's time sampler; "
                     f"got weighting={weighting!r}.")
  log_snr_range = view.log_snr(1.0) - view.log_snr(0.0)

  def loss(apply_fn, params, key, x0, x1, cond=None):
    if importance_sampling:
      t = log_snr_uniform_times(view, key, x1.shape[0])
    else:
      t = sample_times(key, x1.shape[0], **time_sampler_options)
    xt, target = fields_lib.gaussian_target(view, t, x1, x0 / path.source_std, prediction)
    mse = _per_example_mse(apply_fn(params, xt, t, cond) - target)
    if importance_sampling:
      weight = jnp.full_like(t, 2 * log_snr_range)
    else:
      weight = weight_fn(view, t, min_snr_gamma=min_snr_gamma, sigma_data=sigma_data)
    if weight is not None:
      mse = mse * weight / fields_lib.prediction_mse_factor(view, t, prediction)
    return jnp.mean(mse), {}

  def fields(apply_fn, params, cond=None):
    return fields_lib.gaussian_fields(lambda x, t: apply_fn(params, x, t, cond), path,
                                      prediction)

  return Objective(loss, fields)


@OBJECTIVES.register("edm")
def edm_objective(path, sigma_data=0.5, p_mean=-1.2, p_std=1.2) -> Objective:
  """EDM training: preconditioned denoiser D, ln sigma~ ~ N(p_mean, p_std^2), loss
  lambda(sigma~) |D(x_t; sigma~) - x1|^2 with lambda = (sigma~^2 + sd^2) / (sigma~ sd)^2
  (Karras et al., eq. 8 and Table 1). sigma~ = sigma / alpha is the noise level of the
  scaled variable x_t / alpha; levels outside the path's range are clipped to it."""
  view = require_gaussian(path, "The edm objective")

  def loss(apply_fn, params, key, x0, x1, cond=None):
    log_level = p_mean + p_std * jax.random.normal(key, (x1.shape[0],))
    t = view.time_at_log_snr(-log_level)
    xt, _ = fields_lib.gaussian_target(view, t, x1, x0 / path.source_std, "data")
    denoised = fields_lib.edm_denoiser(apply_fn, params, view, sigma_data, cond)(xt, t)
    level2 = jnp.exp(-2 * view.log_snr(t))
    weight = (level2 + sigma_data ** 2) / (level2 * sigma_data ** 2)
    return jnp.mean(weight * _per_example_mse(denoised - x1)), {}

  def fields(apply_fn, params, cond=None):
    return fields_lib.gaussian_fields(
        fields_lib.edm_denoiser(apply_fn, params, view, sigma_data, cond), path, "data")

  return Objective(loss, fields)
