"""Reconstruction guidance for linear inverse problems y = A x1 + noise: DPS.

"Diffusion Posterior Sampling for General Noisy Inverse Problems" (Chung et al. 2023,
Algorithm 1 and App. C.2): after each sampler step from x_i,
    x_{i+1} <- x'_{i+1} - zeta_i grad_{x_i} |y - A(x1_hat(x_i))|^2,
    zeta_i = zeta / |y - A(x1_hat(x_i))|   (per example),
the gradient taken through the model's data prediction x1_hat (one forward and one
backward pass; the sampler's own step reuses the forward pass, so it must evaluate once
per step at the current state: its declaration's `evaluates_once_at_start`). `dps` is
that stepper.
`reconstruction_guidance` is the same approximation p(y | x_t) ~ N(y; A x1_hat(x_t),
noise_std^2 I) as a change of the score (Song et al.'s "Pseudoinverse-guided" family
without the pseudoinverse; the DPS paper's eq. 16), which composes with any sampler.

Operators are functions A(x (B, ...)) -> (B, ...) linear in x: `inpainting`, `blur`,
`subsample` below, or any function of the user's. `check_operator` refuses an operator
whose output does not have y's shape.
"""
import jax
import jax.numpy as jnp

from diffjax.core import Stepper, require_gaussian
from diffjax.errors import ConfigError
from diffjax.fields import gaussian_predictions
from diffjax.guidance.likelihood import denoiser_guidance
from diffjax.guidance.method import (GUIDANCE_METHODS, Cost, GuidanceMethod, check_number,
                                     require_context)
from diffjax.guidance.model import (GAUSSIAN_NAMES, check_one_evaluation, frozen_fields,
                                    traced)
from diffjax.solvers import Guidance


def inpainting(mask):
  """A x = mask * x: mask (1 or B, ...) of 0/1 (1 = observed), shaped like the data."""
  mask = jnp.asarray(mask, jnp.float32)
  return lambda x: x * mask


def blur(kernel):
  """A x = the 2D convolution of each channel of images x (B, H, W, C) with the (k, k)
  kernel, zero-padded to the same size."""
  kernel = jnp.asarray(kernel, jnp.float32)

  def apply(x):
    channels = x.shape[-1]
    weights = jnp.broadcast_to(kernel[:, :, None, None], kernel.shape + (1, channels))
    return jax.lax.conv_general_dilated(
        x, weights, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=channels)
  return apply


def subsample(factor):
  """A x = every `factor`-th pixel of images x (B, H, W, C) along both axes."""
  if not (isinstance(factor, int) and factor >= 1):
    raise ConfigError(f"The subsampling factor must be an integer >= 1; got {factor!r}.")
  return lambda x: x[:, ::factor, ::factor]


def check_operator(operator, x_shape, y):
  """Refuses an operator whose output for states of shape x_shape differs from y's."""
  out = jax.eval_shape(operator, jax.ShapeDtypeStruct(tuple(x_shape), jnp.float32))
  if tuple(out.shape) != tuple(jnp.shape(y)):
    raise ConfigError(f"The measurement operator maps states {tuple(x_shape)} to "
                      f"{tuple(out.shape)}, but the measurements y have shape "
                      f"{tuple(jnp.shape(y))}: they must match.")


def _residual_norm(operator, y):
  def norm(x1):
    r = (y - operator(x1)).reshape(y.shape[0], -1)
    return jnp.sqrt(jnp.sum(r ** 2, -1) + 1e-12)
  return norm


def check_dps_target(on):
  if on not in ("state", "data"):
    raise ConfigError(f"DPS steps on the 'state' or on the 'data' prediction; got "
                      f"on={on!r}.")


def check_step_size(step_size):
  if not traced(step_size) and not step_size >= 0:
    raise ConfigError(f"The DPS step size zeta must be >= 0; got {step_size}.")


