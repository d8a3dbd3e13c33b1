"""What every score-distillation method shares: a one-step generator, a "fake" score
network fitted to the generator's samples, the noising of generator samples on the
teacher's Gaussian path, and the loss whose gradient is a given direction.

Time convention: diffjax's t in [0, 1] with t = 0 noise and t = 1 data, x_t = alpha(t) x +
sigma(t) eps on a Gaussian path (`diffjax.core.GaussianView`). The papers (DMD, f-distill,
SiD, SFD, DisBack) write x_t = x + sigma eps or alpha_t x + sigma_t eps with noise at large
t: their t is 1 - t here, and their "t near 0" (little noise) is t near 1 here.

  generator = network_generator(build_model("mlp", (2,)))        # x = G(z) from scratch
  generator = denoiser_generator(run.pipeline, run.params, 0.3)  # x = D_teacher(a z, 0.3)
  core = ScoreDistillation(generator, fake_pipeline, teacher.fields, source, ...)
  x, labels = core.generate(params["generator"], key, shard)
  t, x_t = core.noise(key, x)
"""
import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections

from diffjax.core import Fields, require_gaussian, time_column
from diffjax.errors import ConfigError
from diffjax.fields import complete
from diffjax.objectives import OBJECTIVES
from diffjax.pipeline import Pipeline, build_pipeline
from diffjax.distillation.methods import check_options
from diffjax.train.validation import Key


@dataclasses.dataclass(frozen=True)
class OneStepGenerator:
  """x = G(params, z, labels): z (B, *shape) a source draw, labels (B,) or None.

  Attributes:
    init: init(key) -> parameters.
    apply: apply(params, z, labels) -> x (B, *shape).
  """
  init: Callable[[Any], Any]
  apply: Callable[..., Any]

  def fields(self, params, labels=None) -> Fields:
    """G as `Fields` whose data prediction at (z, t) is G(z): DDIM's single step from
    t = 0 to t = 1 (alpha(1) x1_hat + sigma(1) eps_hat = x1_hat) then returns G(z), so the
    student generates through the registered "ddim" sampler with num_steps=1."""
    return Fields.of(data=lambda x, t: self.apply(params, x, labels))


def network_generator(model, time: float = 0.0) -> OneStepGenerator:
  """A generator trained from scratch: x = model.apply(params, z, time, labels) for a
  registered model (`diffjax.models`) whose input and output have the data's shape."""
  return OneStepGenerator(model.init,
                          lambda params, z, labels: model.apply(params, z, time, labels))


def denoiser_generator(pipeline: Pipeline, params, time: float) -> OneStepGenerator:
  """The generator of "Score identity Distillation" (Zhou et al., 2024, section 4),
  initialised from the teacher: x = D(a(time) z, time), the data prediction of the
  network `pipeline` trains (parameters starting at the teacher's `params`) at the
  noisy input a(time) z, i.e. x_time for data x1 = 0 (a(time) = sigma(time) / source std
  on a Gaussian path). Early time (much noise) makes the first generator the teacher's
  one-step denoiser: its class means."""
  if not 0.0 <= time < 1.0:
    raise ConfigError(f"generator.time={time!r} must lie in [0, 1): the noise level the "
                      "generator denoises from (t = 0: pure noise).")
  a = pipeline.path.coefficients(time)[0]

  def apply(p, z, labels):
    fields = complete(pipeline.fields(p, labels), pipeline.path)
    return fields.evaluate(a * z, time).data

  return OneStepGenerator(lambda key: params, apply)


def direction_loss(x_t, direction):
  """mean over the batch of sum(stop_gradient(direction) * x_t): a loss whose gradient
  in the parameters that made x_t is E[direction . dx_t / dtheta] (x_t, direction (B, ...))."""
  product = jax.lax.stop_gradient(direction) * x_t
  return jnp.mean(jnp.sum(product.reshape(product.shape[0], -1), axis=-1))


def per_example_mean_abs(u):
  """(B, ...) -> (B,) mean absolute value over the non-batch axes."""
  return jnp.mean(jnp.abs(u).reshape(u.shape[0], -1), axis=-1)


