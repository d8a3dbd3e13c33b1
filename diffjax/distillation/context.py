"""What a distillation method is built from: the data, the teacher, the path, the student's
network (`DistillationContext`, `build_context(config)`).

Config sections read here:
  data     name "toy2d" (target: a `diffjax.data.TOY_2D` name, dim), "digits" (the 8x8
           digits in [-1, 1], 10 classes) or "teacher" (exact draws of an oracle teacher's
           target mixture);
  teacher  `diffjax.distillation.teachers` (kind, mixture / workdir, use_ema);
  path     the path of the student (and of an oracle teacher); a run teacher must be on
           the same path (its recorded config.path);
  model    the student's network (`diffjax.models`; num_classes > 0: class-conditional);
  train    batch_size and grad_accum_steps (one loss call draws their quotient).
"""
import dataclasses
from typing import Any, Callable, NamedTuple, Optional

import jax
import numpy as np

from diffjax.core import Path
from diffjax.data import array_sampler, get_sampler
from diffjax.data.digits import digits_bin_centres
from diffjax.distillation.teachers import Teacher, teacher_from_config
from diffjax.errors import ConfigError
from diffjax.models import build_model
from diffjax.models.step_conditioned import step_conditioned
from diffjax.paths import build_path
from diffjax.pipeline import DataSpec, component_options
from diffjax.registry import Registry

DIGITS_SHAPE = (8, 8, 1)


class DistillationData(NamedTuple):
  """spec: the data's `DataSpec`; draw(key, n) -> x1 (n, *shape), or (x1, labels (n,))
  for labelled data, jit-compatible; reference(seed, n) -> held-out (x (n, *shape), labels
  or None) as NumPy arrays, from draws no training step makes."""
  spec: DataSpec
  draw: Callable
  reference: Callable


DATA_SOURCES = Registry("distillation data")


@DATA_SOURCES.register("toy2d")
def _toy2d(section, teacher):
  del teacher
  draw = get_sampler(section.get("target", "moons"))
  reference = lambda seed, n: (np.asarray(draw(jax.random.PRNGKey(seed), n)), None)
  return DistillationData(DataSpec((section.get("dim", 2),)), draw, reference)


@DATA_SOURCES.register("digits")
def _digits(section, teacher):
  del section, teacher
  images, labels = digits_bin_centres("train")
  test_images, test_labels = digits_bin_centres("test")

  def reference(seed, n):
    del seed   # The test split, in a fixed order.
    return test_images[:n], test_labels[:n]

  return DistillationData(DataSpec(DIGITS_SHAPE, 10), array_sampler(images, labels),
                          reference)


@DATA_SOURCES.register("teacher")
def _teacher_target(section, teacher):
  del section
  if teacher is None or not teacher.exact:
    raise ConfigError("data.name='teacher' draws the exact target of an oracle teacher; "
                      "set teacher.kind='oracle' (or give data.name='toy2d' / 'digits').")

  def reference(seed, n):
    drawn = teacher.target_sample(jax.random.PRNGKey(seed), n)
    x, labels = drawn if isinstance(drawn, tuple) else (drawn, None)
    return np.asarray(x), None if labels is None else np.asarray(labels)

  return DistillationData(teacher.spec, teacher.target_sample, reference)


def data_shape(section) -> tuple:
  """The shape of one example of the data section, known before anything is loaded."""
  name = section.get("name", "toy2d")
  DATA_SOURCES.get(name)
  if name == "toy2d":
    return (section.get("dim", 2),)
  return DIGITS_SHAPE if name == "digits" else None


@dataclasses.dataclass(frozen=True)
class DistillationContext:
  """Everything a method builds its student from.

  Attributes:
    config: the run's config (the method's options are config.method).
    data: the `DistillationData`.
    path: the student's path (the teacher's, when there is one).
    teacher: the `Teacher`, or None.
    source: source(key, n) -> (n, *shape) draws of x0 at t = 0 (the teacher's source when
      there is one, else the path's own N(0, s^2 I), else N(0, I)).
    num_classes: the student's classes (0: unconditional).
    batch_size: examples one loss call draws (train.batch_size / train.grad_accum_steps).
  """
  config: Any
  data: DistillationData
  path: Path
  teacher: Optional[Teacher]
  source: Callable
  num_classes: int
  batch_size: int

  @property
  def spec(self) -> DataSpec:
    return self.data.spec

  @property
  def options(self):
    """The method's section, config.method."""
    return self.config.method

  def draw(self, key, n):
    """(x1 (n, *shape), labels (n,) or None): labels only for a class-conditional student."""
    drawn = self.data.draw(key, n)
    x1, labels = drawn if isinstance(drawn, tuple) else (drawn, None)
    return x1, labels if self.num_classes else None

  def random_labels(self, key, n):
    """(n,) uniform class labels for a class-conditional student, else None."""
    if not self.num_classes:
      return None
    return jax.random.randint(key, (n,), 0, self.num_classes)

  def network(self, step_input=False):
    """The student's network from config.model: model.apply(params, x, t, labels), or
    with step_input (a flow map) apply(params, x, t, h, labels)
    (`diffjax.models.step_conditioned`)."""
    options = component_options(self.config.model)
    if step_input:
      return step_conditioned(self.config.model.name, self.spec.shape, **options)
    return build_model(self.config.model.name, self.spec.shape, **options)


def _check_teacher_path(config, teacher: Teacher):
  if teacher.run is None:
    return
  recorded = teacher.run.config.get("path")
  recorded = {} if recorded is None else recorded.to_dict()
  if recorded != config.path.to_dict():
    raise ConfigError(f"path={config.path.to_dict()} differs from the teacher run's path "
                      f"{recorded}: a student lives on its teacher's path; set config.path "
                      "to the teacher's.")


def default_source(path: Path, shape) -> Callable:
  """x0 draws at t = 0: a one-sided path's own N(0, s^2 I), else N(0, I)."""
  if path.one_sided:
    return lambda key, n: path.source_sample(key, (n, *shape))
  return lambda key, n: jax.random.normal(key, (n, *shape))


def build_context(config, teacher: Optional[Teacher] = None) -> DistillationContext:
  """The context of `config` (module docstring); ConfigError / RunError before anything
  is written. `teacher`: a `Teacher` built in a notebook or a benchmark, in place of the
  one config.teacher names."""
  if teacher is None:
    teacher = teacher_from_config(config, data_shape(config.data))
  data = DATA_SOURCES.get(config.data.get("name", "toy2d"))(config.data, teacher)
  if teacher is not None:
    _check_teacher_path(config, teacher)
    path = teacher.path
  else:
    path = build_path(config.path.name, **component_options(config.path))
  num_classes = config.model.get("num_classes", 0)
  if num_classes and num_classes != data.spec.num_classes:
    raise ConfigError(f"model.num_classes={num_classes} but the data have "
                      f"{data.spec.num_classes} classes; use {data.spec.num_classes} (or 0 "
                      "for an unconditional student).")
  if num_classes and teacher is not None and teacher.spec.num_classes != num_classes:
    raise ConfigError(f"model.num_classes={num_classes} needs a teacher conditional on "
                      f"{num_classes} classes; the teacher {teacher.name} has "
                      f"{teacher.spec.num_classes} (0: unconditional). Use "
                      "model.num_classes=0.")
  source = teacher.source if teacher is not None else default_source(path, data.spec.shape)
  train = config.train
  return DistillationContext(config, data, path, teacher, source, num_classes,
                             train.batch_size // train.grad_accum_steps)
