"""Consistency models: the boundary-respecting parametrisation, consistency training (the
improved recipe) and consistency distillation from a teacher's probability-flow ODE step.

Noise levels and time. The papers index noise levels sigma_1 = sigma_min < ... < sigma_N =
sigma_max (noise grows with the index, the data sit at sigma = 0). On a Gaussian path
x_t = alpha(t) x1 + sigma(t) eps in diffjax time (noise at t = 0, data at t = 1) the level
of time t is the noise-to-signal ratio tau(t) = sigma(t) / alpha(t), decreasing in t, and
y = x_t / alpha(t) = x1 + tau eps is the papers' (EDM, variance-exploding) state. Level
sigma_i sits at the time t_i with tau(t_i) = sigma_i (found by bisection on the log-SNR,
`GaussianView.time_at_log_snr`), so t decreases as i grows. On the edm path (alpha = 1,
sigma(t) rho-spaced from sigma_max at t = 0 to sigma_min at t = 1) the Karras grid of N
levels is exactly the uniform grid t = 1 - (i - 1) / (N - 1).

Parametrisation ("Consistency Models", Song, Dhariwal, Chen & Sutskever, eq. 7 and
Appendix C, with EDM's input scaling, Karras et al., Table 1):
    f(x_t, t) = c_skip(tau) y + c_out(tau) F(c_in(tau) y, t),
    c_skip = sigma_data^2 / ((tau - sigma_min)^2 + sigma_data^2),
    c_out = sigma_data (tau - sigma_min) / sqrt(sigma_data^2 + tau^2),
    c_in = 1 / sqrt(sigma_data^2 + tau^2).
tau - sigma_min is floored at 0, so f(x_t, t) = y exactly wherever tau <= sigma_min (the
boundary condition; at t = 1, f(x, 1) = x). Above sigma_max (near t = 0 on a path whose
tau is infinite there, e.g. rectified flow) the state is read at sigma_max as
y = sigma_max x / sigma(t): alpha x1 is neglected against sigma eps, as the paper's
x_T = sigma_max z does.

Consistency training ("Improved Techniques for Training Consistency Models", Song &
Dhariwal, Sec. 3-5), no teacher: with x1 from the data and one eps ~ N(0, I),
    L = E[ lambda(sigma_i) d(f_theta(x1 + sigma_{i+1} eps, sigma_{i+1}),
                            sg f_theta(x1 + sigma_i eps, sigma_i)) ],
lambda = 1 / (sigma_{i+1} - sigma_i), d the pseudo-Huber distance
sqrt(|a - b|^2 + c^2) - c with c = 0.00054 sqrt(dim), i drawn with probability
proportional to erf((log sigma_{i+1} - P_mean) / (sqrt 2 P_std)) - erf((log sigma_i -
P_mean) / (sqrt 2 P_std)) (P_mean -1.1, P_std 2.0), and N(k) = min(s0 2^floor(k / K'),
s1) + 1 levels at step k, K' = floor(K / (log2(s1 / s0) + 1)) (10 to 1280 levels doubling
over K steps). The target is the stop-gradient of the same parameters (no EMA teacher).

Consistency distillation ("Consistency Models", Algorithm 2): the pair is (x at
sigma_{i+1}, one step of the teacher's probability-flow ODE from it to sigma_i), the ODE
step being one step of any deterministic registered sampler (`diffjax.solvers.SAMPLERS`;
its declaration is read, a stochastic one refused) from t_{i+1} to t_i on the teacher's
path. Levels, weights and distance as above, with the original paper's defaults (18 levels
drawn uniformly, unit weights, squared L2) unless the config says otherwise. The target
is again the stop-gradient of the same parameters (the engine's EMA is for evaluation).
"""
import dataclasses
import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erf

from diffjax.core import TINY, Fields, GaussianView, require_gaussian, time_column
from diffjax.distillation.methods import (DISTILLATION_METHODS, DistillationMethod,
                                          Student, check_options, method_options, player,
                                          sampler_generate)
from diffjax.errors import ConfigError
from diffjax.fields import complete
from diffjax.solvers import SAMPLERS, sampler_for
from diffjax.train.validation import Key

