"""The pipeline: source -> coupling -> condition dropout -> objective -> fields ->
generation, one object that notebooks, experiment families, trained runs and benchmarks
share.

  pipeline = build_pipeline(config, DataSpec(shape=(2,)))
  loss, aux = pipeline.loss(params, key, shard, x1)          # x1 (B, *shape)
  fields = pipeline.fields(params, labels)                   # diffjax.core.Fields
  solution = pipeline.generate(params, key, num_samples)     # config.sample's sampler

`build_pipeline` reads the config sections data (source), coupling, path, objective, model,
sample and train.label_dropout; `Pipeline.from_components` builds one from objects instead.
A family (toy2d, images, ...) supplies only what is its own: where the data come from and
how samples are evaluated.
"""
import dataclasses
import functools
from typing import Any, Callable, Mapping, Optional, Tuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from diffjax import conditioning
from diffjax.couplings import COUPLINGS
from diffjax.data import get_sampler
from diffjax.errors import ConfigError
from diffjax.guidance import (ConditionalModel, GuidanceContext, build_guidance,
                              check_guidance_section)
from diffjax.models import build_model
from diffjax.objectives import build_objective
from diffjax.paths import build_path
from diffjax.solvers import SAMPLERS, sample
from diffjax.train.task import Task
from diffjax.train.validation import Key, check_keys

# Keys of config.sample that are not sampler options.
SAMPLE_KEYS = ("solver", "num_steps", "num_trajectories", "num_images", "guidance")
# Values every family reads, checked before anything is built.
PIPELINE_KEYS = (
    Key("sample.num_steps", "int", 1, meaning="sampler steps"),
    Key("sample.num_trajectories", "int", 0),
    Key("sample.num_images", "int", 0),
    Key("train.label_dropout", "float", 0.0, 1.0, meaning="condition dropout probability"),
    Key("eval.num_samples", "int", 2, meaning="samples per evaluation"),
)


def component_options(section: ml_collections.ConfigDict, exclude=("name",)) -> dict:
  """A config section's keys other than `exclude`, as keyword options of the component
  the section names (e.g. config.model -> build_model(config.model.name, **options))."""
  return {k: v for k, v in section.items() if k not in exclude}


@dataclasses.dataclass(frozen=True)
class DataSpec:
  """What a family's data provide: the shape of one example, the number of classes
  (0: unlabelled; labelled data train a class-conditional model when the model asks),
  the dimension of a conditioning array per example (0: none; a model with
  model.cond_dim = cond_dim is then conditioned on it) and, for token data, the number
  of real tokens (0: continuous data; V > 0: int ids in [0, V), which the path (the
  masked path) and the model receive as vocab_size)."""
  shape: Tuple[int, ...]
  num_classes: int = 0
  cond_dim: int = 0
  vocab_size: int = 0


