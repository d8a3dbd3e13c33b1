"""Discrete-time DDPM schedules (the noise schedules of diffusers' DDPM / DDIM schedulers) as
a Gaussian path, so that a pretrained noise network receives exactly the inputs it was
trained on.

A DDPM with T training timesteps k = 0 .. T - 1 ("Denoising Diffusion Probabilistic
Models", Ho et al., eq. 4) noises data as x_k = sqrt(abar_k) x1 + sqrt(1 - abar_k) eps with
abar_k = prod_{i <= k} (1 - beta_i); k = T - 1 is the noisiest step. In diffjax time
(t = 0 noise, t = 1 data) timestep k sits at
    t_k = (T - 1 - k) / T,   i.e.   k(t) = T (1 - t) - 1,
so t = 0 is k = T - 1 and t = 1 is the virtual step k = -1 with abar = 1, the clean data
that DDIM's last step reaches (diffusers' `set_alpha_to_one`). On this grid alpha(t_k)^2 =
abar_k exactly (up to float32), and `network_timestep(t)` hands the network the integer k.
A uniform grid of N steps in t is diffusers' "trailing" timestep spacing when N divides T;
`diffusers_grid` gives the "leading" spacing of DDIMPipeline's default scheduler.

Between grid points the path is smooth: L = log abar is interpolated in k by the monotone
piecewise-cubic Hermite interpolant of Fritsch & Carlson ("Monotone Piecewise Cubic
Interpolation", SIAM J. Numer. Anal. 1980, the harmonic-mean slopes), with slope 0 at the
clean end k = -1. L is then C^1 and decreasing in k, alpha = exp(L / 2) and sigma =
sqrt(1 - e^L); because L has a double zero at k = -1, sigma vanishes linearly there and
sigma'(1) is finite (written as sigma = (k + 1) sqrt(-Q e(L)) with Q = L / (k + 1)^2 and
e(L) = expm1(L) / L, both finite), so the probability-flow velocity is finite on [0, 1].
A sampler on an arbitrary grid therefore feeds the network fractional timesteps, which the
sinusoidal timestep embeddings of diffusers' networks accept.

Beta schedules (diffusers' `beta_schedule`): "linear" (beta_k linear from beta_start to
beta_end), "scaled_linear" (sqrt(beta) linear, Stable Diffusion's), "squaredcos_cap_v2"
(the cosine abar of "Improved Denoising Diffusion Probabilistic Models", Nichol & Dhariwal,
eq. 17, betas clipped at 0.999), or explicit `trained_betas`; computed here in float64
(diffusers' float32 alphas_cumprod agree to 5e-7). `prediction_type` epsilon / sample /
v_prediction is diffjax's noise / data / v prediction (`diffjax.fields`).
"""
import dataclasses
import json
import math
import os
from typing import Any, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np

from diffjax.core import Path
from diffjax.errors import ConfigError
from diffjax.paths.gaussian import gaussian_path
from diffjax.paths.interpolants import PATHS

BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
# diffusers' prediction_type -> the prediction name of diffjax.fields.
PREDICTION_TYPES = {"epsilon": "noise", "sample": "data", "v_prediction": "v"}
SPACINGS = ("leading", "trailing")
SCHEDULER_FILES = ("scheduler_config.json", os.path.join("scheduler", "scheduler_config.json"))
# Timesteps within this distance of an integer are the integer: t_k in float32 is off by
# at most T * 6e-8 steps (6e-5 for T = 1000).
SNAP = 1e-3


@dataclasses.dataclass(frozen=True)
class DDPMSchedule:
  """A discrete DDPM schedule: betas (T,) float64, what the network predicts, and the
  DDIM settings of the scheduler config it came from (for `diffusers_grid`)."""
  betas: np.ndarray
  prediction_type: str = "epsilon"
  timestep_spacing: str = "leading"
  steps_offset: int = 0
  set_alpha_to_one: bool = True

  @property
  def num_train_timesteps(self) -> int:
    return int(self.betas.shape[0])

  @property
  def alphas_cumprod(self) -> np.ndarray:
    """abar_k = prod_{i <= k} (1 - beta_i), (T,) float64."""
    return np.cumprod(1.0 - self.betas)

  @property
  def prediction(self) -> str:
    """The prediction name of `diffjax.fields` (noise, data or v)."""
    return PREDICTION_TYPES[self.prediction_type]


def _cosine_alpha_bar(s):
  return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2


