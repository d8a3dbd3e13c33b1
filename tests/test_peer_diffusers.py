"""DDIM, DPM-Solver++ (1S, 2M) and UniPC (bh1 / bh2, orders 2 and 3) reproduce diffusers'
PyTorch schedulers step by step on the same discrete DDPM schedule and the same model (the
exact noise prediction of a Gaussian mixture, read by our samplers as a data prediction
directly), to float32 tolerance. Skips only if diffusers/torch are not installed."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.data import isotropic_mixture

from diffjax.fields import gaussian_fields
from diffjax.paths import gaussian_path
from diffjax.solvers import sample

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
  """A Gaussian path through the scheduler's (alpha, sigma) at t_i = i / N. Its derivatives
  are irrelevant (set to (1, -1)): the fields below read the noise model's data prediction
  directly, which is all an exponential integrator uses."""
  ts = jnp.linspace(0.0, 1.0, alphas.shape[0])
  return gaussian_path("diffusers_knots", lambda t: jnp.interp(t, ts, alphas),
                       lambda t: jnp.interp(t, ts, sigmas), dalpha=jnp.ones_like,
                       dsigma=lambda t: -jnp.ones_like(t)), ts


def _fields(path):
  view = path.gaussian
  return gaussian_fields(lambda x, t: _gmm_noise(x, view.alpha(t), view.sigma(t)), path,
                         "noise")


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
  ours = sample("ddim", _fields(path), path, _x0(), None, num_steps=NUM_STEPS,
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
  ours = sample(name, _fields(path), path, _x0(), None, num_steps=NUM_STEPS, grid=ts,
                return_trajectory=True, lower_order_final=True).trajectory
  _compare(ours, theirs)


def _sigma_levels(scheduler):
  level = scheduler.sigmas.numpy().astype(np.float64)          # sigma / alpha, last = 0
  alpha = 1 / np.sqrt(level ** 2 + 1)
  return jnp.asarray(alpha, jnp.float32), jnp.asarray(level * alpha, jnp.float32)


@pytest.mark.parametrize("order,variant,final", [
    (2, "bh2", "zero"), (3, "bh2", "zero"), (2, "bh1", "sigma_min")])
def test_unipc_matches_diffusers_unipc_scheduler(order, variant, final):
  """(diffusers' bh1 returns NaN when the last sigma is zero, B(h) = -h being infinite
  there, so bh1 is compared on a grid ending at the schedule's smallest sigma.)"""
  scheduler = diffusers.UniPCMultistepScheduler(
      num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
      solver_order=order, solver_type=variant, predict_x0=True, lower_order_final=True,
      final_sigmas_type=final)
  scheduler.set_timesteps(NUM_STEPS)
  alphas, sigmas = _sigma_levels(scheduler)
  theirs = _run_diffusers(scheduler, _x0(), lambda i, _: (alphas[i], sigmas[i]))
  path, ts = _knot_path(alphas, sigmas)
  ours = sample("unipc", _fields(path), path, _x0(), None, num_steps=NUM_STEPS, grid=ts,
                return_trajectory=True, order=order, variant=variant,
                lower_order_final=True).trajectory
  _compare(ours, theirs)
