"""Few-shot adaptation of a trained run: what every method shares and their registry.

A method fine-tunes the source run's network on a handful of target images through the
engine's train step (`diffjax.train.step.make_train_step`): it declares its config check
and a builder of its loss terms (`FewShotMethod`); `few_shot_loss` turns them into the
engine's loss(params, key, shard, step, batch). Parameters start at the source run's.

  context = few_shot_context(run, shots, labels, batch_size=8, options=config.method)
  loss = few_shot_loss(FEW_SHOT_METHODS.get("domainstudio"), context)
  state = fit(lambda p, b, k: loss(p, k, None, 0, b), optax.adam(1e-4), run.params, ...)

Every method regresses the velocity on the path of the source run: for a target image x1
(drawn without replacement from the few-shot set), t ~ U(0, 1), x0 from the source and
x_t = a(t) x0 + b(t) x1 (the run's path), the network's velocity is fitted to the
conditional velocity a'(t) x0 + b'(t) x1 (flow matching; "plain" fine-tuning is this term
alone). Class labels of the shots condition a class-conditional source throughout (no
condition dropout).
"""
import dataclasses
from typing import Any, Callable, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np

from diffjax.errors import ConfigError
from diffjax.image_metrics import DigitsClassifier, DigitsMLP
from diffjax.registry import Registry


@dataclasses.dataclass(frozen=True)
class FewShotContext:
  """What a method's loss is built from.

  Attributes:
    pipeline: the source run's `diffjax.pipeline.Pipeline` (path, fields, source).
    source_params: the source run's parameters (frozen; the adapted network starts here).
    shots: (N, *shape) target images; labels: (N,) int32 class labels or None.
    batch_size: shots drawn per loss call (<= N, without replacement).
    options: the method's options (config.method).
    encoder: optional encoder(x (B, *shape)) -> (B, D) differentiable features (the
      directional distribution consistency of phasic fusing needs one).
    source_mean: (D,) mean encoder features of source-domain images (with `encoder`).
  """
  pipeline: Any
  source_params: Any
  shots: jnp.ndarray
  labels: Optional[jnp.ndarray]
  batch_size: int
  options: Mapping[str, Any]
  encoder: Optional[Callable] = None
  source_mean: Optional[jnp.ndarray] = None


@dataclasses.dataclass(frozen=True)
class FewShotMethod:
  """A registered method's declaration.

  Attributes:
    name: its registry name (config.method.name).
    build: build(context) -> terms(params, key) -> (loss, aux dict of scalars).
    check: check(options, batch_size) -> None, raising ConfigError (one line) for a bad
      option; run before the source run is loaded.
    needs_encoder: whether the loss reads context.encoder and context.source_mean.
    paper: the paper it implements.
  """
  name: str
  build: Callable[[FewShotContext], Callable]
  check: Callable[[Mapping[str, Any], int], None]
  needs_encoder: bool = False
  paper: str = ""


FEW_SHOT_METHODS = Registry("few-shot adaptation method")


def check_batch(num_shots: int, batch_size: int):
  """ConfigError when a batch cannot be drawn without replacement from the shots."""
  if batch_size > num_shots:
    raise ConfigError(f"train.batch_size={batch_size} is larger than the few-shot set "
                      f"(target.num_shots={num_shots}); a batch draws distinct shots, so use "
                      f"train.batch_size <= {num_shots} or more shots.")


def few_shot_context(run, shots, labels, batch_size, options, encoder=None,
                     source_images=None) -> FewShotContext:
  """The context of a run (`diffjax.runs.Run`) and its shots (N, *shape) / labels (N,);
  `source_images` (M, *shape) give the source-domain mean features of `encoder`."""
  check_batch(len(shots), batch_size)
  source_mean = None
  if encoder is not None and source_images is not None:
    source_mean = jnp.mean(encoder(jnp.asarray(source_images)), axis=0)
  conditional = run.pipeline.num_classes > 0
  return FewShotContext(run.pipeline, run.params, jnp.asarray(shots),
                        jnp.asarray(labels, jnp.int32) if conditional else None,
                        batch_size, dict(options), encoder, source_mean)


def classifier_encoder(classifier: DigitsClassifier) -> Callable:
  """encoder(x (B, 8, 8, 1)) -> (B, feature_dim) penultimate features of a trained digits
  classifier, differentiable in x."""
  module = DigitsMLP(feature_dim=classifier.feature_dim)
  return lambda x: module.apply({"params": classifier.params}, x)[1]


def draw_shots(context: FewShotContext, key):
  """(x1 (B, *shape), labels (B,) or None): batch_size distinct shots."""
  index = jax.random.permutation(key, context.shots.shape[0])[:context.batch_size]
  labels = None if context.labels is None else context.labels[index]
  return context.shots[index], labels


def noised(pipeline, key, x1):
  """(t (B,), x_t, conditional velocity) for data x1 (B, ...) on the pipeline's path, with
  t ~ U(0, 1) and x0 from its source."""
  k_t, k_x0, k_z = jax.random.split(key, 3)
  path = pipeline.path
  t = jax.random.uniform(k_t, (x1.shape[0],))
  x0 = pipeline.source(k_x0, x1.shape[0])
  z = None if path.gamma is None else jax.random.normal(k_z, x1.shape, x1.dtype)
  return t, path.interpolate(t, x0, x1, z), path.conditional_velocity(t, x0, x1, z)


def predict(pipeline, params, labels, xt, t):
  """The network's `Predictions` (velocity, data = E[x1 | x_t], ...) at (x_t, t)."""
  return pipeline.fields(params, labels).evaluate(xt, t)


def squared_error(a, b):
  """(B,) per-example mean squared difference."""
  return jnp.mean((a - b).reshape(a.shape[0], -1) ** 2, axis=1)


def few_shot_loss(method: FewShotMethod, context: FewShotContext):
  """The engine's loss(params, key, shard, step, batch) of `method` (batch unused: the
  loss draws its shots)."""
  terms = method.build(context)

  def loss(params, key, shard, step, batch=None):
    del shard, step, batch
    return terms(params, key)
  return loss


def _plain(context: FewShotContext):
  def terms(params, key):
    k_draw, k_noise = jax.random.split(key)
    x1, labels = draw_shots(context, k_draw)
    t, xt, velocity = noised(context.pipeline, k_noise, x1)
    value = jnp.mean(squared_error(predict(context.pipeline, params, labels, xt, t).velocity,
                                   velocity))
    return value, {"flow_matching": value}
  return terms


def _no_options(options, batch_size):
  del options, batch_size


FEW_SHOT_METHODS.register("plain", FewShotMethod(
    "plain", _plain, _no_options,
    paper="fine-tuning on the few-shot set with the source's objective"))


def shot_labels_for(num_samples: int, labels) -> np.ndarray:
  """(num_samples,) class labels cycling through the shots' labels (for evaluation)."""
  labels = np.asarray(labels)
  return labels[np.arange(num_samples) % len(labels)]
