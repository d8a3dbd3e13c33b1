"""DDIM and DPM-Solver++ (1S, 2M) reproduce diffusers' PyTorch schedulers step by step on
the same discrete DDPM schedule and the same model (the exact noise prediction of a
Gaussian mixture), to float32 tolerance. Skips only if diffusers/torch are not installed."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.data import isotropic_mixture

from diffjax.paths import GaussianPath
from diffjax.solvers import SAMPLERS, Fields

diffusers = pytest.importorskip("diffusers")
torch = pytest.importorskip("torch")

MIX = isotropic_mixture([0.3, 0.7], [[-1.0, 0.0], [1.0, 0.5]], 0.4)
NUM_STEPS = 10


def _gmm_noise(x, alpha, sigma):
  """Exact E[eps | x] for x = alpha x1 + sigma eps, x1 ~ MIX."""
  law = type(MIX)(MIX.weights, alpha * MIX.means,
                  alpha ** 2 * MIX.covariances + sigma ** 2 * jnp.eye(2)[None])
  return -sigma * law.score(x)


_gmm_noise_jit = jax.jit(_gmm_noise)


def _knot_path(alphas, sigmas):
  """A Gaussian path through the scheduler's (alpha, sigma) at t_i = i / N. Its
  derivatives are set to (1, -1): the exact fields below are built with the same values,
  so `data_prediction` returns exactly the model's x1 prediction, which is all an
  exponential integrator uses."""
  ts = jnp.linspace(0.0, 1.0, alphas.shape[0])
  return GaussianPath("diffusers_knots", lambda t: jnp.interp(t, ts, alphas),
                      lambda t: jnp.interp(t, ts, sigmas), dalpha_fn=jnp.ones_like,
                      dsigma_fn=lambda t: -jnp.ones_like(t)), ts


def _fields(path):
  def velocity(x, t):
    a, s = path.alpha(t), path.sigma(t)
    eps = _gmm_noise(x, a, s)
    x1 = (x - s * eps) / a
    return x1 - eps                     # alpha' x1 + sigma' eps with (alpha', sigma') = (1, -1)
  return Fields(velocity=velocity)


def _run_diffusers(scheduler, x0, alpha_sigma_at):
  sample = torch.from_numpy(np.asarray(x0))
  states = [sample.numpy().copy()]
  for i, timestep in enumerate(scheduler.timesteps):
    alpha, sigma = alpha_sigma_at(i, timestep)
    eps = np.asarray(_gmm_noise_jit(jnp.asarray(sample.numpy()), alpha, sigma))
    sample = scheduler.step(torch.from_numpy(eps), timestep, sample).prev_sample
    states.append(sample.numpy().copy())
  return np.stack(states)


def _x0(n=64):
  return jax.random.normal(jax.random.PRNGKey(0), (n, 2))


def _compare(ours, theirs):
  np.testing.assert_allclose(ours, theirs, atol=2e-4, rtol=1e-4)


def test_ddim_matches_diffusers_ddim_scheduler():
  scheduler = diffusers.DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear",
                                      beta_start=1e-4, beta_end=0.02, clip_sample=False,
                                      set_alpha_to_one=True)
  scheduler.set_timesteps(NUM_STEPS)
  acp = scheduler.alphas_cumprod.numpy().astype(np.float64)
  steps = scheduler.timesteps.numpy()
  alpha_bar = np.concatenate([acp[steps], [1.0]])
  alphas = jnp.asarray(np.sqrt(alpha_bar), jnp.float32)
  sigmas = jnp.asarray(np.sqrt(1 - alpha_bar), jnp.float32)
  theirs = _run_diffusers(scheduler, _x0(), lambda i, _: (alphas[i], sigmas[i]))
  path, ts = _knot_path(alphas, sigmas)
  ours = SAMPLERS.get("ddim")(_fields(path), path, _x0(), None, num_steps=NUM_STEPS,
                              grid=ts, return_trajectory=True).trajectory
  _compare(ours, theirs)


@pytest.mark.parametrize("order", [1, 2])
def test_dpm_solver_pp_matches_diffusers_multistep_scheduler(order):
  scheduler = diffusers.DPMSolverMultistepScheduler(
      num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
      solver_order=order, algorithm_type="dpmsolver++", solver_type="midpoint",
      lower_order_final=True, final_sigmas_type="zero")
  scheduler.set_timesteps(NUM_STEPS)
  level = scheduler.sigmas.numpy().astype(np.float64)          # sigma / alpha, last = 0
  alpha = 1 / np.sqrt(level ** 2 + 1)
  alphas = jnp.asarray(alpha, jnp.float32)
  sigmas = jnp.asarray(level * alpha, jnp.float32)
  theirs = _run_diffusers(scheduler, _x0(), lambda i, _: (alphas[i], sigmas[i]))
  path, ts = _knot_path(alphas, sigmas)
  name = "dpm_solver_pp_1s" if order == 1 else "dpm_solver_pp_2m"
  ours = SAMPLERS.get(name)(_fields(path), path, _x0(), None, num_steps=NUM_STEPS, grid=ts,
                            return_trajectory=True, lower_order_final=True).trajectory
  _compare(ours, theirs)
