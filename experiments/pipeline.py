"""The pipeline every experiment family shares: data -> coupling -> path -> objective ->
model -> task pieces, built from a config (sections data, coupling, path, objective, model,
sample and train.label_dropout).

A family module (toy2d, images, ...) supplies only what is its own: where the data come
from (an on-device sampler or a host stream), and how samples are evaluated and plotted.
Everything else — drawing the source, coupling the pairs, condition dropout, the loss, the
fields and sampling — is here, once. Config arguments are parsed here too, so every config
spells its variants the same way: `get_config("tiny")`, `get_config("unet,tiny")`.
"""
import dataclasses
import functools
from typing import Any, Callable, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import ml_collections

from diffjax import conditioning
from diffjax.couplings import COUPLINGS
from diffjax.data import get_sampler
from diffjax.errors import ConfigError
from diffjax.guidance import (ConditionalModel, GuidanceContext, build_guidance,
                              check_guidance_section, guided_sample)
from diffjax.models import build_model
from diffjax.objectives import build_objective
from diffjax.paths import build_path
from diffjax.solvers import SAMPLERS, sample
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
  """What a family's data provide: the shape of one example and the number of classes
  (0: unlabelled; labelled data train a class-conditional model when the model asks)."""
  shape: Tuple[int, ...]
  num_classes: int = 0


@dataclasses.dataclass(frozen=True)
class Pipeline:
  """The shared pieces of a run; see the module docstring."""
  config: Any
  spec: DataSpec
  path: Any
  objective: Any
  model: Any
  coupling: Callable
  source: Callable          # source(key, n) -> (n, *shape) draws of x0.
  num_classes: int          # > 0: class-conditional training with condition dropout.

  @property
  def conditional(self) -> bool:
    return self.num_classes > 0

  def loss(self, params, key, shard, x1, labels=None):
    """The objective's loss on data x1 (B, *shape) with their labels (B,) (or None): x0
    from the source, pairs from the coupling, labels dropped to the null class w.p.
    train.label_dropout."""
    k_source, k_couple, k_drop, k_dropout, k_loss = jax.random.split(key, 5)
    x1 = shard(x1)
    x0 = shard(self.source(k_source, x1.shape[0]))
    x0, x1 = self.coupling(k_couple, x0, x1)
    cond = None
    if self.conditional:
      cond = conditioning.drop_labels(k_drop, labels, self.config.train.label_dropout,
                                      self.num_classes)
    apply = functools.partial(self.model.apply, dropout_key=k_dropout)
    return self.objective.loss(apply, params, k_loss, x0, x1, cond)

  def fields(self, params, labels=None):
    """The trained model's `Fields`, conditioned on labels (B,); for a class-conditional
    model labels=None is its unconditional model (the null class)."""
    return self.objective.fields(self.model.apply, params, labels)

  def generate(self, params, key, num_samples, labels=None, return_trajectory=False,
               guidance=None, **guidance_context):
    """Samples with config.sample's sampler: a `Solution` (x (n, *shape), trajectory,
    nfe). With a guidance method (`guidance`, a section like config.sample.guidance,
    which is the default) the sampler runs guided (`diffjax.guidance.build`);
    guidance_context gives what the method needs beyond the model (measurements, ...)."""
    k_source, k_sampler = jax.random.split(key)
    sc = self.config.sample
    options = component_options(sc, SAMPLE_KEYS)
    x0 = self.source(k_source, num_samples)
    section = sc.get("guidance") if guidance is None else guidance
    if section is None or section.get("method", "none") == "none":
      return sample(sc.solver, self.fields(params, labels), self.path, x0, k_sampler,
                    num_steps=sc.num_steps, return_trajectory=return_trajectory, **options)
    context = GuidanceContext(self.conditional_model(params, labels, num_samples),
                              self.path, sc.solver, options, **guidance_context)
    return guided_sample(sc.solver, build_guidance(section, context), self.path, x0,
                         k_sampler, num_steps=sc.num_steps,
                         return_trajectory=return_trajectory, **options)

  def conditional_model(self, params, labels, num_samples) -> ConditionalModel:
    """The model as guidance sees it: conditioned on labels (the null class when None)
    with the null class as its unconditional model; an unconditional run has no null."""
    fields_of = lambda cond: self.objective.fields(self.model.apply, params, cond)
    if not self.conditional:
      return ConditionalModel(fields_of, None, None)
    if labels is None:
      labels = conditioning.null_labels(num_samples, self.num_classes)
      return ConditionalModel(fields_of, labels, labels)
    cond, null = conditioning.class_condition(labels, self.num_classes)
    return ConditionalModel(fields_of, cond, null)


