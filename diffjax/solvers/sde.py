"""Stochastic steppers: Euler–Maruyama (either time direction), Langevin predictor-corrector
and EDM's stochastic sampler.

For a path with marginal velocity v and score s, every SDE
  dX = (v(X, t) + eps(t) s(X, t)) dt + sqrt(2 eps(t)) dW,   eps(t) >= 0,
run forward from t = 0 has the same marginals rho_t ("Stochastic Interpolants: A Unifying
Framework for Flows and Diffusions", Albergo, Boffi & Vanden-Eijnden, Thm. 2.21 / eq. 2.33);
eps = 0 is the probability-flow ODE. Run backward in time (t decreasing), the process with
the same marginals is its time reversal, dX = (v - eps s) dt + sqrt(2 eps) dW (Anderson,
"Reverse-time diffusion equation models", 1982): a step of signed length h therefore uses
the drift v + sign(h) eps s and noise of variance 2 eps |h|.
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp

from diffjax.core import Stepper, require_gaussian, stateless
from diffjax.solvers.exponential import ddim_step


def diffusion_level(eps, path=None):
  """eps(t) as a function: a float >= 0, a callable, or "reverse_sde" (the Gaussian path's
  g^2 / 2, at which the SDE is the reverse-time SDE of Song et al.)."""
  if isinstance(eps, str):
    if eps != "reverse_sde":
      raise ValueError(f"Unknown eps {eps!r}; give a float >= 0, a function of t, or "
                       "'reverse_sde'.")
    if path is None:
      raise ValueError("eps='reverse_sde' needs the sampler's path.")
    return require_gaussian(path, "eps='reverse_sde'").reverse_sde_eps
  if callable(eps):
    return eps
  if not eps >= 0:
    raise ValueError(f"eps must be >= 0; got {eps}.")
  return lambda t: jnp.asarray(eps, jnp.float32)


class StepCount(NamedTuple):
  """The index of the next step and the number of steps of the grid."""
  index: jax.Array
  num_steps: jax.Array


def _count(x0, ts):
  del x0
  return StepCount(jnp.zeros((), jnp.int32), jnp.asarray(ts.shape[0] - 1, jnp.int32))


def _needs_key(key, who):
  if key is None:
    raise ValueError(f"{who} is stochastic: pass a PRNG key.")


def euler_maruyama(path=None, *, eps=1.0, correct_drift=True, final_noise=False) -> Stepper:
  """Euler–Maruyama for dX = (v + sign(h) eps s) dt + sqrt(2 eps) dW (module docstring).

  Args:
    path: the sampling path (needed only for eps="reverse_sde").
    eps: the diffusion level: a float >= 0, a function of t, or "reverse_sde".
    correct_drift: add sign(h) eps s, keeping the marginals of the velocity's flow (needs a
      score). False: the velocity field is itself the SDE's drift in the direction of
      integration (user SDEs, a bridge's forward or backward process).
    final_noise: also add noise on the last step (default: the last step is deterministic,
      so the sample is not left with fresh noise).
  """
  level = diffusion_level(eps, path)
  needs = ("velocity", "score") if correct_drift else ("velocity",)

  def step(fields, x, state, t, t_next, key):
    _needs_key(key, "euler_maruyama")
    h = t_next - t
    last = state.index == state.num_steps - 1
    e = jnp.where(last & (not final_noise), 0.0, level(t))
    out = fields.evaluate(x, t)
    drift = out.velocity + jnp.sign(h) * e * out.score if correct_drift else out.velocity
    noise = jax.random.normal(key, x.shape, x.dtype)
    x_next = x + h * drift + jnp.sqrt(2 * e * jnp.abs(h)) * noise
    return x_next, state._replace(index=state.index + 1), 1

  return Stepper(_count, step, needs)


def langevin_corrector_step(score, x, t, key, snr):
  """One Langevin step x + e s + sqrt(2 e) z with e = 2 (snr |z| / |s|)^2, the norms
  averaged over the batch ("Score-Based Generative Modeling through SDEs", Song et al.,
  Algorithm 4/5, without the VP factor alpha_i)."""
  g = score(x, t)
  z = jax.random.normal(key, x.shape, x.dtype)
  batch = x.shape[0]
  norm = lambda a: jnp.mean(jnp.sqrt(jnp.sum(a.reshape(batch, -1) ** 2, -1)))
  step = 2 * (snr * norm(z) / jnp.maximum(norm(g), 1e-12)) ** 2
  return x + step * g + jnp.sqrt(2 * step) * z


def pc_langevin(path, *, snr=0.16, corrector_steps=1) -> Stepper:
  """Predictor-corrector sampling (Song et al., Sec. 4.2, Algorithm 1) on a Gaussian path:
  at each t, `corrector_steps` Langevin steps at signal-to-noise ratio `snr`, then one
  ancestral (reverse-diffusion) step to t_next. nfe per step: corrector_steps + 1."""
  view = require_gaussian(path, "pc_langevin")

  def step(fields, x, t, t_next, key):
    _needs_key(key, "pc_langevin")
    k_corr, k_pred = jax.random.split(key)
    for j in range(corrector_steps):
      x = langevin_corrector_step(fields.score, x, t, jax.random.fold_in(k_corr, j), snr)
    x1_hat = fields.evaluate(x, t).data
    noise = jax.random.normal(k_pred, x.shape, x.dtype)
    x_next = ddim_step(x, x1_hat, view.alpha(t), view.sigma(t), view.alpha(t_next),
                       view.sigma(t_next), 1.0, noise)
    return x_next, corrector_steps + 1

  return stateless(step, ("score", "data"))


def edm_churn(path, *, s_churn=10.0, s_min=0.0, s_max=float("inf"), s_noise=1.0) -> Stepper:
  """EDM's stochastic sampler ("Elucidating the Design Space...", Karras et al.,
  Algorithm 2) on any Gaussian path with alpha > 0, in the scaled variable x~ = x / alpha
  and noise level sigma~ = sigma / alpha (their eq. 4). Per step: churn the noise level up
  by gamma = min(s_churn / N, sqrt(2) - 1) when sigma~ in [s_min, s_max], add noise
  sqrt(sigma_hat^2 - sigma~^2) s_noise xi, then a Heun step of dx~/dsigma~ = (x~ - D) / sigma~
  (Euler into sigma~ = 0). nfe per step: 2. N is the grid's number of steps."""
  view = require_gaussian(path, "edm_churn")
  with jax.ensure_compile_time_eval():
    if float(view.alpha(0.0)) <= 0:
      raise ValueError(f"edm_churn works on x / alpha and needs alpha(0) > 0; the "
                       f"{path.name!r} path has alpha(0) = 0. Use another sampler.")
  level_at = lambda t: jnp.exp(-view.log_snr(t))

  def slope(fields, x_scaled, level):
    t = view.time_at_log_snr(-jnp.log(level))
    denoised = fields.evaluate(view.alpha(t) * x_scaled, t).data
    return (x_scaled - denoised) / level

  def step(fields, x, state, t, t_next, key):
    _needs_key(key, "edm_churn")
    gamma_max = jnp.minimum(s_churn / state.num_steps, 2 ** 0.5 - 1)
    level, level_next = level_at(t), level_at(t_next)
    gamma = jnp.where((level >= s_min) & (level <= s_max), gamma_max, 0.0)
    level_hat = level * (1 + gamma)
    x_scaled = x / view.alpha(t)
    xi = jax.random.normal(key, x.shape, x.dtype)
    x_hat = x_scaled + jnp.sqrt(level_hat ** 2 - level ** 2) * s_noise * xi
    d = slope(fields, x_hat, level_hat)
    x_euler = x_hat + (level_next - level_hat) * d
    d_next = slope(fields, x_euler, jnp.maximum(level_next, 1e-12))
    x_heun = x_hat + (level_next - level_hat) * 0.5 * (d + d_next)
    x_next = jnp.where(level_next > 1e-12, x_heun, x_euler)
    return x_next * view.alpha(t_next), state._replace(index=state.index + 1), 2

  return Stepper(_count, step, ("data",))

