"""The discrete DDPM path (`diffjax.paths.ddpm`) against diffusers' schedulers: alpha-bar at
every training timestep for the three beta schedules, integer timesteps on diffusers'
grids; DDIM on the path with a converted UNet2DModel equals diffusers' DDIMScheduler loop
and DDIMPipeline (50 steps, same noise); every continuous sampler and every guidance method
runs on the path (exact fields of a Gaussian mixture). Skips only if diffusers/torch are
not installed."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.data import isotropic_mixture, mixture_oracle, two_class_mixture
from diffjax.errors import ConfigError
from diffjax.guidance import GUIDANCE_METHODS, ConditionalModel, fit_linear_ag
from diffjax.guidance.build import GuidanceContext, build_guidance
from diffjax.conditioning import class_condition
from diffjax.paths import build_path, diffusers_grid, read_schedule
from diffjax.paths.ddpm import time_of_timestep, timestep_of
from diffjax import runs
from diffjax.solvers import SAMPLERS, sample

diffusers = pytest.importorskip("diffusers")
torch = pytest.importorskip("torch")

SCHEDULES = [dict(beta_schedule="linear"),
             dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012),
             dict(beta_schedule="squaredcos_cap_v2")]


@pytest.mark.parametrize("options", SCHEDULES, ids=lambda o: o["beta_schedule"])
def test_alpha_bar_on_the_training_grid_equals_diffusers(options):
  scheduler = diffusers.DDPMScheduler(num_train_timesteps=1000, **options)
  view = build_path("ddpm_discrete", **options).gaussian
  t = jnp.asarray(time_of_timestep(np.arange(1000), 1000), jnp.float32)
  alpha_bar = np.asarray(view.alpha(t), np.float64) ** 2
  np.testing.assert_allclose(alpha_bar, scheduler.alphas_cumprod.numpy(), rtol=0, atol=1e-6)
  np.testing.assert_allclose(np.asarray(view.sigma(t)) ** 2, 1 - alpha_bar, atol=1e-6)
  np.testing.assert_array_equal(np.asarray(timestep_of(t, 1000)), np.arange(1000))
  assert float(view.alpha(1.0)) == 1.0 and float(view.sigma(1.0)) == 0.0


@pytest.mark.parametrize("options", SCHEDULES, ids=lambda o: o["beta_schedule"])
def test_the_path_is_smooth_between_grid_points(options):
  """Closed-form derivatives (jvp through the cubic Hermite interpolant) match central
  differences mid-way between grid points; alpha increases, sigma decreases, both
  derivatives are finite on [0, 1] (sigma'(1) too: sigma vanishes linearly at t = 1)."""
  view = build_path("ddpm_discrete", **options).gaussian
  ks = np.array([-0.5, 0.5, 10.5, 500.5, 997.5])
  t = jnp.asarray(time_of_timestep(ks, 1000), jnp.float32)
  h = 2e-5
  coefficients = jax.jit(lambda t: (view.alpha(t), view.sigma(t), view.dalpha(t),
                                    view.dsigma(t)))
  (alpha, sigma, dalpha, dsigma), up, down = (coefficients(s) for s in (t, t + h, t - h))
  for i, derivative in ((0, dalpha), (1, dsigma)):
    numeric = (up[i] - down[i]) / (2 * h)
    np.testing.assert_allclose(derivative, numeric, rtol=3e-2,
                               atol=2e-2 * float(jnp.abs(derivative).max()))
  alpha, sigma, dalpha, dsigma = (np.asarray(c) for c in
                                  coefficients(jnp.linspace(0.0, 1.0, 4001)))
  assert np.all(np.diff(alpha) >= 0) and np.all(np.diff(sigma) <= 1e-6)
  assert np.all(np.isfinite(dalpha)) and np.all(np.isfinite(dsigma))


def test_diffusers_grids_are_integer_timesteps():
  schedule = read_schedule({"num_train_timesteps": 1000})
  leading = diffusers_grid(50, schedule, "leading")
  np.testing.assert_array_equal(np.asarray(timestep_of(leading[:-1], 1000)),
                                np.arange(980, -1, -20))
  assert leading[-1] == 1.0
  np.testing.assert_allclose(diffusers_grid(50, schedule, "trailing"),
                             np.linspace(0, 1, 51), atol=1e-7)


@pytest.mark.parametrize("config,message", [
    ({"beta_schedule": "sigmoid"}, "Unknown beta_schedule 'sigmoid'; valid: linear"),
    ({"prediction_type": "flow"}, "unknown prediction_type 'flow'"),
    ({"rescale_betas_zero_snr": True}, "rescale_betas_zero_snr=true"),
])
def test_bad_scheduler_configs(config, message):
  with pytest.raises(ConfigError, match=message):
    read_schedule(config)


# ----- DDIM with a converted network against diffusers -----

UNET = dict(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(16, 32),
            layers_per_block=1, norm_num_groups=4, attention_head_dim=8,
            down_block_types=("DownBlock2D", "AttnDownBlock2D"),
            up_block_types=("AttnUpBlock2D", "UpBlock2D"))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
  """A random UNet2DModel whose noise predictions stay moderate (conv_out scaled down),
  saved with a DDIMScheduler (no clipping: diffjax's samplers do not clip x0)."""
  torch.set_num_threads(1)
  torch.manual_seed(0)
  unet = diffusers.UNet2DModel(**UNET).eval()
  with torch.no_grad():
    unet.conv_out.weight.mul_(0.1)
  scheduler = diffusers.DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear",
                                      clip_sample=False)
  folder = tmp_path_factory.mktemp("ddim")
  unet.save_pretrained(folder)
  scheduler.save_pretrained(folder)
  return unet, scheduler, str(folder)