def ddpm_betas(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4,
               beta_end=0.02, trained_betas=None) -> np.ndarray:
  """The (T,) float64 betas of a diffusers beta schedule (module docstring)."""
  if trained_betas is not None:
    betas = np.asarray(trained_betas, np.float64)
    if betas.ndim != 1 or not np.all((betas >= 0) & (betas < 1)):
      raise ConfigError("trained_betas must be a list of numbers in [0, 1); got "
                        f"{np.asarray(trained_betas).tolist()[:5]}...")
    return betas
  if not (isinstance(num_train_timesteps, int) and num_train_timesteps >= 2):
    raise ConfigError(f"num_train_timesteps must be an integer >= 2; got "
                      f"{num_train_timesteps!r}.")
  n = num_train_timesteps
  if beta_schedule == "linear":
    betas = np.linspace(beta_start, beta_end, n)
  elif beta_schedule == "scaled_linear":
    betas = np.linspace(beta_start ** 0.5, beta_end ** 0.5, n) ** 2
  elif beta_schedule == "squaredcos_cap_v2":
    s = np.arange(n + 1) / n
    abar = np.array([_cosine_alpha_bar(v) for v in s])
    betas = np.minimum(1 - abar[1:] / abar[:-1], 0.999)
  else:
    raise ConfigError(f"Unknown beta_schedule {beta_schedule!r}; valid: "
                      f"{', '.join(BETA_SCHEDULES)} (or trained_betas).")
  if not np.all((betas >= 0) & (betas < 1)):
    raise ConfigError(f"beta_start={beta_start}, beta_end={beta_end} give betas outside "
                      "[0, 1).")
  return betas


def schedule_from_config(config: Mapping[str, Any], where: str = "the scheduler config"
                         ) -> DDPMSchedule:
  """A `DDPMSchedule` from a diffusers scheduler config (a dict of scheduler_config.json;
  the beta-schedule keys of any DDPM-family scheduler). ConfigError names a bad value."""
  if config.get("rescale_betas_zero_snr", False):
    raise ConfigError(f"{where}: rescale_betas_zero_snr=true (abar = 0 at the last step, an "
                      "infinite log-SNR) is not supported.")
  prediction_type = config.get("prediction_type", "epsilon")
  if prediction_type not in PREDICTION_TYPES:
    raise ConfigError(f"{where}: unknown prediction_type {prediction_type!r}; valid: "
                      f"{', '.join(PREDICTION_TYPES)}.")
  spacing = config.get("timestep_spacing", "leading")
  try:
    betas = ddpm_betas(config.get("num_train_timesteps", 1000),
                       config.get("beta_schedule", "linear"),
                       config.get("beta_start", 1e-4), config.get("beta_end", 0.02),
                       config.get("trained_betas"))
  except ConfigError as error:
    raise ConfigError(f"{where}: {error}") from None
  return DDPMSchedule(betas, prediction_type, spacing, int(config.get("steps_offset", 0)),
                      bool(config.get("set_alpha_to_one", True)))


def find_scheduler_config(folder: str) -> Optional[str]:
  """The scheduler_config.json of a diffusers folder (a model or pipeline folder), or of
  `folder` itself when it names the file; None if there is none."""
  if os.path.isfile(folder):
    return folder
  for name in SCHEDULER_FILES:
    candidate = os.path.join(folder, name)
    if os.path.isfile(candidate):
      return candidate
  return None


def read_schedule(source) -> DDPMSchedule:
  """A `DDPMSchedule` from a scheduler config dict, a scheduler_config.json file, or a
  diffusers folder holding one (scheduler_config.json or scheduler/scheduler_config.json)."""
  if isinstance(source, Mapping):
    return schedule_from_config(source)
  source = os.fspath(source)
  found = find_scheduler_config(source)
  if found is None:
    raise ConfigError(f"{source} holds no scheduler_config.json (nor scheduler/"
                      "scheduler_config.json); save the scheduler beside the model "
                      "(scheduler.save_pretrained(folder)) or give the schedule's keys.")
  return schedule_from_config(read_json_config(found), found)


def read_json_config(path) -> dict:
  """A JSON object from a file (a diffusers config); ConfigError if unreadable."""
  try:
    with open(path) as f:
      value = json.load(f)
  except (OSError, ValueError) as error:
    raise ConfigError(f"{path} is not readable JSON: {error}") from None
  if not isinstance(value, dict):
    raise ConfigError(f"{path} is not a JSON object.")
  return value


def timestep_of(t, num_train_timesteps):
  """k(t) = T (1 - t) - 1 (shape of t), snapped to the nearest integer within SNAP steps
  (the float32 rounding of t_k) with the derivative of the unsnapped map (a straight-through
  snap: dk/dt = -T everywhere)."""
  t = jnp.asarray(t, jnp.float32)
  k = num_train_timesteps * (1.0 - t) - 1.0
  nearest = jnp.round(k)
  snapped = jnp.where(jnp.abs(k - nearest) < SNAP, nearest, k)
  return k + jax.lax.stop_gradient(snapped - k)


def time_of_timestep(k, num_train_timesteps):
  """t_k = (T - 1 - k) / T (float64 numpy, any shape): diffjax time of timestep k."""
  return (num_train_timesteps - 1 - np.asarray(k, np.float64)) / num_train_timesteps


