"""Distribution-matching distillation with an f-divergence: f-distill (and VSD / DMD).

"One-step Diffusion Models with f-Divergence Distribution Matching" (Xu, Nie & Vahdat,
2025), eq. 6 and Algorithm 1; reverse KL is "One-step Diffusion with Distribution Matching
Distillation" (Yin et al., 2024, eq. 7) / variational score distillation. Three players
update in this order inside one engine step (`diffjax.train.task`, "Players"):

  fake           denoising score matching of the fake network on generator samples;
  discriminator  binary cross entropy, noised teacher samples (1) against noised generator
                 samples (0), on the fake network's features (`discriminator`); only for a
                 divergence whose weight reads the ratio (not reverse KL);
  generator      the gradient E_t[w(t) h(r) (s_fake(x_t, t) - s_teacher(x_t, t)) dx_t/dtheta]
                 with x_t = alpha(t) G(z) + sigma(t) eps, h(r) = f''(r) r^2 normalised over
                 the batch (`divergences`), r = exp(discriminator logit).

Time weights w(t) (`TIME_WEIGHTS`): "dmd" is DMD's eq. 8 in score form,
w = sigma^2 / (alpha^2 mean_d|x - D_teacher(x_t)|) (per sample), so that w (s_fake -
s_teacher) dx_t/dtheta = (D_fake - D_teacher) / mean|x - D_teacher| dx/dtheta; "unit" is
w = 1, the bare gradient of D_f(p_t || q_t) at each t (the closed-form tests).
diffjax time: t = 0 noise, t = 1 data (the papers' t is 1 - t).
"""
import dataclasses
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp

from diffjax.core import Fields, time_column
from diffjax.distillation.discriminator import (Head, discriminator_loss, layer_output,
                                                ratio_from_logits)
from diffjax.distillation.divergences import Divergence, batch_normalized, binned_ratio
from diffjax.distillation.score_distillation import (ScoreDistillation, direction_loss,
                                                     per_example_mean_abs)
from diffjax.errors import ConfigError

sg = jax.lax.stop_gradient


def unit_weight(view, t, x, teacher_data):
  del view, teacher_data
  return jnp.ones((x.shape[0],), x.dtype) + 0 * t


def dmd_weight(view, t, x, teacher_data):
  """sigma^2 / (alpha^2 mean_d|x - D_teacher(x_t)|), (B,) (DMD, eq. 8)."""
  alpha, sigma = view.alpha(t), view.sigma(t)
  norm = jnp.maximum(per_example_mean_abs(x - teacher_data), 1e-4)
  return sigma ** 2 / (jnp.maximum(alpha, 1e-4) ** 2 * norm)


TIME_WEIGHTS = {"unit": unit_weight, "dmd": dmd_weight}


def check_time_weight(name: str):
  if name not in TIME_WEIGHTS:
    raise ConfigError(f"distill.time_weight={name!r} is not one of: "
                      f"{', '.join(sorted(TIME_WEIGHTS))}.")


def fake_params_of(params, context):
  """The fake network's parameters: params["fake"] (DisBack shifts them, `disback`)."""
  del context
  return params["fake"]


