"""DomainStudio: few-shot fine-tuning that keeps the source's relative distances between
samples and enhances high-frequency detail ("DomainStudio: Fine-Tuning Diffusion Models
for Domain-Driven Image Generation using Limited Data", Zhu et al., section 3).

For a batch of target images noised to x_t, the adapted and the frozen source networks both
predict the clean image x1_hat (B, H, W, C). The loss is

  L = L_simple + lambda_img L_img + lambda_hf L_hf + lambda_hfmse L_hfmse

  L_img    relative distance preservation (the paper's pairwise similarity loss, after
           "Few-shot Image Generation via Cross-domain Correspondence", eq. 3): for each
           i, p_i = softmax_j!=i cos(x1_hat_i, x1_hat_j); sum_i KL(p_i^adapted || p_i^source)
           averaged over i: the adapted samples keep the source's similarity structure, so
           they do not collapse onto the few training images;
  L_hf     the same on the high-frequency part hf(x) = LH + HL + HH of a one-level Haar
           wavelet transform (the paper's eq. for hf);
  L_hfmse  ||hf(x1_hat^adapted) - hf(x1)||^2: the adapted predictions carry the training
           images' high-frequency detail.
L_simple is the velocity regression of `diffjax.adaptation.few_shot` (the paper's
epsilon-prediction DDPM loss, here on the source run's own parametrisation). With a batch of
B images each softmax is over B - 1 others, so the pairwise terms need B >= 3.
"""
import jax
import jax.numpy as jnp

from diffjax.adaptation.few_shot import (FEW_SHOT_METHODS, FewShotContext, FewShotMethod,
                                         draw_shots, noised, predict, squared_error)
from diffjax.errors import ConfigError

WEIGHTS = ("lambda_img", "lambda_hf", "lambda_hfmse")


def haar_subbands(x):
  """One level of the orthonormal 2-D Haar transform of x (B, H, W, C), H and W even:
  (LL, LH, HL, HH), each (B, H/2, W/2, C)."""
  a, b = x[:, 0::2, 0::2], x[:, 0::2, 1::2]
  c, d = x[:, 1::2, 0::2], x[:, 1::2, 1::2]
  return ((a + b + c + d) / 2, (a - b + c - d) / 2, (a + b - c - d) / 2,
          (a - b - c + d) / 2)


def high_frequency(x):
  """hf(x) = LH + HL + HH of `haar_subbands` (B, H/2, W/2, C): zero for a constant image."""
  _, lh, hl, hh = haar_subbands(x)
  return lh + hl + hh


def similarity_distributions(x):
  """(B, B) rows p_i = softmax over j != i of the cosine similarity of flattened x_i, x_j
  (the diagonal is 0)."""
  flat = x.reshape(x.shape[0], -1)
  unit = flat / jnp.maximum(jnp.linalg.norm(flat, axis=1, keepdims=True), 1e-8)
  cosine = unit @ unit.T
  off = ~jnp.eye(x.shape[0], dtype=bool)
  return jax.nn.softmax(jnp.where(off, cosine, -jnp.inf), axis=1)


def relative_distance_loss(source, adapted):
  """Mean over i of KL(p_i^adapted || p_i^source) of `similarity_distributions`; source
  and adapted (B, ...) with B >= 3. Zero when adapted = c * source for any c > 0."""
  p_src, p_ada = similarity_distributions(source), similarity_distributions(adapted)
  off = ~jnp.eye(source.shape[0], dtype=bool)
  ratio = jnp.log(jnp.where(off, p_ada, 1.0)) - jnp.log(jnp.where(off, p_src, 1.0))
  return jnp.mean(jnp.sum(jnp.where(off, p_ada * ratio, 0.0), axis=1))


def _domainstudio(context: FewShotContext):
  weights = {k: float(context.options[k]) for k in WEIGHTS}

  def terms(params, key):
    k_draw, k_noise = jax.random.split(key)
    x1, labels = draw_shots(context, k_draw)
    t, xt, velocity = noised(context.pipeline, k_noise, x1)
    adapted = predict(context.pipeline, params, labels, xt, t)
    source = jax.lax.stop_gradient(
        predict(context.pipeline, context.source_params, labels, xt, t).data)
    parts = {
        "flow_matching": jnp.mean(squared_error(adapted.velocity, velocity)),
        "lambda_img": relative_distance_loss(source, adapted.data),
        "lambda_hf": relative_distance_loss(high_frequency(source),
                                            high_frequency(adapted.data)),
        "lambda_hfmse": jnp.mean(squared_error(high_frequency(adapted.data),
                                               high_frequency(x1))),
    }
    value = parts["flow_matching"] + sum(weights[k] * parts[k] for k in WEIGHTS)
    return value, {"flow_matching": parts["flow_matching"], "relative_distance":
                   parts["lambda_img"], "relative_distance_hf": parts["lambda_hf"],
                   "high_frequency_mse": parts["lambda_hfmse"]}
  return terms


def check_domainstudio(options, batch_size):
  """The weights are >= 0 numbers; the pairwise terms need a batch of 3 or more."""
  for name in WEIGHTS:
    value = options.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
      raise ConfigError(f"method.{name}={value!r} must be a number >= 0 (a DomainStudio "
                        "loss weight).")
  if batch_size < 3:
    raise ConfigError(f"train.batch_size={batch_size}: DomainStudio's pairwise similarity "
                      "compares each image with the others of its batch; use 3 or more.")


FEW_SHOT_METHODS.register("domainstudio", FewShotMethod(
    "domainstudio", _domainstudio, check_domainstudio,
    paper="DomainStudio: Fine-Tuning Diffusion Models for Domain-Driven Image Generation "
          "using Limited Data"))
