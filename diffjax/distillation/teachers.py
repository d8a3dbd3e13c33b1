"""Teachers of distillation: any `Fields` on a path, from a trained run or the exact oracle.

  teacher = teacher_from_config(config, expect_shape=(2,))   # None for teacher.kind "none"
  fields = teacher.fields(labels)     # diffjax.core.Fields: velocity, score, data, noise
  x = teacher.sample(key, 1000, solver="heun", num_steps=50).x

A teacher is one of
  "run"     a trained run loaded from its workdir (`diffjax.runs.load`): its pipeline's path,
            `fields(cond)` and data spec. A missing, unfinished or other-shape workdir is
            refused with one `RunError` line naming teacher.workdir.
  "oracle"  the exact Gaussian-mixture oracle (`diffjax.data.mixture_oracle`) of config.path
            towards a target mixture named in `TEACHER_MIXTURES` (the equal 8-Gaussian ring
            of the 2D benchmarks, the imbalanced ring with weights 0.4 down to 0.02, a
            two-class conditional mixture). Its fields are exact and so is its target, so
            a student is scored against the truth. Two moons is not a mixture: the moons
            teacher is a trained flow-matching run (`configs/distillation/`).

Config keys (config.teacher): kind ("run", "oracle" or "none"), workdir and use_ema (run),
mixture (oracle). The oracle lives on config.path.
"""
import dataclasses
from typing import Any, Callable, Optional, Tuple

import jax
import jax.numpy as jnp

from diffjax import runs
from diffjax.core import Fields, Path
from diffjax.data.conditional_mixture import ClassConditionalMixture, two_class_mixture
from diffjax.data.gaussian_mixture import GaussianMixture, isotropic_mixture, ring_mixture
from diffjax.data.mixture_oracle import mixture_oracle, standard_normal_mixture
from diffjax.errors import ConfigError
from diffjax.paths import build_path
from diffjax.pipeline import DataSpec, component_options
from diffjax.registry import Registry
from diffjax.solvers import sample as run_sampler

TEACHER_KINDS = ("run", "oracle", "none")
TEACHER_MIXTURES = Registry("teacher mixture")

# The 2D benchmarks' ring (`diffjax.data.toy2d.eight_gaussians`): radius 5, std 0.1^(1/4).
RING_RADIUS, RING_STD = 5.0, 0.1 ** 0.25
# The imbalanced ring of issue 20: eight modes whose weights fall from 0.4 to 0.02.
IMBALANCED_WEIGHTS = (0.4, 0.2, 0.13, 0.1, 0.07, 0.05, 0.03, 0.02)


def _ring(weights):
  angle = 2 * jnp.pi * jnp.arange(len(weights)) / len(weights)
  means = RING_RADIUS * jnp.stack([jnp.cos(angle), jnp.sin(angle)], -1)
  return isotropic_mixture(jnp.asarray(weights), means, RING_STD)


TEACHER_MIXTURES.register("eight_gaussians", lambda: _ring((1 / 8,) * 8))
TEACHER_MIXTURES.register("imbalanced_eight_gaussians", lambda: _ring(IMBALANCED_WEIGHTS))
TEACHER_MIXTURES.register("ring_mixture", ring_mixture)
TEACHER_MIXTURES.register("two_class", two_class_mixture)


@dataclasses.dataclass(frozen=True)
class Teacher:
  """A teacher: fields on a path, and how to draw its source.

  Attributes:
    name: what it is, for messages and logs ("oracle eight_gaussians", a workdir).
    path: the path its fields live on (`diffjax.core.Path`).
    spec: its data's `DataSpec` (shape, classes).
    fields_of: labels (B,) or None -> `Fields`; None is the unconditional model.
    source: source(key, n) -> (n, *spec.shape) draws of x0 at t = 0.
    target: the exact target (a `GaussianMixture` or `ClassConditionalMixture`) of an
      oracle; None for a trained run.
    run: the `diffjax.runs.Run` of a trained teacher; None for an oracle.
  """
  name: str
  path: Path
  spec: DataSpec
  fields_of: Callable[[Any], Fields]
  source: Callable[[Any, int], Any]
  target: Any = None
  run: Any = None

  @property
  def exact(self) -> bool:
    """Whether the fields are exact (the oracle)."""
    return self.target is not None

  def fields(self, labels=None) -> Fields:
    return self.fields_of(labels)

  def sample(self, key, num_samples, *, solver="heun", num_steps=50, labels=None,
             **options):
    """The teacher's own generation: a `Solution` of the registered sampler `solver` from
    x0 ~ source (x: (num_samples, *spec.shape))."""
    k_source, k_sampler = jax.random.split(key)
    x0 = self.source(k_source, num_samples)
    return run_sampler(solver, self.fields(labels), self.path, x0, k_sampler,
                       num_steps=num_steps, **options)

  def target_sample(self, key, num_samples):
    """Exact draws of the oracle's target: (n, D), or (x (n, D), labels (n,)) for a
    class-conditional mixture."""
    if self.target is None:
      raise ValueError(f"The teacher {self.name} is a trained run: it has no exact target.")
    return self.target.sample(key, num_samples)