@dataclasses.dataclass(frozen=True)
class Pipeline:
  """source -> coupling -> condition dropout -> objective -> fields -> generation.

  Attributes:
    spec: the data's `DataSpec`.
    path, objective, model: the components (`diffjax.paths`, `diffjax.objectives`,
      `diffjax.models`); model.apply(params, x, t, cond) is the network.
    coupling: coupling(key, x0, x1) -> (x0, x1) (`diffjax.couplings`).
    source: source(key, n) -> (n, *spec.shape) draws of x0.
    num_classes: > 0: a class-conditional model trained with condition dropout;
    cond_dim: > 0: a model conditioned on (B, cond_dim) arrays, ditto.
    label_dropout: the probability of dropping a condition in training.
    solver, num_steps, sampler_options: the sampler of `generate` (`diffjax.solvers`).
    guidance: the default guidance section of `generate` (a mapping like
      config.sample.guidance; None or method "none": unguided).
  """
  spec: DataSpec
  path: Any
  objective: Any
  model: Any
  coupling: Callable
  source: Callable
  num_classes: int = 0
  cond_dim: int = 0
  label_dropout: float = 0.0
  solver: str = "heun"
  num_steps: int = 50
  sampler_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  guidance: Optional[Mapping[str, Any]] = None

  @property
  def conditional(self) -> bool:
    return self.num_classes > 0 or self.cond_dim > 0

  def loss(self, params, key, shard, x1, labels=None, x0=None):
    """The objective's loss on data x1 (B, *shape) with their labels (B,) or
    conditioning arrays (B, cond_dim) (or None): x0 from the source (or given, (B, *shape),
    e.g. a trojan source's draws, `diffjax.safety.trojan`), pairs from the coupling,
    conditions dropped (to the null class, or to the absent array) with probability
    label_dropout (`diffjax.conditioning.drop_condition`). `shard` constrains a batch to
    the data-parallel devices (the identity outside the engine)."""
    k_source, k_couple, k_drop, k_dropout, k_loss = jax.random.split(key, 5)
    x1 = shard(x1)
    x0 = shard(self.source(k_source, x1.shape[0]) if x0 is None else x0)
    x0, x1 = self.coupling(k_couple, x0, x1)
    cond = None
    if self.conditional:
      cond = conditioning.drop_condition(k_drop, labels, self.label_dropout,
                                         self.num_classes)
    apply = functools.partial(self.model.apply, dropout_key=k_dropout)
    return self.objective.loss(apply, params, k_loss, x0, x1, cond)

  def batch_loss(self, params, batch, key):
    """The loss in `diffjax.train.fit`'s form loss(params, batch, key): batch is x1
    (B, *shape) or (x1, labels)."""
    x1, labels = batch if isinstance(batch, tuple) else (batch, None)
    return self.loss(params, key, lambda x: x, x1, labels)

  def fields(self, params, labels=None):
    """The trained model's `Fields`, conditioned on labels (B,) or conditioning arrays
    (B, cond_dim); for a conditional model None is its unconditional model (the null
    class, the absent array)."""
    if self.cond_dim and labels is not None:
      labels = conditioning.array_condition(labels)[0]
    return self.objective.fields(self.model.apply, params, labels)

  def generate(self, params, key, num_samples, labels=None, return_trajectory=False,
               guidance=None, **guidance_context):
    """Samples with the pipeline's sampler: a `Solution` (x (n, *shape), trajectory,
    nfe). With a guidance method (`guidance`, a section like config.sample.guidance;
    default: the pipeline's) the sampler runs guided (`diffjax.guidance.build`);
    guidance_context gives what the method needs beyond the model (measurements, ...)."""
    k_source, k_sampler = jax.random.split(key)
    x0 = self.source(k_source, num_samples)
    section = self.guidance if guidance is None else guidance
    options = dict(self.sampler_options)
    if section is None or section.get("method", "none") == "none":
      return sample(self.solver, self.fields(params, labels), self.path, x0, k_sampler,
                    num_steps=self.num_steps, return_trajectory=return_trajectory,
                    **options)
    context = GuidanceContext(self.conditional_model(params, labels, num_samples),
                              self.path, self.solver, options, **guidance_context)
    return sample(self.solver, None, self.path, x0, k_sampler, num_steps=self.num_steps,
                  guidance=build_guidance(section, context),
                  return_trajectory=return_trajectory, **options)

  def with_sampler(self, solver=None, num_steps=None, **sampler_options) -> "Pipeline":
    """The same pipeline generating with another sampler (a registered name), step count
    or sampler options (replacing the current options when any is given)."""
    if solver is not None:
      SAMPLERS.get(solver)
    changes = {k: v for k, v in (("solver", solver), ("num_steps", num_steps))
               if v is not None}
    if sampler_options:
      changes["sampler_options"] = sampler_options
    return dataclasses.replace(self, **changes)

  def conditional_model(self, params, labels, num_samples) -> ConditionalModel:
    """The model as guidance sees it: conditioned on labels (the null class when None)
    with the null class as its unconditional model; an unconditional run has no null."""
    fields_of = lambda cond: self.objective.fields(self.model.apply, params, cond)
    if not self.conditional:
      return ConditionalModel(fields_of, None, None)
    if self.cond_dim:
      given = jnp.zeros((num_samples, self.cond_dim)) if labels is None else labels
      cond, null = conditioning.array_condition(given)
      return ConditionalModel(fields_of, null if labels is None else cond, null)
    if labels is None:
      labels = conditioning.null_labels(num_samples, self.num_classes)
      return ConditionalModel(fields_of, labels, labels)
    cond, null = conditioning.class_condition(labels, self.num_classes)
    return ConditionalModel(fields_of, cond, null)


def _section(config, name, default):
  section = config.get(name) if config is not None else None
  return ml_collections.ConfigDict(default) if section is None else section


def default_source(path, spec: DataSpec, name: str = "standard_normal") -> Callable:
  """source(key, n) -> (n, *spec.shape): a one-sided path's own N(0, s^2 I), else the
  registered sampler `name` (`diffjax.data.TOY_2D`) reshaped to the data's shape."""
  if path.one_sided:
    return lambda key, n: path.source_sample(key, (n, *spec.shape))
  base = get_sampler(name)
  size = int(np.prod(spec.shape))
  draw = base if name != "standard_normal" else functools.partial(base, dim=size)
  return lambda key, n: draw(key, n).reshape((n, *spec.shape))