@dataclasses.dataclass(frozen=True)
class ScoreDistillation:
  """The parts a score-distillation method is built from.

  Attributes:
    generator: the student, a `OneStepGenerator`.
    fake: the `Pipeline` (the teacher's path, an objective and a network) whose loss fits
      the fake score to generator samples and whose fields are the fake score.
    source: source(key, n) -> (n, *shape) generator inputs z (the path's source).
    num_classes: > 0: class-conditional (labels uniform over the classes).
    batch_size: generator samples per loss call.
    t_min, t_max: the noising times t ~ U[t_min, t_max] (diffjax time).
  """
  generator: OneStepGenerator
  fake: Pipeline
  source: Callable[[Any, int], Any]
  num_classes: int
  batch_size: int
  t_min: float = 0.02
  t_max: float = 0.98

  def __post_init__(self):
    require_gaussian(self.fake.path, "score distillation")
    if not 0.0 <= self.t_min < self.t_max <= 1.0:
      raise ConfigError(f"distill.t_min={self.t_min}, distill.t_max={self.t_max} must "
                        "satisfy 0 <= t_min < t_max <= 1.")

  @property
  def view(self):
    return self.fake.path.gaussian

  def labels(self, key):
    """(B,) uniform labels for a class-conditional student, else None."""
    if not self.num_classes:
      return None
    return jax.random.randint(key, (self.batch_size,), 0, self.num_classes)

  def generate(self, generator_params, key, shard, labels=None):
    """(x (B, *shape), labels): a batch of generator samples (labels drawn when None)."""
    k_z, k_y = jax.random.split(key)
    labels = self.labels(k_y) if labels is None else labels
    z = shard(self.source(k_z, self.batch_size))
    return self.generator.apply(generator_params, z, labels), labels

  def noise(self, key, x):
    """(t (B,), x_t (B, ...), eps): x noised on the path at t ~ U[t_min, t_max]."""
    k_t, k_eps = jax.random.split(key)
    t = jax.random.uniform(k_t, (x.shape[0],), minval=self.t_min, maxval=self.t_max)
    eps = jax.random.normal(k_eps, x.shape, x.dtype)
    view = self.view
    x_t = time_column(view.alpha(t), x) * x + time_column(view.sigma(t), x) * eps
    return t, x_t, eps

  def fake_fields(self, fake_params, labels) -> Fields:
    return complete(self.fake.fields(fake_params, labels), self.fake.path)

  def fake_loss(self, fake_params, generator_params, key, shard):
    """Denoising score matching of the fake network on a fresh batch of generator
    samples (held fixed: no gradient reaches the generator)."""
    k_gen, k_loss = jax.random.split(key)
    x, labels = self.generate(generator_params, k_gen, shard)
    return self.fake.loss(fake_params, k_loss, shard, jax.lax.stop_gradient(x), labels)


def fake_pipeline(pipeline: Pipeline) -> Pipeline:
  """A pipeline as the fake score uses it: no condition dropout (the fake score is
  conditioned on the generator's own labels)."""
  return dataclasses.replace(pipeline, label_dropout=0.0)


def teacher_completed(fields_of: Callable, path) -> Callable:
  """labels -> the teacher's `Fields` completed on `path` (score and data both given)."""
  return lambda labels: complete(fields_of(labels), path)


# ---- From a distillation context (`diffjax.distillation.context`) ----
GENERATOR_KINDS = ("network", "teacher")
FAKE_INITS = ("scratch", "teacher")
SCORE_KEYS = (
    Key("method.generator", "name", names=lambda: GENERATOR_KINDS),
    Key("method.generator_time", "float", 0.0, 1.0, open_high=True),
    Key("method.fake_init", "name", names=lambda: FAKE_INITS),
    Key("method.fake_objective", "name", names=OBJECTIVES.names),
    Key("method.t_min", "float", 0.0, 1.0),
    Key("method.t_max", "float", 0.0, 1.0),
)


def check_score_options(config, keys=SCORE_KEYS, strings=()):
  """ConfigError (one line) for a bad or unknown option of a score-distillation method
  (`keys`, each a method.* `Key`; `strings`: names of free-form string options)."""
  check_options(config, keys,
                ("name",) + tuple(strings) + tuple(k.path.split(".", 1)[1] for k in keys))
  if not config.method.t_min < config.method.t_max:
    raise ConfigError(f"method.t_min={config.method.t_min} must be below method.t_max="
                      f"{config.method.t_max}.")


def _teacher_run(context, key, value):
  run = None if context.teacher is None else context.teacher.run
  if run is None:
    raise ConfigError(f"method.{key}={value!r} starts from the teacher's network: it needs "
                      "a trained teacher run (teacher.kind='run'); use 'scratch' / "
                      "'network' with an oracle teacher.")
  return run


def generator_from_context(context) -> OneStepGenerator:
  """method.generator: "network" (config.model from scratch, x = net(z, 0, labels)) or
  "teacher" (the teacher run's denoiser at method.generator_time, `denoiser_generator`)."""
  options = context.options
  if options.generator == "teacher":
    run = _teacher_run(context, "generator", "teacher")
    return denoiser_generator(run.pipeline, run.params, options.generator_time)
  return network_generator(context.network())


def fake_from_context(context):
  """(the fake score's `Pipeline`, init(key) -> its parameters): method.fake_init
  "teacher" copies the teacher run (its network, objective and parameters, as DMD and SiD
  do); "scratch" builds config.model trained by the objective method.fake_objective on
  the student's path."""
  options = context.options
  if options.fake_init == "teacher":
    run = _teacher_run(context, "fake_init", "teacher")
    return fake_pipeline(run.pipeline), lambda key: run.params
  section = ml_collections.ConfigDict(dict(
      path=context.config.path.to_dict(), model=context.config.model.to_dict(),
      objective=dict(name=options.fake_objective)))
  pipeline = fake_pipeline(build_pipeline(section, context.spec))
  return pipeline, pipeline.model.init


def core_from_context(context):
  """(the `ScoreDistillation` of the context's options, init(key) -> {"generator",
  "fake"} parameters)."""
  generator = generator_from_context(context)
  fake, fake_init = fake_from_context(context)
  options = context.options
  core = ScoreDistillation(generator, fake, context.source, context.num_classes,
                           context.batch_size, options.t_min, options.t_max)

  def init(key):
    k_gen, k_fake = jax.random.split(key)
    return {"generator": generator.init(k_gen), "fake": fake_init(k_fake)}
  return core, init


def section_or_default(config, name):
  """A player's optimizer: the config section `name` when the config has it (its keys
  over config.optim), else None (config.optim itself)."""
  return name if name in config else None