@dataclasses.dataclass(frozen=True)
class FDistill:
  """The losses of the three players (module docstring).

  Attributes:
    core: the shared `ScoreDistillation` parts (generator, fake pipeline, source, times).
    teacher_fields: teacher_fields(labels, context) -> completed `Fields` (score and data)
      of the teacher the generator matches; context is the phase's (DisBack's
      intermediate teachers), None otherwise.
    divergence: the `Divergence` (its weight h(r)).
    head: the discriminator's `Head`; None when the divergence does not read the ratio.
    feature_layer: the fake network's layer the head reads (`layer_output`).
    time_weight: a `TIME_WEIGHTS` name.
    max_log_ratio: |log r| clip (`ratio_from_logits`).
    ratio_bins: per-time normalisation of r over this many bins (0: none).
    normalize: normalise h over the batch (the paper's; off only in closed-form tests).
    train_features: the discriminator's loss also trains the fake network's features
      (DMD2's shared encoder); otherwise it trains its head alone.
    fake_params: fake_params(params, context) -> the fake network's parameters.
  """
  core: ScoreDistillation
  teacher_fields: Callable[[Any, Any], Fields]
  divergence: Divergence
  head: Optional[Head] = None
  feature_layer: str = ""
  time_weight: str = "dmd"
  max_log_ratio: float = 10.0
  ratio_bins: int = 0
  normalize: bool = True
  train_features: bool = False
  fake_params: Callable[[Any, Any], Any] = fake_params_of

  def __post_init__(self):
    check_time_weight(self.time_weight)
    if self.divergence.uses_ratio and self.head is None:
      raise ValueError(f"The {self.divergence.name} weight reads the density ratio: give "
                       "a discriminator head.")

  @property
  def networks(self):
    """The networks the players train, in update order."""
    return ("fake", "discriminator", "generator") if self.divergence.uses_ratio else (
        "fake", "generator")

  def fake_outputs(self, fake_params, x_t, t, labels):
    """(the fake network's completed predictions, its features (B, F) or None)."""
    evaluate = self.core.fake_fields(fake_params, labels).evaluate
    if self.head is None:
      return evaluate(x_t, t), None
    return layer_output(evaluate, self.feature_layer)(x_t, t)

  def ratio(self, params, context, x_t, t, labels):
    """r = p_t / q_t (B,) at x_t from the discriminator (no gradient)."""
    _, features = self.fake_outputs(sg(self.fake_params(params, context)), x_t, t, labels)
    return ratio_from_logits(sg(self.head.apply(params["discriminator"], features)),
                             self.max_log_ratio)

  def fake_loss(self, params, key, shard, step, batch, context=None):
    del step, batch
    return self.core.fake_loss(self.fake_params(params, context), sg(params["generator"]),
                               key, shard)

  def discriminator_loss(self, params, key, shard, step, batch, context):
    """BCE on noised teacher samples (the phase context's "teacher_samples" and
    "teacher_labels", `teacher_cache`) against noised generator samples."""
    del step, batch
    k_gen, k_real, k_fake_t, k_real_t = jax.random.split(key, 4)
    x, labels = self.core.generate(sg(params["generator"]), k_gen, shard)
    cache = context["teacher_samples"]
    index = jax.random.randint(k_real, (x.shape[0],), 0, cache.shape[0])
    real = shard(cache[index])
    real_labels = None if labels is None else context["teacher_labels"][index]
    t_fake, x_fake, _ = self.core.noise(k_fake_t, sg(x))
    t_real, x_real, _ = self.core.noise(k_real_t, real)
    fake_params = self.fake_params(params, context)
    if not self.train_features:
      fake_params = sg(fake_params)
    both = lambda u, v: None if u is None else jnp.concatenate([u, v])
    _, features = self.fake_outputs(fake_params, both(x_real, x_fake), both(t_real, t_fake),
                                    both(real_labels, labels))
    logits = self.head.apply(params["discriminator"], features)
    n = x.shape[0]
    loss = discriminator_loss(logits[:n], logits[n:])
    return loss, {"real_logit": jnp.mean(logits[:n]), "fake_logit": jnp.mean(logits[n:])}

  def generator_loss(self, params, key, shard, step, batch, context=None):
    """The f-divergence's generator gradient as a loss (module docstring)."""
    del step, batch
    k_gen, k_noise = jax.random.split(key)
    x, labels = self.core.generate(params["generator"], k_gen, shard)
    t, x_t, _ = self.core.noise(k_noise, x)
    held = sg(x_t)
    teacher = self.teacher_fields(labels, context).evaluate(held, t)
    fake, _ = self.fake_outputs(sg(self.fake_params(params, context)), held, t, labels)
    weight = TIME_WEIGHTS[self.time_weight](self.core.view, t, sg(x), teacher.data)
    aux = {}
    if self.divergence.uses_ratio:
      r = self.ratio(params, context, held, t, labels)
      h = self.divergence.weight(binned_ratio(r, t, self.ratio_bins))
      h = batch_normalized(h) if self.normalize else h
      aux = {"ratio_mean": jnp.mean(r), "h_max": jnp.max(h)}
      weight = weight * h
    gap = fake.score - teacher.score
    loss = direction_loss(x_t, time_column(weight, x) * gap)
    return loss, {"score_gap": jnp.mean(per_example_mean_abs(gap)), **aux}