DISTANCES = ("pseudo_huber", "squared_l2")
WEIGHTINGS = ("inverse_gap", "uniform")
LEVEL_SAMPLINGS = ("lognormal", "uniform")
# The improved recipe's constant of the pseudo-Huber distance, times sqrt(dim).
HUBER_PER_SQRT_DIM = 0.00054


@dataclasses.dataclass(frozen=True)
class NoiseLevels:
  """The Karras grid sigma_i = (sigma_min^(1/rho) + i / (N - 1) (sigma_max^(1/rho) -
  sigma_min^(1/rho)))^rho, i = 0..N-1 ("Elucidating the Design Space ...", eq. 5; 0-based
  here), on a Gaussian path (module docstring)."""
  view: GaussianView
  sigma_min: float = 0.002
  sigma_max: float = 80.0
  rho: float = 7.0

  def level(self, index, num_levels):
    """sigma_index of the N-level grid; index and num_levels int arrays (any shape)."""
    lo, hi = self.sigma_min ** (1 / self.rho), self.sigma_max ** (1 / self.rho)
    frac = index / jnp.maximum(num_levels - 1, 1)
    return (lo + frac * (hi - lo)) ** self.rho

  def time(self, level):
    """The diffjax time t with tau(t) = level (bisection on the log-SNR)."""
    return self.view.time_at_log_snr(-jnp.log(level))

  def noisy(self, x1, eps, level, t):
    """x_t = alpha(t) (x1 + level eps): x1, eps (B, ...), level and t (B,)."""
    return time_column(self.view.alpha(t), x1) * (x1 + time_column(level, x1) * eps)


def consistency_function(network: Callable, levels: NoiseLevels, sigma_data=0.5):
  """f(params, x, t, labels) -> (B, ...): the parametrised consistency function (module
  docstring) of network(params, x_in, t, labels) -> (B, ...); x (B, ...), t () or (B,)."""
  view, sigma_min, sigma_max = levels.view, levels.sigma_min, levels.sigma_max
  t_at_max = float(levels.time(jnp.float32(sigma_max)))
  sd2 = sigma_data ** 2

  def f(params, x, t, labels=None):
    t = jnp.broadcast_to(jnp.asarray(t, jnp.float32), x.shape[:1])
    alpha, sigma = view.alpha(t), view.sigma(t)
    tau = sigma / jnp.maximum(alpha, TINY)
    beyond = tau > sigma_max
    scale = jnp.where(beyond, sigma_max / jnp.maximum(sigma, TINY),
                      1 / jnp.maximum(alpha, TINY))
    tau = jnp.minimum(tau, sigma_max)
    gap = jnp.maximum(tau - sigma_min, 0.0)
    c_skip = sd2 / (gap ** 2 + sd2)
    c_out = sigma_data * gap / jnp.sqrt(sd2 + tau ** 2)
    c_in = 1 / jnp.sqrt(sd2 + tau ** 2)
    col = lambda c: time_column(c, x)
    y = col(scale) * x
    out = network(params, col(c_in) * y, jnp.where(beyond, t_at_max, t), labels)
    return col(c_skip) * y + col(c_out) * out

  return f


