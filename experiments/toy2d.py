"""Generative dynamics on 2D toys (and other vector targets): source -> coupling -> path ->
objective -> MLP, sampled with an ODE solver and scored by W2 and energy distance.

Config sections read here: data, coupling, path, objective, model, sample, eval.
"""
import functools

import jax
import ml_collections
import numpy as np

from diffjax import metrics as metrics_lib
from diffjax import plotting
from diffjax.couplings import COUPLINGS
from diffjax.data import get_sampler
from diffjax.models import build_model
from diffjax.objectives import build_objective
from diffjax.paths import build_path
from diffjax.solvers import SAMPLERS
from diffjax.train import Task, parallel
from experiments.common import component_options


def build_task(config) -> Task:
  """Builds the task; unknown component names fail here, before any workdir is touched."""
  source = get_sampler(config.data.source)
  target = get_sampler(config.data.target)
  coupling = functools.partial(COUPLINGS.get(config.coupling.name),
                               **component_options(config.coupling))
  path = build_path(config.path.name, **component_options(config.path))
  if hasattr(path, "prior_sample"):  # Gaussian diffusion paths start from their own prior.
    source = lambda key, n: path.prior_sample(key, (n, config.data.dim))
  objective = build_objective(config.objective.name, path,
                              **component_options(config.objective))
  model = build_model(config.model.name, (config.data.dim,), **component_options(config.model))
  sampler = SAMPLERS.get(config.sample.solver)
  sampler_options = component_options(config.sample, ("solver", "num_steps", "num_trajectories"))
  for name in config.eval.metrics:
    metrics_lib.METRICS.get(name)
  batch_size = config.train.batch_size
  if batch_size % config.train.grad_accum_steps:
    raise ValueError(f"train.batch_size={batch_size} must be divisible by "
                     f"train.grad_accum_steps={config.train.grad_accum_steps}.")
  micro_batch = batch_size // config.train.grad_accum_steps

  def loss(params, key, shard, step):
    del step
    k_source, k_target, k_couple, k_loss = jax.random.split(key, 4)
    x0 = shard(source(k_source, micro_batch))
    x1 = shard(target(k_target, micro_batch))
    x0, x1 = coupling(k_couple, x0, x1)
    return objective.loss(model.apply, params, k_loss, x0, x1)

  num_samples = config.eval.num_samples
  num_trajectories = min(config.sample.num_trajectories, num_samples)

  @jax.jit
  def generate(params, key):
    k_source, k_sampler = jax.random.split(key)
    x0 = source(k_source, num_samples)
    result = sampler(objective.fields(model.apply, params), path, x0, k_sampler,
                     num_steps=config.sample.num_steps, return_trajectory=True,
                     **sampler_options)
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
    if "w2" in values:  # W2 between two independent target draws: the sampling floor.
      if "w2" not in floor:
        second = np.asarray(target(jax.random.PRNGKey(config.eval.reference_seed + 1),
                                   num_samples))
        floor["w2"] = metrics_lib.wasserstein2(second, reference)
      values["w2_floor"] = floor["w2"]
    values["nfe"] = nfe
    return values, figures(samples, trajectory, title)

  def sample(params, key):
    samples, trajectory, _, title = draw(params, key)
    return ({"samples": samples, "trajectories": trajectory},
            figures(samples, trajectory, title))

  return Task(init_params=model.init, loss=loss, evaluate=evaluate, sample=sample,
              batch_size=batch_size)


def base_config() -> ml_collections.ConfigDict:
  """Defaults for a toy-2D flow-matching run; configs override what they need."""
  from diffjax.train.defaults import engine_config  # pylint: disable=g-import-not-at-top
  config = engine_config()
  config.experiment = "toy2d"
  config.data = ml_collections.ConfigDict(dict(
      source="standard_normal", target="moons", dim=2))
  config.coupling = ml_collections.ConfigDict(dict(name="independent"))
  config.path = ml_collections.ConfigDict(dict(name="linear"))
  config.objective = ml_collections.ConfigDict(dict(
      name="flow_matching", time_sampler="uniform"))
  config.model = ml_collections.ConfigDict(dict(
      name="mlp", width=128, depth=3, activation="silu", time_embedding="sinusoidal",
      time_dim=32))
  config.sample = ml_collections.ConfigDict(dict(
      solver="heun", num_steps=50, num_trajectories=200))
  config.eval.metrics = ("w2", "energy_distance")
  config.eval.num_samples = 2000
  config.eval.reference_seed = 12345
  return config


def apply_size_argument(config, arg, num_steps=200):
  """Applies a config file's `arg`: None (the full run) or "tiny" (seconds, for tests and
  smoke checks: `num_steps` steps, a small MLP, few samples). Other values are refused."""
  if arg == "tiny":
    chunk = num_steps // 2
    config.train.update(num_steps=num_steps, batch_size=64, steps_per_call=chunk,
                        log_every=chunk, eval_every=chunk, checkpoint_every=chunk)
    config.optim.warmup_steps = min(config.optim.warmup_steps, num_steps // 8)
    config.model.update(width=32, depth=2)
    config.sample.num_steps = min(config.sample.num_steps, 10)
    config.sample.num_trajectories = 16
    config.eval.num_samples = 256
  elif arg is not None:
    raise ValueError(f"Unknown config argument {arg!r}; valid: tiny (or none).")
  return config
