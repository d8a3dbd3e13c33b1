"""Generative dynamics on 2D toys (and other vector targets): the shared pipeline
(`diffjax.pipeline`) on an on-device target sampler, sampled with config.sample's
sampler and scored by W2 and energy distance against held-out target samples.

Config sections read here: data (source, target, dim), eval; the pipeline reads the rest.
"""
import jax
import numpy as np

from diffjax import metrics as metrics_lib
from diffjax import plotting
from diffjax.data import get_sampler
from diffjax.errors import ConfigError
from diffjax.pipeline import DataSpec, build_pipeline, check_coupling, pipeline_task
from diffjax.train import Task, parallel
from diffjax.train.validation import Key, check_keys

TOY_KEYS = (Key("data.dim", "int", 1, meaning="dimension of the data"),
            Key("eval.reference_seed", "int", 0, 2 ** 31 - 2))


def build_task(config) -> Task:
  """Builds the task; unknown names and invalid values fail here, before any workdir is
  touched."""
  check_keys(config, TOY_KEYS)
  target = get_sampler(config.data.target)
  pipeline = build_pipeline(config, DataSpec((config.data.dim,)))
  for name in config.eval.metrics:
    metrics_lib.METRICS.get(name)
  batch_size = config.train.batch_size
  if batch_size % config.train.grad_accum_steps:
    raise ConfigError(f"train.batch_size={batch_size} must be divisible by "
                      f"train.grad_accum_steps={config.train.grad_accum_steps}.")
  micro_batch = batch_size // config.train.grad_accum_steps
  check_coupling(pipeline, target, micro_batch)

  num_samples = config.eval.num_samples
  num_trajectories = min(config.sample.num_trajectories, num_samples)

  @jax.jit
  def generate(params, key):
    result = pipeline.generate(params, key, num_samples, return_trajectory=True)
    return result.x, result.trajectory[:, :num_trajectories], result.nfe

  # Held-out target samples: a key no training step uses (training keys are folded in).
  reference = np.asarray(target(jax.random.PRNGKey(config.eval.reference_seed), num_samples))

  def draw(params, key):
    x1, trajectory, nfe = generate(params, key)
    nfe = int(parallel.to_host(nfe))
    title = (f"{config.data.source} -> {config.data.target}, {config.sample.solver} "
             f"({nfe} NFE)")
    return parallel.to_host(x1), parallel.to_host(trajectory), nfe, title

  def figures(samples, trajectory, title):
    return {"samples": plotting.scatter_figure(samples, reference, title),
            "trajectories": plotting.trajectory_figure(trajectory, title)}

  floor = {}

  def evaluate(params, key):
    samples, trajectory, nfe, title = draw(params, key)
    values = metrics_lib.compute_metrics(config.eval.metrics, samples, reference)
    if "w2" in values:  # W2 of fresh target draws to the reference: the sampling floor.
      if "w2" not in floor:
        floor["w2"] = metrics_lib.w2_floor(target, reference, num_draws=5,
                                           seed=config.eval.reference_seed + 1)
      values["w2_floor"], values["w2_floor_std"] = floor["w2"]
    values["nfe"] = nfe
    return values, figures(samples, trajectory, title)

  def sample(params, key):
    samples, trajectory, _, title = draw(params, key)
    return ({"samples": samples, "trajectories": trajectory},
            figures(samples, trajectory, title))

  return pipeline_task(pipeline, target, batch_size, micro_batch=micro_batch,
                       evaluate=evaluate, sample=sample)