def ict_num_levels(step, total_steps, s0=10, s1=1280):
  """N(k) = min(s0 2^floor(k / K'), s1) + 1, K' = floor(K / (log2(s1 / s0) + 1)) (the
  improved recipe's discretisation curriculum, eq. 5 of Song & Dhariwal); step an int
  array, total_steps K a Python int."""
  period = max(total_steps // (int(math.log2(s1 / s0)) + 1), 1)
  doublings = jnp.minimum(step // period, math.ceil(math.log2(s1 / s0)))
  return jnp.minimum(s0 * 2 ** doublings, s1) + 1


def sample_level_index(key, shape, num_levels, max_levels, levels: NoiseLevels,
                       sampling="lognormal", p_mean=-1.1, p_std=2.0):
  """Indices i in [0, N - 2] of the pair (sigma_i, sigma_{i+1}) of the N-level grid
  (num_levels N traced, at most max_levels): "uniform", or "lognormal" with probability
  proportional to the log-normal mass of [sigma_i, sigma_{i+1}] (module docstring)."""
  index = jnp.arange(max_levels - 1)
  valid = index < num_levels - 1
  if sampling == "uniform":
    mass = jnp.ones(index.shape)
  else:
    cdf = lambda s: erf((jnp.log(s) - p_mean) / (math.sqrt(2) * p_std))
    mass = cdf(levels.level(index + 1, num_levels)) - cdf(levels.level(index, num_levels))
  # Inverse-CDF sampling: one uniform draw per example (not one per level and example).
  cumulative = jnp.cumsum(jnp.where(valid, jnp.maximum(mass, 0.0), 0.0))
  u = jax.random.uniform(key, shape) * cumulative[-1]
  return jnp.minimum(jnp.searchsorted(cumulative, u, side="right"), num_levels - 2)


def distance(a, b, kind="pseudo_huber", c=0.0):
  """(B,) distances between a and b (B, ...): "pseudo_huber" sqrt(|a - b|^2 + c^2) - c or
  "squared_l2" |a - b|^2, summed over every non-batch axis."""
  sq = jnp.sum(jnp.square(a - b), axis=tuple(range(1, a.ndim)))
  if kind == "squared_l2":
    return sq
  return jnp.sqrt(sq + c ** 2) - c


def huber_constant(shape, scale=1.0):
  """c = scale x 0.00054 sqrt(dim) for examples of `shape` (the improved recipe's c)."""
  return scale * HUBER_PER_SQRT_DIM * math.sqrt(int(np.prod(shape)))


def _pair_loss(f, params, x_hi, t_hi, x_lo, t_lo, gap, labels, options):
  """mean lambda d(f(x_hi, t_hi), sg f(x_lo, t_lo)) and its aux."""
  out = f(params, x_hi, t_hi, labels)
  target = jax.lax.stop_gradient(f(params, x_lo, t_lo, labels))
  d = distance(out, target, options["distance"],
               huber_constant(out.shape[1:], options["huber_scale"]))
  weight = 1 / gap if options["weighting"] == "inverse_gap" else jnp.ones_like(gap)
  return jnp.mean(weight * d), {"distance": jnp.mean(d)}


def consistency_training_loss(f, params, key, x1, labels, step, levels: NoiseLevels,
                              options) -> tuple:
  """The consistency-training loss (module docstring) of f(params, x, t, labels) on data
  x1 (B, ...) at training step `step`; options: curriculum_steps, s0, s1, level_sampling,
  p_mean, p_std, distance, huber_scale, weighting. Returns (loss, aux)."""
  k_index, k_eps = jax.random.split(key)
  s1 = options["s1"]
  n = ict_num_levels(step, options["curriculum_steps"], options["s0"], s1)
  i = sample_level_index(k_index, x1.shape[:1], n, s1 + 1, levels, options["level_sampling"],
                         options["p_mean"], options["p_std"])
  lo, hi = levels.level(i, n), levels.level(i + 1, n)
  t_lo, t_hi = levels.time(lo), levels.time(hi)
  eps = jax.random.normal(k_eps, x1.shape, x1.dtype)
  loss, aux = _pair_loss(f, params, levels.noisy(x1, eps, hi, t_hi), t_hi,
                         levels.noisy(x1, eps, lo, t_lo), t_lo, hi - lo, labels, options)
  return loss, dict(aux, num_levels=n)


def ode_step(name: str, path, options=None):
  """step(fields_of, x, labels, t, t_next) -> x_next: one step of the registered sampler
  `name` on `path` per example (x (B, ...), labels (B,) or None, t and t_next (B,)),
  fields_of(labels) giving each example's teacher fields. A sampler that declares itself
  stochastic is refused (ConfigError); the step runs without a key, so a stochastic one
  that does not declare it fails when traced (`check_ode_step`)."""
  options = dict(options or {})
  declared = sampler_for(name, options)
  if declared.stochastic:
    raise ConfigError(f"method.ode_solver={name!r} is a stochastic sampler; consistency "
                      "distillation steps the probability-flow ODE: give a deterministic "
                      "one (e.g. heun, euler, dpm_solver_pp_2m).")
  try:
    stepper = declared.build(path, **options)
  except (TypeError, ValueError) as error:
    raise ConfigError(f"method.ode_solver={name!r} cannot step a teacher here: "
                      f"{' '.join(str(error).split())}") from None

  def one(fields_of, x, label, t, t_next):
    x = x[None]
    fields = fields_of(None if label is None else label[None])
    state = stepper.init(x, jnp.stack([t, t_next]))
    return stepper.step(fields, x, state, t, t_next, None)[0][0]

  def step(fields_of, x, labels, t, t_next):
    per_example = lambda xi, li, ti, ni: one(fields_of, xi, li, ti, ni)
    return jax.vmap(per_example)(x, labels, t, t_next)

  step.needs = stepper.needs   # the predictions it reads (checked by check_ode_step)
  return step


def consistency_distillation_loss(f, params, key, x1, labels, teacher_fields_of, step_fn,
                                  levels: NoiseLevels, options) -> tuple:
  """The consistency-distillation loss (module docstring) of f on data x1 (B, ...):
  x at sigma_{i+1}, the teacher's ODE step `step_fn` (`ode_step`) to sigma_i, options
  num_levels, level_sampling, p_mean, p_std, distance, huber_scale, weighting."""
  k_index, k_eps = jax.random.split(key)
  n = jnp.asarray(options["num_levels"], jnp.int32)
  i = sample_level_index(k_index, x1.shape[:1], n, options["num_levels"], levels,
                         options["level_sampling"], options["p_mean"], options["p_std"])
  lo, hi = levels.level(i, n), levels.level(i + 1, n)
  t_lo, t_hi = levels.time(lo), levels.time(hi)
  eps = jax.random.normal(k_eps, x1.shape, x1.dtype)
  x_hi = levels.noisy(x1, eps, hi, t_hi)
  x_lo = jax.lax.stop_gradient(step_fn(teacher_fields_of, x_hi, labels, t_hi, t_lo))
  return _pair_loss(f, params, x_hi, t_hi, x_lo, t_lo, hi - lo, labels, options)


# ----------------------------------------------------------------------------------------
# The methods: config keys, students, registrations.

COMMON_KEYS = (
    Key("method.sigma_min", "float", 0.0, open_low=True),
    Key("method.sigma_max", "float", 0.0, open_low=True),
    Key("method.sigma_data", "float", 0.0, open_low=True),
    Key("method.rho", "float", 0.0, open_low=True),
    Key("method.level_sampling", "name", names=lambda: LEVEL_SAMPLINGS),
    Key("method.p_mean", "float"),
    Key("method.p_std", "float", 0.0, open_low=True),
    Key("method.distance", "name", names=lambda: DISTANCES),
    Key("method.huber_scale", "float", 0.0, open_low=True,
        meaning="pseudo-Huber c = huber_scale x 0.00054 sqrt(dim)"),
    Key("method.weighting", "name", names=lambda: WEIGHTINGS),
)
CT_KEYS = COMMON_KEYS + (
    Key("method.s0", "int", 2, meaning="levels at the start of the curriculum"),
    Key("method.s1", "int", 2, meaning="levels at its end"),
    Key("method.curriculum_steps", "int", 0, meaning="0: train.num_steps"),
)
CD_KEYS = COMMON_KEYS + (
    Key("method.num_levels", "int", 2, meaning="noise levels of the Karras grid"),
    Key("method.ode_solver", "name", names=SAMPLERS.names),
)
CT_DEFAULTS = dict(sigma_min=0.002, sigma_max=80.0, sigma_data=0.5, rho=7.0,
                   level_sampling="lognormal", p_mean=-1.1, p_std=2.0,
                   distance="pseudo_huber", huber_scale=1.0, weighting="inverse_gap",
                   s0=10, s1=1280, curriculum_steps=0)
CD_DEFAULTS = dict(CT_DEFAULTS, level_sampling="uniform", distance="squared_l2",
                   weighting="uniform", num_levels=18, ode_solver="heun")
for _key in ("s0", "s1", "curriculum_steps"):
  CD_DEFAULTS.pop(_key)


def _check(keys, defaults):
  def check(config):
    check_options(config, keys, tuple(defaults) + ("name",))
    options = method_options(config, defaults)
    if not options["sigma_min"] < options["sigma_max"]:
      raise ConfigError(f"method.sigma_min={options['sigma_min']} must be below "
                        f"method.sigma_max={options['sigma_max']}.")
    if "s0" in options and not options["s0"] <= options["s1"]:
      raise ConfigError(f"method.s0={options['s0']} must be at most method.s1="
                        f"{options['s1']}.")
  return check


def _student(context, options, loss) -> Student:
  """A consistency student: the network F, f, its player and its multistep sampler."""
  levels = NoiseLevels(require_gaussian(context.path, "A consistency model"),
                       options["sigma_min"], options["sigma_max"], options["rho"])
  network = context.network()
  f = consistency_function(lambda p, x, t, labels: network.apply(p, x, t, labels), levels,
                           options["sigma_data"])

  def student_loss(params, key, shard, step, batch):
    del batch
    k_data, k_loss = jax.random.split(key)
    x1, labels = context.draw(k_data, context.batch_size)
    return loss(f, params["student"], k_loss, shard(x1), labels, step, levels)

  fields_of = lambda params, labels: Fields.of(
      data=lambda x, t: f(params["student"], x, t, labels))
  generate = sampler_generate(context, "consistency", fields_of, 1,
                              lambda params, labels: {"sigma_min": options["sigma_min"]})
  return Student(lambda key: {"student": network.init(key)},
                 (player("student", student_loss, ("student",)),), generate)


def _require_gaussian_path(context):
  if context.path.gaussian is None:
    raise ConfigError(f"path.name={context.path.name!r}: a consistency model needs a "
                      "Gaussian path (rectified_flow, edm, vp, ...).")


def build_consistency_training(context) -> Student:
  _require_gaussian_path(context)
  options = method_options(context.config, CT_DEFAULTS)
  options["curriculum_steps"] = (options["curriculum_steps"]
                                 or context.config.train.num_steps)

  def loss(f, params, key, x1, labels, step, levels):
    return consistency_training_loss(f, params, key, x1, labels, step, levels, options)

  return _student(context, options, loss)


def build_consistency_distillation(context) -> Student:
  _require_gaussian_path(context)
  options = method_options(context.config, CD_DEFAULTS)
  teacher = context.teacher
  step_fn = ode_step(options["ode_solver"], teacher.path)
  fields_of = lambda labels: complete(teacher.fields(labels), teacher.path)
  check_ode_step(step_fn, fields_of, context, options["ode_solver"])

  def loss(f, params, key, x1, labels, step, levels):
    del step
    return consistency_distillation_loss(f, params, key, x1, labels, fields_of, step_fn,
                                         levels, options)

  return _student(context, options, loss)


def check_ode_step(step_fn, fields_of, context, name):
  """Checks the sampler's needs against the teacher's fields and traces one ODE step on a
  batch of two (no computation): a stochastic sampler that does not declare itself, or one
  the teacher's fields cannot drive (a token sampler), is refused with one ConfigError
  line."""
  x = jnp.zeros((2, *context.spec.shape), jnp.float32)
  labels = context.random_labels(jax.random.PRNGKey(0), 2)
  t = jnp.full((2,), 0.5, jnp.float32)
  try:
    fields_of(labels).require(step_fn.needs, f"method.ode_solver={name!r}")
    jax.eval_shape(lambda x: step_fn(fields_of, x, labels, t, t + 0.1), x)
  except ValueError as error:
    raise ConfigError(f"method.ode_solver={name!r} cannot step the teacher's probability-"
                      f"flow ODE: {' '.join(str(error).split())}") from None


DISTILLATION_METHODS.register("consistency_training", DistillationMethod(
    "consistency_training", build_consistency_training, _check(CT_KEYS, CT_DEFAULTS),
    needs_teacher=False, sampler="consistency", num_steps=1,
    paper="Improved Techniques for Training Consistency Models"))
DISTILLATION_METHODS.register("consistency_distillation", DistillationMethod(
    "consistency_distillation", build_consistency_distillation,
    _check(CD_KEYS, CD_DEFAULTS), needs_teacher=True, sampler="consistency", num_steps=1,
    paper="Consistency Models"))