def _noise():
  return torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def _close_to_1e3(ours, theirs):
  """Within 1e-3 of diffusers (relative to the samples' scale where it exceeds 1)."""
  ours = np.asarray(ours).transpose(0, 3, 1, 2)
  error = np.abs(ours - theirs).max()
  assert error <= 1e-3 * max(1.0, np.abs(theirs).max()), error


@pytest.mark.parametrize("spacing", ["leading", "trailing"])
def test_ddim_50_steps_equals_diffusers_ddim_scheduler(checkpoint, spacing):
  unet, scheduler, folder = checkpoint
  run = runs.from_diffusers(folder)
  theirs = diffusers.DDIMScheduler.from_config(scheduler.config, timestep_spacing=spacing)
  theirs.set_timesteps(50)
  x = _noise()
  x0 = jnp.asarray(x.numpy().transpose(0, 2, 3, 1))
  with torch.no_grad():
    for k in theirs.timesteps:
      x = theirs.step(unet(x, k).sample, k, x).prev_sample
  grid = diffusers_grid(50, read_schedule(folder), spacing)
  ours = jax.jit(lambda x0: sample("ddim", run.fields(), run.path, x0, num_steps=50,
                                   grid=jnp.asarray(grid)).x)(x0)
  _close_to_1e3(ours, x.numpy())


def test_ddim_equals_diffusers_ddim_pipeline(checkpoint):
  """DDIMPipeline draws x_T with its generator and returns (x / 2 + 1/2) clipped to [0, 1]
  (NHWC); the run samples the same noise with its leading grid (the scheduler's own)."""
  unet, scheduler, folder = checkpoint
  pipeline = diffusers.DDIMPipeline(unet=unet, scheduler=scheduler)
  pipeline.set_progress_bar_config(disable=True)
  theirs = pipeline(batch_size=4, generator=torch.Generator().manual_seed(0),
                    num_inference_steps=50, output_type="np").images
  run = runs.from_diffusers(folder)
  x0 = jnp.asarray(_noise().numpy().transpose(0, 2, 3, 1))
  grid = jnp.asarray(diffusers_grid(50, read_schedule(folder)))
  ours = np.clip(np.asarray(sample("ddim", run.fields(), run.path, x0, num_steps=50,
                                   grid=grid).x) / 2 + 0.5, 0, 1)
  np.testing.assert_allclose(ours, theirs, atol=1e-3)
  assert 0.01 < theirs.std()   # the clip does not hide everything


# ----- every sampler and guidance method on the path -----

PATH = build_path("ddpm_discrete")
GAUSSIAN = isotropic_mixture([1.0], [[1.0, -0.5]], 0.5)
TASK = two_class_mixture(separation=1.0, std=0.5)
N = 128


