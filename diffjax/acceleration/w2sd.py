"""W2SD: Weak-to-Strong Diffusion with Reflection, on any Gaussian-path sampler.

"Weak-to-Strong Diffusion with Reflection" (Bai et al. 2025): with a strong model and a
weak one (a late and an early checkpoint, a large and a small network), the reflective
operator x~_t = M_weak^{-1}(M_strong(x_t)) (denoise a little with the strong model,
invert back to t with the weak one) moves x_t by about sigma_t^2 grad_x log(p_strong(x_t)
/ p_weak(x_t)) times the step: along the direction in which the strong model's density
grows faster than the weak one's, which, when the strong model is closer to the truth,
points towards the truth ("weak-to-strong" extrapolation). Here the reflection is that
first-order displacement, evaluated at one point:

  x~_t = x_t + lambda sigma_t^2 (s_strong(x_t, t) - s_weak(x_t, t))
       = x_t + lambda alpha_t (D_strong(x_t, t) - D_weak(x_t, t))     (Tweedie: s = (alpha
                                                                       D - x) / sigma^2),

with D the denoiser (data prediction) and lambda >= 0 the reflection strength; then the
sampler's own step from x~_t with the strong fields. It is a wrapper of any stepper
(`w2sd`), applied on the steps whose start time lies in `interval` (the paper reflects in
the early, noisy steps), at 2 extra field evaluations per reflected step (strong and weak
at x_t; one more than the paper's pair of half steps, none of them batched since the two
models differ). With weak = strong the displacement is exactly zero and W2SD is the plain
sampler, bit for bit (tests/test_acceleration_w2sd.py). The paper's literal pair of DDIM
half steps is not built here.
"""
import jax
import jax.numpy as jnp

from diffjax.core import Fields, Stepper, require_gaussian, time_column
from diffjax.errors import ConfigError
from diffjax.guidance.cfg import check_interval
from diffjax.solvers import Guidance


def check_strength(strength):
  """A finite reflection strength lambda >= 0."""
  if isinstance(strength, jax.core.Tracer):
    return strength
  try:
    value = float(strength)
  except (TypeError, ValueError):
    raise ConfigError(f"The W2SD reflection strength must be a number >= 0; got "
                      f"{strength!r}.") from None
  if not value >= 0.0 or value == float("inf"):
    raise ConfigError(f"The W2SD reflection strength must be a finite number >= 0; got "
                      f"{strength!r}.")
  return strength


def check_weak_model(weak: Fields, strong: Fields, x, t):
  """Refuses a weak model whose data prediction is not shaped like the strong one's at the
  state x (another data shape, another number of channels)."""
  for name, fields in (("weak", weak), ("strong", strong)):
    fields.require(("data",), f"W2SD's {name} model")
  try:
    got = jax.eval_shape(weak.evaluate, x, t).data
  except (TypeError, ValueError) as error:
    raise ConfigError(f"W2SD's weak model cannot evaluate a state of shape "
                      f"{tuple(jnp.shape(x))} (the strong model's data shape): "
                      f"{str(error).splitlines()[0]}") from None
  want = jax.eval_shape(strong.evaluate, x, t).data
  if got.shape != want.shape or got.shape != jnp.shape(x):
    raise ConfigError(f"W2SD's weak model predicts shape {tuple(got.shape)} for a state of "
                      f"shape {tuple(jnp.shape(x))} (the strong model: "
                      f"{tuple(want.shape)}); both must model the same data shape.")


def reflection(strong: Fields, weak: Fields, path, strength):
  """reflect(x, t) -> x + strength alpha_t (D_strong - D_weak)(x, t) (module docstring)."""
  check_strength(strength)
  view = require_gaussian(path, "W2SD")

  def reflect(x, t):
    difference = strong.evaluate(x, t).data - weak.evaluate(x, t).data
    alpha = time_column(jnp.broadcast_to(view.alpha(t), x.shape[:1]), x)
    return x + strength * alpha * difference

  return reflect


def w2sd(base: Stepper, strong: Fields, weak: Fields, path, strength,
         interval=(0.0, 1.0)) -> Stepper:
  """The stepper `base` with a W2SD reflection before each step starting in `interval`
  ((t_start, t_end) in diffjax time, 0 noise, 1 data). The fields `integrate` hands the
  base step are the strong ones (give them to `sample`); strong and weak must provide the
  data prediction (complete them on the path: `diffjax.fields.complete`). nfe: the base
  step's plus 2 per reflected step."""
  start, end = check_interval(interval)
  reflect = reflection(strong, weak, path, strength)

  def init(x0, ts):
    check_weak_model(weak, strong, x0, ts[0])
    return base.init(x0, ts)

  def step(fields, x, state, t, t_next, key):
    t = jnp.asarray(t, jnp.float32)
    inside = (t >= start) & (t <= end)
    x = jax.lax.cond(inside, reflect, lambda x, t: x, x, t)
    x_next, state, used = base.step(fields, x, state, t, t_next, key)
    return x_next, state, used + jnp.where(inside, 2, 0)

  return Stepper(init, step, base.needs)


def w2sd_guidance(strong: Fields, weak: Fields, path, strength,
                  interval=(0.0, 1.0)) -> Guidance:
  """W2SD as `sample(name, None, path, x0, guidance=...)` runs it: the strong fields
  integrated by the sampler `name`, reflected on `interval`."""
  return Guidance(strong, lambda stepper, sampler: w2sd(stepper, strong, weak, path,
                                                        strength, interval))
