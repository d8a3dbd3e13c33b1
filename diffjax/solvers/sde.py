"""Euler–Maruyama for the family of SDEs sharing the marginals of a path.

For a path with marginal velocity v and score s, every SDE
  dX = (v(X, t) + eps(t) s(X, t)) dt + sqrt(2 eps(t)) dW,   eps(t) >= 0,
run forward from t = 0 has the same marginals rho_t ("Stochastic Interpolants: A Unifying
Framework for Flows and Diffusions", Albergo, Boffi & Vanden-Eijnden, Thm. 2.21 / eq. 2.33).
eps = 0 is the probability-flow ODE.
"""
import jax
import jax.numpy as jnp

from diffjax.solvers.grids import check_time_grid
from diffjax.solvers.ode import check_field_shape


def euler_maruyama(velocity_and_score, x0, ts, key, eps, return_trajectory=False):
  """Integrates dX = (v + eps s) dt + sqrt(2 eps) dW over the grid ts.

  Args:
    velocity_and_score: (x, t) -> (v, s), each (B, ...) (`Fields.drift_terms`).
    x0: (B, ...) state at ts[0].
    ts: (N + 1,) increasing times in [0, 1].
    key: PRNG key; step i uses fold_in(key, i).
    eps: a float or a function eps(t) -> scalar >= 0.
    return_trajectory: also return the (N + 1, B, ...) states.

  Returns:
    x at ts[-1], or (x, trajectory). One call of velocity_and_score per step.
  """
  eps_fn = eps if callable(eps) else (lambda t: jnp.asarray(eps, jnp.float32))
  ts = jnp.asarray(check_time_grid(ts), jnp.float32)
  check_field_shape(lambda x, t: velocity_and_score(x, t)[0], x0, ts[0])
  check_field_shape(lambda x, t: velocity_and_score(x, t)[1], x0, ts[0])

  def body(x, inputs):
    i, t, t_next = inputs
    h = t_next - t
    e = eps_fn(t)
    v, s = velocity_and_score(x, t)
    drift = v + e * s
    noise = jax.random.normal(jax.random.fold_in(key, i), x.shape, x.dtype)
    x_next = x + h * drift + jnp.sqrt(2 * e * h) * noise
    return x_next, (x_next if return_trajectory else None)

  steps = jnp.arange(ts.shape[0] - 1)
  x1, path = jax.lax.scan(body, x0, (steps, ts[:-1], ts[1:]))
  if return_trajectory:
    return x1, jnp.concatenate([x0[None], path], axis=0)
  return x1


def _needs_score(fields, sampler):
  if fields.score is None:
    raise ValueError(f"{sampler} needs a score field; train an objective that models the "
                     "score (score_matching, edm), or use an ODE sampler.")


def diffusion_level(eps, path):
  """eps(t) as a function: a float, a callable, or "reverse_sde" (the path's g^2 / 2)."""
  if isinstance(eps, str):
    if eps != "reverse_sde":
      raise ValueError(f"Unknown eps {eps!r}; give a float >= 0, a function of t, or "
                       "'reverse_sde'.")
    if not hasattr(path, "reverse_sde_eps"):
      raise ValueError("eps='reverse_sde' needs a Gaussian path.")
    return path.reverse_sde_eps
  if callable(eps):
    return eps
  return lambda t: jnp.asarray(eps, jnp.float32)


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