# Multistep consistency sampling lands on the data only with a consistency function (a
# distilled student, tests/test_distillation_flow_maps.py); with a diffusion model's
# denoiser it returns posterior means, whose spread is below the data's.
STUDENT_ONLY = ("consistency",)


def _x0(n=N):
  return PATH.source_sample(jax.random.PRNGKey(0), (n, 2))


@pytest.mark.parametrize("name", [n for n in SAMPLERS.names()
                                  if not SAMPLERS.get(n).tokens and n not in STUDENT_ONLY])
def test_every_sampler_runs_on_the_ddpm_path(name):
  """With the exact fields of N((1, -0.5), 0.5^2 I), 20 steps of every continuous sampler
  land on it: the mean within 0.15, the std within 30% (first-order samplers shrink it at
  20 steps, as on the vp path; on the log-SNR grid more so, lambda(1) being infinite
  here; Langevin correctors likewise). The adaptive samplers run at tolerance 1e-4 (without one, `diffrax` takes a
  single step over [0, 1]). Token samplers need token fields and are not run."""
  fields = mixture_oracle(PATH, GAUSSIAN).fields()
  key = jax.random.PRNGKey(1)
  options = dict(rtol=1e-4, atol=1e-4) if SAMPLERS.get(name).adaptive else {}
  x = jax.jit(lambda x0: sample(name, fields, PATH, x0, key, num_steps=20, **options).x)(
      _x0())
  np.testing.assert_allclose(np.mean(x, 0), [1.0, -0.5], atol=0.15)
  np.testing.assert_allclose(np.std(x, 0), [0.5, 0.5], rtol=0.3)


def _context(method, labels):
  cond, null = class_condition(labels, 2)
  model = ConditionalModel(TASK.fields_of(PATH), cond, null)
  extra = {}
  if method in ("dps", "reconstruction", "steered"):
    extra = dict(measurements=jnp.ones((N, 1)), operator=lambda x: x[:, :1])
  elif method in ("tsdiff", "input"):
    extra = dict(observed=jnp.ones((N, 2)), mask=jnp.tile(jnp.array([[1.0, 0.0]]), (N, 1)))
  elif method == "svdd":   # SVDD evaluates M candidates per sample: an unconditional model.
    unconditional = mixture_oracle(PATH, TASK.unconditional()).fields()
    model = ConditionalModel(lambda cond: unconditional, None, None)
    extra = dict(reward=lambda x: x[:, 0])
  elif method == "elucd":
    extra = dict(classifier_logits=lambda x: jnp.stack([-x[:, 0], x[:, 0]], -1))
  elif method == "classifier":
    extra = dict(classifier_log_prob=lambda x, t: TASK.log_prob_class(PATH, t, x, labels))
  sampler = "ancestral" if method == "svdd" else "ddim"
  return GuidanceContext(model, PATH, sampler, {}, **extra), sampler


@pytest.mark.parametrize("method", [m for m in GUIDANCE_METHODS.names() if m != "none"])
def test_every_guidance_method_runs_on_the_ddpm_path(method):
  """Guided to class 1 (at +1 on the first axis; measurements, observations and rewards
  also pull towards +x), every method's samples move right of the unconditional ones."""
  labels = jnp.ones(N, jnp.int32)
  context, sampler = _context(method, labels)
  section = {"method": method, "scale": 0.6 if method == "cfgpp" else 2.0, "step_size": 0.5}
  if method == "linear_ag":   # Its coefficients are fitted on the grid it samples with.
    section.update(exact_steps=3, coefficients=fit_linear_ag(
        context.model, PATH, sampler, _x0(), 2.0, num_steps=12))
  guidance = build_guidance(section, context)
  key = jax.random.PRNGKey(3)
  x = jax.jit(lambda x0: sample(sampler, None, PATH, x0, key, num_steps=12,
                                      guidance=guidance).x)(
      _x0())
  assert np.all(np.isfinite(x))
  assert float(jnp.mean(x[:, 0])) > _unguided_mean() + 0.2


@functools.cache
def _unguided_mean():
  fields = TASK.fields(PATH, jnp.full((N,), 2))
  return float(jnp.mean(sample("ddim", fields, PATH, _x0(), num_steps=12).x[:, 0]))
