"""The kinds of source run the acceleration family reads (`SOURCE_KINDS`, chosen by
config.source.kind): for each, whether a run is of the kind, its training batches, its
evaluation (samples, scores, figures, model fit) and the batch DeeDiff's exits regress on.

  images  a flow-matching DiT run of images (configs/guidance/digits.py): class-conditional
          samples scored by the digits classifier's accuracy and the proxy Fréchet distance
  tokens  a masked-diffusion run of token data (configs/discrete/arithmetic.py): sequences
          scored by the language's checker (`fraction_correct`) and the held-out NELBO
"""
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from diffjax import conditioning, image_metrics, image_plots
from diffjax.acceleration import deediff
from diffjax.data import ImageStream, load_image_dataset
from diffjax.data import text as text_data
from diffjax.errors import ConfigError
from diffjax.fields import complete
from diffjax.models.transformer import model_stages
from diffjax.pipeline import component_options
from diffjax.registry import Registry
from diffjax.solvers import sample as solve
from diffjax.solvers import discrete
from diffjax.text_plots import text_figure
from diffjax.train import parallel


class SourceKind(NamedTuple):
  """A kind of source run (config.source.kind): problem(run) -> why the run is not of
  this kind (a phrase) or None; stream(config, run) -> the training batches (`iterate`,
  `batch`); evaluation(config, run) -> `Evaluation`; exit_batch(run, key, shard, batch)
  -> (x_t, t, cond, target, errors): the regression DeeDiff's exits learn on one batch,
  `errors` the `deediff_loss` form of the kind (`regression_errors`, `token_errors`)."""
  problem: Callable
  stream: Callable
  evaluation: Callable
  exit_batch: Callable


SOURCE_KINDS = Registry("source kind")

def _network(run):
  model = run.config.get("model", {})
  return (f"a {model.get('name')!r} network trained by "
          f"{run.config.get('objective', {}).get('name')!r}")


def image_problem(run):
  """None for a flow-matching DiT run (configs/guidance/digits.py)."""
  if (run.config.get("model", {}).get("name") != "dit" or run.config.get(
      "objective", {}).get("name") != "flow_matching"):
    return (f"{_network(run)}, not a flow-matching DiT run "
            "(configs/guidance/digits.py)")
  return None


def token_problem(run):
  """None for a run of token data (its DataSpec declares a vocabulary) whose objective is
  masked diffusion (not causal: the exits learn the masked positions)."""
  if run.pipeline is None or not run.spec.vocab_size or getattr(run.objective, "causal",
                                                                 True):
    return (f"{_network(run)}, not a masked-diffusion run of token data "
            "(configs/discrete/arithmetic.py)")
  return None


def stages_of(run):
  """The source network as `Stages` (`model_stages`; a token network also takes the
  vocabulary and the mask id, as the pipeline builds it)."""
  tokens = ({"vocab_size": run.spec.vocab_size, "mask_id": run.path.mask_id}
            if run.spec.vocab_size else {})
  return model_stages(run.config.model.name, run.spec.shape, **tokens,
                      **component_options(run.config.model))


class Evaluation(NamedTuple):
  """Samples from a model apply: draw(apply_fn, params, key) -> `Solution` of the
  config's sampler; score(x) -> metrics of samples; grid(x, title) -> figure;
  fit(apply_fn, params, key) -> held-out model-fit metrics ({} where none is cheap)."""
  draw: Callable
  score: Callable
  grid: Callable
  fit: Callable


def image_evaluation(config, run) -> Evaluation:
  pipeline, n = run.pipeline, config.eval.num_samples
  labels = jnp.arange(n) % max(pipeline.num_classes, 1)
  cond = labels if pipeline.num_classes else None
  solver, steps = config.sample.solver, config.sample.num_steps

  def draw(apply_fn, params, key):
    fields = complete(pipeline.objective.fields(apply_fn, params, cond), pipeline.path)
    return solve(solver, fields, pipeline.path, pipeline.source(key, n), num_steps=steps)

  def score(x, labels_=labels):
    x = np.clip(np.asarray(parallel.to_host(x)), -1.0, 1.0)
    return image_metrics.dataset_metrics(config.data.name, x, np.asarray(labels_))

  def grid(x, title):
    x = np.clip(np.asarray(parallel.to_host(x)), -1.0, 1.0)
    return image_plots.sample_grid_figure(x[:config.sample.num_images], num_columns=10,
                                          title=title)

  return Evaluation(draw, score, grid, lambda apply_fn, params, key: {})