def predictor_corrector(fields, path, x0, ts, key, *, snr=0.16, corrector_steps=1,
                        return_trajectory=False):
  """Predictor-corrector sampling (Song et al., Sec. 4.2, Algorithm 1): at each t_i,
  `corrector_steps` Langevin steps at signal-to-noise ratio `snr`, then one ancestral
  (reverse-diffusion) step to t_{i+1}. Field calls: N (corrector_steps + 1)."""
  from diffjax import fields as fields_lib  # pylint: disable=g-import-not-at-top
  from diffjax.solvers.exponential import ddim_step  # pylint: disable=g-import-not-at-top
  check_field_shape(fields.score, x0, ts[0])
  alphas, sigmas = path.alpha(ts), path.sigma(ts)

  def body(x, i):
    k_corr, k_pred = jax.random.split(jax.random.fold_in(key, i))
    for j in range(corrector_steps):
      x = langevin_corrector_step(fields.score, x, ts[i], jax.random.fold_in(k_corr, j), snr)
    x1_hat = fields_lib.data_prediction(fields, path, x, ts[i])
    noise = jax.random.normal(k_pred, x.shape, x.dtype)
    x_next = ddim_step(x, x1_hat, alphas[i], sigmas[i], alphas[i + 1], sigmas[i + 1],
                       1.0, noise)
    return x_next, (x_next if return_trajectory else None)

  x1, states = jax.lax.scan(body, x0, jnp.arange(ts.shape[0] - 1))
  trajectory = jnp.concatenate([x0[None], states], 0) if return_trajectory else None
  return x1, trajectory


def edm_stochastic(fields, path, x0, ts, key, *, s_churn=10.0, s_min=0.0,
                   s_max=float("inf"), s_noise=1.0, return_trajectory=False):
  """EDM's stochastic sampler ("Elucidating the Design Space...", Karras et al.,
  Algorithm 2) on any Gaussian path with alpha > 0, in the scaled variable x~ = x / alpha
  and noise level sigma~ = sigma / alpha (their eq. 4). Per step: churn the noise level up
  by gamma = min(s_churn / N, sqrt(2) - 1) when sigma~ in [s_min, s_max], add noise
  sqrt(sigma_hat^2 - sigma~^2) s_noise xi, then a Heun step of dx~/dsigma~ = (x~ - D) / sigma~
  (Euler into sigma~ = 0). Field calls: 2 N."""
  from diffjax import fields as fields_lib  # pylint: disable=g-import-not-at-top
  check_field_shape(fields.velocity, x0, ts[0])
  with jax.ensure_compile_time_eval():
    if float(path.alpha(0.0)) <= 0:
      raise ValueError(f"edm_churn works on x / alpha and needs alpha(0) > 0; the "
                       f"{path.name!r} path has alpha(0) = 0. Use another sampler.")
  n = ts.shape[0] - 1
  levels = jnp.exp(-path.log_snr(ts))
  gamma_max = min(s_churn / n, 2 ** 0.5 - 1)

  def slope(x_scaled, level):
    t = path.time_at_log_snr(-jnp.log(level))
    alpha = path.alpha(t)
    denoised = fields_lib.data_prediction(fields, path, alpha * x_scaled, t)
    return (x_scaled - denoised) / level

  def body(x_scaled, i):
    level, level_next = levels[i], levels[i + 1]
    gamma = jnp.where((level >= s_min) & (level <= s_max), gamma_max, 0.0)
    level_hat = level * (1 + gamma)
    xi = jax.random.normal(jax.random.fold_in(key, i), x_scaled.shape, x_scaled.dtype)
    x_hat = x_scaled + jnp.sqrt(level_hat ** 2 - level ** 2) * s_noise * xi
    d = slope(x_hat, level_hat)
    x_euler = x_hat + (level_next - level_hat) * d
    d_next = slope(x_euler, jnp.maximum(level_next, 1e-12))
    x_heun = x_hat + (level_next - level_hat) * 0.5 * (d + d_next)
    x_next = jnp.where(level_next > 1e-12, x_heun, x_euler)
    return x_next, (x_next * path.alpha(ts[i + 1]) if return_trajectory else None)

  x_scaled, states = jax.lax.scan(body, x0 / path.alpha(ts[0]), jnp.arange(n))
  x1 = x_scaled * path.alpha(ts[-1])
  trajectory = jnp.concatenate([x0[None], states], 0) if return_trajectory else None
  return x1, trajectory