def dps(base: Stepper, operator, y, step_size, sampler, on="state", path=None) -> Stepper:
  """DPS (Chung et al., Algorithm 1) around `base`, the stepper of `sampler` (its bound
  declaration or registered name, which must evaluate once at the start of a step):
  step_size zeta > 0; y (B, ...) the measurements of each sample.

  on="state" is the paper's step on x_t, with the gradient through the denoiser;
  on="data" takes the same normalised step on the denoised estimate x1_hat instead (no
  network gradient, as in "Manifold Preserving Guided Diffusion", He et al. 2024) and
  lets the sampler's own step (needs a Gaussian `path`) renoise from the corrected
  estimate. The normalised step zeta grad |r|^2 / |r| has length 2 zeta, along A^T r / |r|
  (r = y - A x1_hat)."""
  check_step_size(step_size)
  check_dps_target(on)
  check_one_evaluation(sampler, "DPS")
  norm = _residual_norm(operator, y)
  if on == "data":
    view = require_gaussian(path, "DPS on the data prediction")

    def data_step(fields, x, state, t, t_next, key):
      check_operator(operator, x.shape, y)
      out = fields.evaluate(x, t)
      corrected = out.data - step_size * jax.grad(lambda z: 2 * jnp.sum(norm(z)))(out.data)
      predictions = gaussian_predictions(corrected, x, t, view, "data")
      return base.step(frozen_fields(predictions, GAUSSIAN_NAMES), x, state, t, t_next,
                       key)

    return Stepper(base.init, data_step, tuple(dict.fromkeys(base.needs + ("data",))))

  def step(fields, x, state, t, t_next, key):
    check_operator(operator, x.shape, y)
    data_of = lambda z: (lambda out: (out.data, out))(fields.evaluate(z, t))
    x1_hat, pullback, out = jax.vjp(data_of, x, has_aux=True)
    # zeta / |r| * grad |r|^2 = 2 zeta grad |r|.
    gradient = pullback(jax.grad(lambda z: 2 * jnp.sum(norm(z)))(x1_hat))[0]
    x_next, state, nfe = base.step(frozen_fields(out, fields.names), x, state, t, t_next,
                                   key)
    return x_next - step_size * gradient, state, nfe

  return Stepper(base.init, step, tuple(dict.fromkeys(base.needs + ("data",))))


def check_noise_std(noise_std):
  if not traced(noise_std) and not noise_std > 0:
    raise ConfigError(f"The measurement noise std must be > 0; got {noise_std}.")


def reconstruction_guidance(fields, path, operator, y, noise_std=1.0, scale=1.0):
  """Fields with score s + scale grad_x log N(y; A x1_hat(x), noise_std^2 I)."""
  check_noise_std(noise_std)
  energy = lambda x1: jnp.sum(((y - operator(x1)) ** 2).reshape(y.shape[0], -1),
                              -1) / (2 * noise_std ** 2)
  return denoiser_guidance(fields, path, energy, scale)


def _check_measurements(context, method):
  require_context(context, method, "measurements", "operator")
  if context.state_shape is not None:
    check_operator(context.operator, context.state_shape, context.measurements)


def _check_dps(section, sampler):
  check_step_size(check_number(section, "step_size", 1.0))
  check_dps_target(section.get("on", "state"))
  if sampler is not None:
    check_one_evaluation(sampler, "DPS")


def _build_dps(section, context):
  _check_measurements(context, "dps")
  return Guidance(context.model.conditional(), lambda stepper, sampler: dps(
      stepper, context.operator, context.measurements, section.get("step_size", 1.0),
      sampler, section.get("on", "state"), context.path))


# The sampler's own step reuses the forward pass of the gradient.
GUIDANCE_METHODS.register("dps", GuidanceMethod(
    _build_dps, _check_dps, restores=True, cost=lambda section, sampler: Cost(
        1.0, backward=section.get("on", "state") == "state")))


def _check_reconstruction(section, sampler):
  del sampler
  check_number(section, "scale", 1.0)
  check_noise_std(check_number(section, "noise_std", 0.1))


def _build_reconstruction(section, context):
  _check_measurements(context, "reconstruction")
  return Guidance(reconstruction_guidance(
      context.model.conditional(), context.path, context.operator, context.measurements,
      section.get("noise_std", 0.1), section.get("scale", 1.0)))


GUIDANCE_METHODS.register("reconstruction", GuidanceMethod(
    _build_reconstruction, _check_reconstruction, restores=True,
    cost=lambda section, sampler: Cost(1.0, backward=True)))