def oracle_teacher(path: Path, target, name="oracle") -> Teacher:
  """The exact teacher of `path` towards `target`, a `GaussianMixture` or a
  `ClassConditionalMixture` (labels select a class; None or the null id K the
  unconditional mixture). A two-sided path starts from N(0, I)."""
  source = None if path.one_sided else standard_normal_mixture(target.dim)
  draw_source = ((lambda key, n: path.source_sample(key, (n, target.dim))) if path.one_sided
                 else (lambda key, n: jax.random.normal(key, (n, target.dim))))
  if isinstance(target, ClassConditionalMixture):
    unconditional = mixture_oracle(path, target.unconditional(), source).fields()
    fields_of = lambda labels: (unconditional if labels is None
                                else target.fields(path, labels, source))
    spec = DataSpec((target.dim,), target.num_classes)
  else:
    fields = mixture_oracle(path, target, source).fields()
    fields_of = lambda labels: fields
    spec = DataSpec((target.dim,))
  return Teacher(name, path, spec, fields_of, draw_source, target=target)


def run_teacher(workdir: str, use_ema: Optional[bool] = None,
                expect_shape: Optional[Tuple[int, ...]] = None) -> Teacher:
  """The teacher of the trained run in `workdir` (`diffjax.runs.load`).

  Raises:
    RunError (one line, naming teacher.workdir): no run there, no checkpoint, unfinished,
    a family without a pipeline, or data of another shape than `expect_shape`.
  """
  try:
    run = runs.load(workdir, use_ema=use_ema)
  except ConfigError as error:   # RunError, or a WorkdirError (no config.json there)
    raise runs.RunError(f"teacher.workdir={workdir!r}: {error}") from None
  if run.pipeline is None:
    raise runs.RunError(f"teacher.workdir={workdir!r} holds a "
                        f"{run.config.get('experiment')!r} run, which has no fields to "
                        "distil; give a run of a pipeline family (toy2d, images, ...).")
  shape = tuple(run.spec.shape)
  if expect_shape is not None and shape != tuple(expect_shape):
    raise runs.RunError(f"teacher.workdir={workdir!r} holds a run on data of shape "
                        f"{shape}, but this config's data have shape {tuple(expect_shape)}; "
                        "give a teacher trained on the same data.")
  return teacher_of_run(run, str(workdir))


def teacher_of_run(run, name: str) -> Teacher:
  """The teacher of a `diffjax.runs.Run` of a pipeline family (loaded, or built in memory,
  e.g. a benchmark's network with random weights): its path, fields and source."""
  pipeline = run.pipeline
  return Teacher(name, pipeline.path, pipeline.spec, run.fields, pipeline.source, run=run)


def teacher_from_config(config, expect_shape=None) -> Optional[Teacher]:
  """The teacher config.teacher names (module docstring), or None for kind "none".

  An oracle lives on config.path; `expect_shape` (the data's shape) refuses a run teacher
  of another shape. Every mistake is one ConfigError / RunError line.
  """
  section = config.get("teacher")
  kind = "none" if section is None else section.get("kind", "none")
  if kind not in TEACHER_KINDS:
    raise ConfigError(f"teacher.kind={kind!r} is not one of: {', '.join(TEACHER_KINDS)}.")
  if kind == "none":
    return None
  if kind == "oracle":
    name = section.get("mixture", "")
    target = TEACHER_MIXTURES.get(name)()
    path = build_path(config.path.name, **component_options(config.path))
    teacher = oracle_teacher(path, target, name=f"oracle {name}")
    if expect_shape is not None and tuple(expect_shape) != teacher.spec.shape:
      raise ConfigError(f"teacher.mixture={name!r} is a distribution on shape "
                        f"{teacher.spec.shape}, but the data have shape {tuple(expect_shape)}.")
    return teacher
  workdir = section.get("workdir", "")
  if not isinstance(workdir, str) or not workdir:
    raise ConfigError(f"teacher.kind='run' needs teacher.workdir, the workdir of a trained "
                      f"run; got {workdir!r}.")
  use_ema = section.get("use_ema", None)
  if use_ema is not None and not isinstance(use_ema, bool):
    raise ConfigError(f"teacher.use_ema={use_ema!r} must be True, False or None (the run's "
                      "own eval.use_ema).")
  return run_teacher(workdir, use_ema, expect_shape)


def mixture_of(target) -> GaussianMixture:
  """The unconditional `GaussianMixture` of an oracle's target (either kind)."""
  return (target.unconditional() if isinstance(target, ClassConditionalMixture)
          else target)