def build_pipeline(config, spec: DataSpec) -> Pipeline:
  """The pipeline named by `config` for data described by `spec`.

  Reads config.path, config.objective, config.model (each a `name` and the component's
  options), and when present config.coupling (default independent), config.data.source
  (default standard_normal, for two-sided paths), config.train.label_dropout (default 0)
  and config.sample (solver, num_steps, guidance and the sampler's options; default Heun,
  50 steps). An unknown name or an invalid option fails here (ConfigError /
  UnknownComponentError), before any workdir is touched.
  """
  check_keys(config, tuple(k for k in PIPELINE_KEYS if _has(config, k.path)))
  tokens = {"vocab_size": spec.vocab_size} if spec.vocab_size else {}
  path = build_path(config.path.name, **tokens, **component_options(config.path))
  objective = build_objective(config.objective.name, path,
                              **component_options(config.objective))
  num_classes = config.model.get("num_classes", 0)
  if num_classes and num_classes != spec.num_classes:
    raise ConfigError(f"model.num_classes={num_classes} but the data have "
                      f"{spec.num_classes} classes; use {spec.num_classes} (or 0 for an "
                      "unconditional model).")
  cond_dim = config.model.get("cond_dim", 0)
  if cond_dim and cond_dim != spec.cond_dim:
    raise ConfigError(f"model.cond_dim={cond_dim} but the data's conditioning arrays have "
                      f"{spec.cond_dim} values; use {spec.cond_dim} (or 0 for a model "
                      "that ignores them).")
  label_dropout = _section(config, "train", {}).get("label_dropout", 0.0)
  conditioning.check_dropout(label_dropout)
  if tokens:  # A token model embeds the real tokens and the path's mask.
    tokens["mask_id"] = path.mask_id
  model = build_model(config.model.name, spec.shape, **tokens,
                      **component_options(config.model))
  coupling_section = _section(config, "coupling", {"name": "independent"})
  coupling = functools.partial(COUPLINGS.get(coupling_section.name),
                               **component_options(coupling_section))
  sc = _section(config, "sample", {"solver": "heun", "num_steps": 50})
  SAMPLERS.get(sc.solver)
  guidance = sc.get("guidance")
  check_guidance_section(guidance, num_classes > 0 or cond_dim > 0)
  source = default_source(path, spec,
                          _section(config, "data", {}).get("source", "standard_normal"))
  return Pipeline(spec, path, objective, model, coupling, source, num_classes, cond_dim,
                  label_dropout, sc.solver, sc.num_steps, component_options(sc, SAMPLE_KEYS),
                  guidance)


def _has(config, dotted):
  node = config
  for part in dotted.split("."):
    if not hasattr(node, "get") or part not in node:
      return False
    node = node[part]
  return True


def check_coupling(pipeline: Pipeline, draw: Callable, batch_size: int):
  """Couples one real batch eagerly, so that an unusable coupling (an entropic OT that does
  not converge at its epsilon) is refused (ConfigError) before training rather than
  biasing it silently."""
  keys = jax.random.split(jax.random.PRNGKey(0), 3)
  drawn = draw(keys[2], batch_size)
  x1 = drawn[0] if isinstance(drawn, tuple) else drawn
  pipeline.coupling(keys[0], pipeline.source(keys[1], batch_size), x1)


def pipeline_task(pipeline: Pipeline, draw: Callable, batch_size: int, *,
                  micro_batch: Optional[int] = None, evaluate: Optional[Callable] = None,
                  sample: Optional[Callable] = None, num_samples: int = 1000) -> Task:
  """The engine's `Task` of a pipeline trained on an on-device sampler.

  draw(key, n) -> x1 (n, *shape), or (x1, labels) for a conditional pipeline, draws the
  data (e.g. `diffjax.data.get_sampler("moons")`); batch_size is the global batch and
  micro_batch what one loss call draws (batch_size / train.grad_accum_steps; default
  batch_size). evaluate(params, key) -> (metrics, figures) and sample(params, key) ->
  (arrays, figures) default to no metrics and `num_samples` generated samples. The task
  records the data spec, so `diffjax.runs.load` rebuilds the run from its workdir.
  """
  micro_batch = batch_size if micro_batch is None else micro_batch

  def loss(params, key, shard, step):
    del step
    k_data, k_loss = jax.random.split(key)
    drawn = draw(k_data, micro_batch)
    x1, labels = drawn if isinstance(drawn, tuple) else (drawn, None)
    return pipeline.loss(params, k_loss, shard, x1, labels)

  def generated(params, key):
    return {"samples": jax.device_get(pipeline.generate(params, key, num_samples).x)}, {}

  return Task(init_params=pipeline.model.init, loss=loss,
              evaluate=evaluate or (lambda params, key: ({}, {})),
              sample=sample or generated, batch_size=batch_size,
              record=pipeline_record(pipeline))


def pipeline_record(pipeline: Pipeline) -> dict:
  """What a pipeline's task records in run.json (`Task.record`) for `diffjax.runs.load`."""
  return {"data_spec": dataclasses.asdict(pipeline.spec)}
