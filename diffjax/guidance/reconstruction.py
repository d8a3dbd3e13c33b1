"""Reconstruction guidance for linear inverse problems y = A x1 + noise: DPS.

"Diffusion Posterior Sampling for General Noisy Inverse Problems" (Chung et al. 2023,
Algorithm 1 and App. C.2): after each sampler step from x_i,
    x_{i+1} <- x'_{i+1} - zeta_i grad_{x_i} |y - A(x1_hat(x_i))|^2,
    zeta_i = zeta / |y - A(x1_hat(x_i))|   (per example),
the gradient taken through the model's data prediction x1_hat (one forward and one
backward pass; the sampler's own step reuses the forward pass, so it must evaluate once
per step at the current state: `ONE_EVALUATION_SAMPLERS`). `dps` is that stepper.
`reconstruction_guidance` is the same approximation p(y | x_t) ~ N(y; A x1_hat(x_t),
noise_std^2 I) as a change of the score (Song et al.'s "Pseudoinverse-guided" family
without the pseudoinverse; the DPS paper's eq. 16), which composes with any sampler.

Operators are functions A(x (B, ...)) -> (B, ...) linear in x: `inpainting`, `blur`,
`subsample` below, or any function of the user's. `check_operator` refuses an operator
whose output does not have y's shape.
"""
import jax
import jax.numpy as jnp

from diffjax.core import Stepper
from diffjax.errors import ConfigError
from diffjax.guidance.likelihood import denoiser_guidance
from diffjax.guidance.model import check_one_evaluation, frozen_fields


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


def dps(base: Stepper, operator, y, step_size, sampler: str) -> Stepper:
  """DPS (Chung et al., Algorithm 1) around `base`, the stepper of `sampler`:
  step_size zeta > 0; y (B, ...) the measurements of each sample."""
  if not step_size >= 0:
    raise ConfigError(f"The DPS step size zeta must be >= 0; got {step_size}.")
  check_one_evaluation(sampler, "DPS")
  norm = _residual_norm(operator, y)

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


def reconstruction_guidance(fields, path, operator, y, noise_std=1.0, scale=1.0):
  """Fields with score s + scale grad_x log N(y; A x1_hat(x), noise_std^2 I)."""
  if not noise_std > 0:
    raise ConfigError(f"The measurement noise std must be > 0; got {noise_std}.")
  energy = lambda x1: jnp.sum(((y - operator(x1)) ** 2).reshape(y.shape[0], -1),
                              -1) / (2 * noise_std ** 2)
  return denoiser_guidance(fields, path, energy, scale)
