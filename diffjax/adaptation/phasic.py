"""Phasic content fusing with directional distribution consistency ("Phasic Content Fusing
Diffusion Model with Directional Distribution Consistency for Few-Shot Model Adaption",
Hu et al., sections 3.2-3.3), as diffjax reads it.

Diffusion time is split into phases (`diffjax.adaptation.intervals`, method.intervals)
and each phase learns from one teacher (method.phases, "source" or "target"):
  source   the adapted velocity at (x_t, t) is regressed onto the frozen source network's
           velocity there: content and structure come from the source model;
  target   flow matching on the few-shot target images: the target's style.
x_t is always a target image noised on the run's path, so both phases see the same inputs.
diffjax's time runs from noise (t = 0) to data (t = 1): the paper's "large t" (content)
phase is an interval near t = 0 here, its "small t" (detail, style) phase one near t = 1,
e.g. intervals ((0.0, 0.3), (0.3, 1.0)) with phases ("source", "target").

Directional distribution consistency (DDC): in the features E of an encoder, the
direction from the source domain to the target, w = mean E(target shots) - mean E(source
images), should be the shift between what the source and the adapted models make of the
same x_t: on the examples of "target" phases,
  L_ddc = mean || E(x1_hat^adapted) - E(x1_hat^source) - w ||^2,
with weight method.ddc_weight. With every phase "source" the loss is exactly zero at the
source's parameters (so fine-tuning leaves them unchanged).
"""
import jax
import jax.numpy as jnp

from diffjax.adaptation.few_shot import (FEW_SHOT_METHODS, FewShotContext, FewShotMethod,
                                         draw_shots, noised, predict, squared_error)
from diffjax.adaptation.intervals import check_intervals, interval_index
from diffjax.errors import ConfigError

TEACHERS = ("source", "target")


def _phasic(context: FewShotContext):
  options = context.options
  boundaries = check_intervals(options["intervals"], "method.intervals")
  from_target = jnp.asarray([p == "target" for p in options["phases"]])
  ddc_weight = float(options["ddc_weight"])
  use_ddc = ddc_weight > 0 and context.encoder is not None

  def terms(params, key):
    k_draw, k_noise = jax.random.split(key)
    x1, labels = draw_shots(context, k_draw)
    t, xt, velocity = noised(context.pipeline, k_noise, x1)
    target_phase = from_target[interval_index(t, boundaries)]
    adapted = predict(context.pipeline, params, labels, xt, t)
    source = jax.tree.map(jax.lax.stop_gradient, predict(
        context.pipeline, context.source_params, labels, xt, t))
    column = target_phase.reshape((-1,) + (1,) * (velocity.ndim - 1))
    regression = jnp.mean(squared_error(adapted.velocity,
                                        jnp.where(column, velocity, source.velocity)))
    aux = {"velocity_regression": regression,
           "target_phase_fraction": jnp.mean(target_phase.astype(jnp.float32))}
    if not use_ddc:
      return regression, aux
    direction = jnp.mean(context.encoder(context.shots), axis=0) - context.source_mean
    shift = (context.encoder(adapted.data) - jax.lax.stop_gradient(
        context.encoder(source.data)) - direction[None])
    per_example = jnp.mean(shift ** 2, axis=1)
    weight = target_phase.astype(jnp.float32)
    ddc = jnp.sum(weight * per_example) / jnp.maximum(jnp.sum(weight), 1.0)
    return regression + ddc_weight * ddc, {**aux, "ddc": ddc}
  return terms


def check_phasic(options, batch_size):
  """intervals tile [0, 1]; one phase teacher ("source" / "target") per interval;
  ddc_weight >= 0."""
  del batch_size
  boundaries = check_intervals(options.get("intervals"), "method.intervals")
  phases = tuple(options.get("phases") or ())
  if len(phases) != len(boundaries) - 1 or any(p not in TEACHERS for p in phases):
    raise ConfigError(f"method.phases={phases!r} must name one of {', '.join(TEACHERS)} "
                      f"for each of the {len(boundaries) - 1} method.intervals.")
  weight = options.get("ddc_weight")
  if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
    raise ConfigError(f"method.ddc_weight={weight!r} must be a number >= 0.")


FEW_SHOT_METHODS.register("phasic", FewShotMethod(
    "phasic", _phasic, check_phasic, needs_encoder=True,
    paper="Phasic Content Fusing Diffusion Model with Directional Distribution Consistency "
          "for Few-Shot Model Adaption"))