def image_stream(config, run):
  data = run.config.data
  source = load_image_dataset(data.name, image_size=data.image_size,
                              data_dir=data.data_dir, split="train")
  return ImageStream(source, config.train.batch_size, seed=config.seed,
                     random_flip=data.random_flip, dequantize=True)


def flow_matching_batch(path, key, x1):
  """(x_t, t, velocity target) of flow matching on `path` (as the `flow_matching`
  objective draws them, uniform times): the regression DeeDiff's exits learn."""
  k_t, k_z, k_0 = jax.random.split(key, 3)
  t = jax.random.uniform(k_t, (x1.shape[0],))
  z = jax.random.normal(k_z, x1.shape, x1.dtype)
  x0 = path.source_sample(k_0, x1.shape)
  return (path.interpolate(t, x0, x1, z), t, path.conditional_velocity(t, x0, x1, z))


def image_exit_batch(run, key, shard, batch):
  k_batch, k_drop = jax.random.split(key)
  x1, labels = shard(batch["image"]), shard(batch["label"])
  xt, t, target = flow_matching_batch(run.path, k_batch, x1)
  cond = conditioning.drop_condition(k_drop, labels, run.pipeline.label_dropout,
                                     run.pipeline.num_classes)
  return xt, t, cond, target, deediff.regression_errors


SOURCE_KINDS.register("images", SourceKind(image_problem, image_stream, image_evaluation,
                                           image_exit_batch))


def _token_data(config, run):
  return text_data.load_token_data(run.config.data.name,
                                   component_options(run.config.data),
                                   num_validation=config.eval.num_sequences,
                                   seed=run.config.seed)


def token_stream(config, run):
  data = _token_data(config, run)
  return text_data.TokenStream(data.draw, config.train.batch_size, data.vocab_size,
                               seed=config.seed,
                               labels=data.labels if run.pipeline.num_classes else None)


def token_evaluation(config, run) -> Evaluation:
  """Sequences from the all-mask state of the source run's token sampler with
  sample.solver and sample.num_steps (the run's own sampler options: temperature, top_p;
  class-conditional runs: labels in turn), scored by the language's checker
  (`fraction_correct`) where the data have one; fit: the held-out NELBO per token
  (eval.nelbo_samples time draws)."""
  data = _token_data(config, run)
  pipeline = run.pipeline.with_sampler(config.sample.solver, config.sample.num_steps)
  n, length = config.eval.num_samples, run.spec.shape[0]
  needed = discrete.minimum_num_steps(pipeline.solver, length,
                                      dict(pipeline.sampler_options))
  if pipeline.num_steps < needed:
    raise ConfigError(f"sample.num_steps={pipeline.num_steps} is too few for "
                      f"{pipeline.solver!r} on {length} positions: it needs >= {needed}.")
  cond = (jnp.arange(n) % pipeline.num_classes) if pipeline.num_classes else None
  validation = jnp.asarray(data.validation)

  def draw(apply_fn, params, key):
    fields = pipeline.objective.fields(apply_fn, params, cond)
    return solve(pipeline.solver, fields, pipeline.path, pipeline.path.source((n, length)),
                 key, num_steps=pipeline.num_steps, **pipeline.sampler_options)

  def score(x):
    if data.language is None:
      return {}
    return {"fraction_correct": float(data.language.is_correct(
        np.asarray(parallel.to_host(x))).mean())}

  def grid(x, title):
    return text_figure(data.decode(np.asarray(parallel.to_host(x))[:config.eval.num_shown]),
                       title)

  def fit(apply_fn, params, key):
    nll = pipeline.objective.sequence_nll(apply_fn, params, key, validation,
                                          num_samples=config.eval.nelbo_samples)
    return {"nelbo_per_token": jnp.mean(nll) / length}

  return Evaluation(draw, score, grid, fit)


def token_exit_batch(run, key, shard, batch):
  """Masked diffusion's corruption at uniform times; the exits learn the clean tokens at
  the masked positions (`token_errors`)."""
  k_t, k_mask, k_drop = jax.random.split(key, 3)
  x1 = shard(batch["tokens"])
  t = jax.random.uniform(k_t, (x1.shape[0],))
  xt = run.path.sample(k_mask, t, None, x1)
  labels = shard(batch["label"]) if "label" in batch else None
  cond = conditioning.drop_condition(k_drop, labels, run.pipeline.label_dropout,
                                     run.pipeline.num_classes)
  return xt, t, cond, x1, deediff.token_errors(run.path.is_masked(xt))


SOURCE_KINDS.register("tokens", SourceKind(token_problem, token_stream, token_evaluation,
                                           token_exit_batch))