def diffusers_grid(num_steps: int, schedule: DDPMSchedule, spacing: Optional[str] = None,
                   ) -> np.ndarray:
  """The (num_steps + 1,) increasing float32 times of diffusers' DDIM timesteps for
  `num_steps` inference steps: "leading" (DDIMScheduler's default: k = (N - 1 - i) T // N +
  steps_offset) or "trailing" (k = round(T - i T / N) - 1), then the final step to abar = 1
  (t = 1; with set_alpha_to_one=False to abar_0, t = t_0). Default: the schedule's spacing."""
  spacing = schedule.timestep_spacing if spacing is None else spacing
  n, total = num_steps, schedule.num_train_timesteps
  if spacing == "leading":
    ks = (np.arange(n)[::-1] * (total // n)).round() + schedule.steps_offset
  elif spacing == "trailing":
    ks = np.round(np.arange(total, 0, -total / n)) - 1
  else:
    raise ConfigError(f"Unknown timestep_spacing {spacing!r}; valid: {', '.join(SPACINGS)}.")
  final = 1.0 if schedule.set_alpha_to_one else time_of_timestep(0, total)
  return np.append(time_of_timestep(ks, total), final).astype(np.float32)


def _pchip_slopes(values: np.ndarray) -> np.ndarray:
  """Fritsch-Carlson slopes of unit-spaced knots: the harmonic mean of the neighbouring
  secants where they agree in sign, else 0; slope 0 at the first knot (the clean end),
  the last secant at the last."""
  secants = np.diff(values)
  left, right = secants[:-1], secants[1:]
  same = left * right > 0
  interior = np.where(same, 2 * left * right / np.where(same, left + right, 1.0), 0.0)
  return np.concatenate([[0.0], interior, secants[-1:]])


def log_alpha_bar_interpolant(alphas_cumprod: np.ndarray):
  """(L, Q) as functions of a continuous timestep k in [-1, T - 1] (any shape): L = log abar
  (module docstring) and Q = L / (k + 1)^2, finite at k = -1."""
  values = np.concatenate([[0.0], np.log(alphas_cumprod)])       # knots k = -1 .. T - 1
  slopes = _pchip_slopes(values)
  last = values.shape[0] - 2                                     # segments 0 .. T - 1
  v_table, m_table = jnp.asarray(values, jnp.float32), jnp.asarray(slopes, jnp.float32)

  def segment(k):
    k = jnp.clip(k, -1.0, last)
    j = jnp.clip(jnp.floor(k).astype(jnp.int32) + 1, 0, last)
    u = k - (j - 1).astype(k.dtype)
    return k, j, u

  def hermite(k):
    k, j, u = segment(k)
    v0, v1, m0, m1 = v_table[j], v_table[j + 1], m_table[j], m_table[j + 1]
    u2, u3 = u * u, u * u * u
    return ((2 * u3 - 3 * u2 + 1) * v0 + (u3 - 2 * u2 + u) * m0 + (3 * u2 - 2 * u3) * v1
            + (u3 - u2) * m1)

  def quotient(k):
    k, j, u = segment(k)
    # On the first segment v0 = m0 = 0, so L = u^2 ((3 - 2u) v1 + (u - 1) m1) exactly.
    first = (3 - 2 * u) * v_table[1] + (u - 1) * m_table[1]
    rest = hermite(k) / jnp.where(j == 0, 1.0, k + 1) ** 2   # k + 1 >= 1 where j > 0
    return jnp.where(j == 0, first, rest)

  return hermite, quotient


def _expm1_ratio(y):
  """expm1(y) / y, 1 at y = 0."""
  small = jnp.abs(y) < 1e-6
  return jnp.where(small, 1 + 0.5 * y, jnp.expm1(y) / jnp.where(small, 1.0, y))


def schedule_path(schedule: DDPMSchedule, name: str = "ddpm_discrete") -> Path:
  """The Gaussian path of a `DDPMSchedule` (module docstring)."""
  total = schedule.num_train_timesteps
  _, quotient = log_alpha_bar_interpolant(schedule.alphas_cumprod)

  def pieces(t):
    k = jnp.clip(timestep_of(t, total), -1.0, total - 1.0)
    q = quotient(k)
    return k + 1, q, (k + 1) ** 2 * q                 # (k + 1, Q, L)

  def alpha(t):
    return jnp.exp(0.5 * pieces(t)[2])

  def sigma(t):
    steps, q, log_abar = pieces(t)
    return steps * jnp.sqrt(jnp.maximum(-q * _expm1_ratio(log_abar), 0.0))

  return gaussian_path(name, alpha, sigma)


@PATHS.register("ddpm_discrete")
def ddpm_discrete_path(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4,
                       beta_end=0.02, trained_betas=None, scheduler="") -> Path:
  """DDPM's discrete schedule as a Gaussian path (module docstring). `scheduler`: a
  diffusers folder or scheduler_config.json whose schedule replaces the other keys ("" to
  use them)."""
  if scheduler:
    schedule = read_schedule(scheduler)
  else:
    schedule = DDPMSchedule(ddpm_betas(num_train_timesteps, beta_schedule, beta_start,
                                       beta_end, trained_betas))
  return schedule_path(schedule)