def build_pipeline(config, spec: DataSpec) -> Pipeline:
  """Builds every component named by `config` for data described by `spec`; an unknown
  name or an invalid option fails here, before any workdir is touched."""
  check_keys(config, PIPELINE_KEYS)
  path = build_path(config.path.name, **component_options(config.path))
  objective = build_objective(config.objective.name, path,
                              **component_options(config.objective))
  num_classes = config.model.get("num_classes", 0)
  if num_classes and num_classes != spec.num_classes:
    raise ConfigError(f"model.num_classes={num_classes} but the data have "
                      f"{spec.num_classes} classes; use {spec.num_classes} (or 0 for an "
                      "unconditional model).")
  conditioning.check_dropout(config.train.get("label_dropout", 0.0))
  model = build_model(config.model.name, spec.shape, **component_options(config.model))
  coupling_section = config.get("coupling", ml_collections.ConfigDict({"name": "independent"}))
  coupling = functools.partial(COUPLINGS.get(coupling_section.name),
                               **component_options(coupling_section))
  SAMPLERS.get(config.sample.solver)
  check_guidance_section(config.sample.get("guidance"), num_classes > 0)
  if path.one_sided:
    source = lambda key, n: path.source_sample(key, (n, *spec.shape))
  else:
    source_name = config.data.get("source", "standard_normal")
    base = get_sampler(source_name)
    size = int(jnp.prod(jnp.asarray(spec.shape)))
    draw = base if source_name != "standard_normal" else functools.partial(base, dim=size)
    source = lambda key, n: draw(key, n).reshape((n, *spec.shape))
  return Pipeline(config, spec, path, objective, model, coupling, source, num_classes)


# ----- config arguments -----


def parse_arg(arg: Optional[str], variants: Sequence[str] = ()) -> Tuple[Tuple[str, ...], bool]:
  """A config argument "a,b,tiny" -> ((a, b), tiny). Every config accepts "tiny" (a
  seconds-long run for tests and smoke checks) besides its own `variants`; anything else
  is refused with the valid choices."""
  parts = tuple(p for p in (arg or "").split(",") if p)
  unknown = [p for p in parts if p != "tiny" and p not in variants]
  if unknown:
    valid = ", ".join(tuple(variants) + ("tiny",))
    raise ConfigError(f"Unknown config argument {arg!r}; valid: {valid}, combined with "
                      "commas (or none).")
  return tuple(p for p in parts if p != "tiny"), "tiny" in parts


# Small versions of each model for `shrink_to_tiny`.
TINY_MODELS = {
    "mlp": dict(width=32, depth=2),
    "stacked_fields": dict(width=32, depth=2),
    "dit": dict(hidden_dim=16, depth=1, num_heads=2),
    "unet": dict(channels=8, channel_mults=(1, 2), num_res_blocks=1,
                 attention_resolutions=(), dropout=0.0),
}


def shrink_to_tiny(config, num_steps=200, batch_size=64, num_samples=256, sample_steps=10):
  """The "tiny" variant of any config: `num_steps` training steps in two chunks with an
  evaluation and a checkpoint after each, a small model, few sampler steps and samples."""
  chunk = max(num_steps // 2, 1)
  config.train.update(num_steps=num_steps, batch_size=batch_size, steps_per_call=chunk,
                      log_every=chunk, eval_every=chunk, checkpoint_every=chunk)
  config.optim.warmup_steps = min(config.optim.warmup_steps, num_steps // 8)
  config.model.update(TINY_MODELS.get(config.model.name, {}))
  config.sample.num_steps = min(config.sample.num_steps, sample_steps)
  for key, value in (("num_trajectories", 16), ("num_images", 10)):
    if key in config.sample:
      config.sample[key] = min(config.sample[key], value)
  if "num_samples" in config.eval:   # families with their own evaluation may have none
    config.eval.num_samples = min(config.eval.num_samples, num_samples)
  return config
