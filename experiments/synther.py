"""SynthER ("Synthetic Experience Replay", Lu et al. 2023) on Pendulum transitions.

build_task  A residual-MLP denoiser (model "residual_mlp") trained with the EDM objective
            on the standardised [s, a, r, s', done] vectors (`diffjax.replay.synther`) of
            a small offline buffer: data.fraction of the episodes of data.buffer (a
            `.npz` of `diffjax.data.replay`, or "" to collect data.num_episodes episodes
            of the scripted swing-up policy with `diffjax.data.pendulum`). Evaluation
            draws upsample.num_synthetic transitions and reports their dynamics error
            under the true simulator (`synthetic_*_mse`) beside a Gaussian fitted to the
            same small buffer (`gaussian_*_mse`), then trains TD3+BC
            (`diffjax.replay.td3_bc`, learner.*) for each of learner.seeds seeds on the
            small buffer, the small buffer + synthetic (mixing ratio
            upsample.real_fraction), the small buffer + Gaussian draws, and the full
            buffer, and reports each policy's mean return over eval.episodes simulator
            episodes: `return_<data>` (mean over seeds) and `return_<data>_seed<i>`.
            `coverage_gap_<data>`: how far the full buffer's (s, a) are from the
            nearest (s, a) of the small buffer, alone or with the synthetic or
            Gaussian draws (`synther.coverage_gap`). `controller_action_mse_<data>`:
            mean squared distance of the actions from the noise-free scripted
            controller at the same states (`synther.action_deviation`: the behaviour
            policy's clipped noise alone for real buffers), for the small, synthetic
            and full buffers. eval.relabel (names of `synther.RELABELLINGS`, default
            none) adds, per name, TD3+BC on the small buffer + the synthetic rows
            relabelled by the true simulator at their own states (`synther.relabel`):
            "behaviour" replaces (a, r, s') with a fresh action of the behaviour policy
            (`pendulum.behaviour_policy`) and its simulator step, "model" keeps the
            model's a and recomputes (r, s'); reported as `return_small_relabel_<name>`
            (and `_seed<i>`, the same learner keys as the other sets) and
            `controller_action_mse_relabel_<name>`.
            `--mode=sample` writes the synthetic buffer (samples/*.npz).
"""
import jax
import jax.numpy as jnp
import numpy as np

from diffjax.data import pendulum
from diffjax.data.replay import (flatten_transitions, load_buffer,
                                 subsample_buffer, transition_dims)
from diffjax.errors import ConfigError
from diffjax.pipeline import DataSpec, build_pipeline, pipeline_task
from diffjax.replay import synther
from diffjax.replay.td3_bc import td3_bc_learner
from diffjax.train import parallel
from diffjax.train.validation import Key, check_keys

KEYS = (
    Key("data.backend", "name", names=lambda: pendulum.BACKENDS),
    Key("data.num_episodes", "int", 2, meaning="episodes collected when data.buffer is ''"),
    Key("data.fraction", "float", 0.0, 1.0, open_low=True,
        meaning="share of the buffer's episodes the diffusion model and small learner see"),
    Key("upsample.num_synthetic", "int", 1, meaning="synthetic transitions drawn"),
    Key("upsample.real_fraction", "float", 0.0, 1.0,
        meaning="probability a learner's row is real"),
    Key("learner.num_steps", "int", 1, meaning="TD3+BC steps"),
    Key("learner.width", "int", 1),
    Key("learner.batch_size", "int", 1),
    Key("learner.seeds", "int", 1, meaning="learner seeds per data set"),
    Key("eval.episodes", "int", 1, meaning="simulator episodes per policy"),
    Key("eval.relabel", "names", names=synther.RELABELLINGS.names,
        meaning="relabelled synthetic sets the learner is also trained on"),
)


def _buffer(config):
  path = config.data.get("buffer", "")
  if path:
    buffer = load_buffer(path)
    if buffer["observations"].shape[1] != pendulum.OBSERVATION_DIM or \
        buffer["actions"].shape[1] != pendulum.ACTION_DIM:
      raise ConfigError(f"data.buffer={path!r} has observations of width "
                        f"{buffer['observations'].shape[1]} and actions of width "
                        f"{buffer['actions'].shape[1]}; the Pendulum evaluation needs "
                        f"{pendulum.OBSERVATION_DIM} and {pendulum.ACTION_DIM}.")
    if len(buffer["rewards"]) % pendulum.EPISODE_LENGTH:
      raise ConfigError(f"data.buffer={path!r} has {len(buffer['rewards'])} rows; whole "
                        f"episodes of {pendulum.EPISODE_LENGTH} rows are expected.")
    return buffer
  return pendulum.collect_pendulum_buffer(config.data.num_episodes, seed=config.seed,
                                         backend=config.data.backend)


def build_task(config):
  check_keys(config, KEYS)
  full = _buffer(config)
  small = subsample_buffer(full, config.data.fraction, pendulum.EPISODE_LENGTH,
                           seed=config.seed)
  dims = transition_dims(small)
  normaliser = synther.transition_normaliser(small)
  vectors = jnp.asarray(normaliser.normalise(flatten_transitions(small)))
  pipeline = build_pipeline(config, DataSpec((vectors.shape[1],)))
  upsample, learner = config.upsample, config.learner
  num_synthetic = upsample.num_synthetic

  def draw(key, n):
    return vectors[jax.random.randint(key, (n,), 0, vectors.shape[0])]

  generate = jax.jit(lambda params, key: pipeline.generate(params, key, num_synthetic).x)

  def synthetic(params, key):
    generated = np.asarray(parallel.to_host(generate(params, key)))
    return synther.synthetic_buffer(generated, normaliser, dims)

  agent = td3_bc_learner(pendulum.OBSERVATION_DIM, pendulum.ACTION_DIM,
                         pendulum.MAX_TORQUE, width=learner.width,
                         batch_size=learner.batch_size)

  rows = max(len(full["rewards"]), num_synthetic)

  def padded(buffer):
    x = flatten_transitions(buffer)
    return jnp.asarray(np.pad(x, ((0, rows - len(x)), (0, 0)))), len(x)

  def learn(key, real, extra):
    real, num_real = padded(real)
    if extra is None:   # real rows only: the synthetic slot is never drawn from
      params = agent.train(key, real, num_real, real, num_real, 1.0, learner.num_steps)
    else:
      params = agent.train(key, real, num_real, *padded(extra), upsample.real_fraction,
                           learner.num_steps)
    returns = pendulum.policy_returns(agent.policy, params, jax.random.fold_in(key, 1),
                                      config.eval.episodes)
    return float(jnp.mean(returns))

  def evaluate(params, key):
    k_model, k_gauss, k_learn = jax.random.split(key, 3)
    fake = synthetic(params, k_model)
    gauss = synther.gaussian_buffer(small, k_gauss, num_synthetic)
    values = {}
    for name, buffer in (("synthetic", fake), ("gaussian", gauss)):
      for metric, value in synther.dynamics_error(buffer, pendulum.true_transition).items():
        values[f"{name}_{metric}"] = value
    values["coverage_gap_small"] = synther.coverage_gap(full, small)
    for name, extra in (("synthetic", fake), ("gaussian", gauss)):
      values[f"coverage_gap_small_{name}"] = synther.coverage_gap(
          full, {k: np.concatenate([small[k], extra[k]]) for k in ("observations",
                                                                   "actions")})
    for name, buffer in (("small", small), ("synthetic", fake), ("full", full)):
      values[f"controller_action_mse_{name}"] = synther.action_deviation(
          buffer, pendulum.swing_up_controller)
    episodes = full["rewards"].reshape(-1, pendulum.EPISODE_LENGTH).sum(1)
    values["return_behaviour"] = float(episodes.mean())
    sets = {"small": (small, None), "small_synthetic": (small, fake),
            "small_gaussian": (small, gauss), "full": (full, None)}
    for name in config.eval.get("relabel", ()):
      actions = synther.RELABELLINGS.get(name)(jax.random.fold_in(key, 7), fake,
                                               pendulum.behaviour_policy)
      relabelled = synther.relabel(fake, pendulum.true_transition, actions)
      values[f"controller_action_mse_relabel_{name}"] = synther.action_deviation(
          relabelled, pendulum.swing_up_controller)
      sets[f"small_relabel_{name}"] = (small, relabelled)
    for name, (real, extra) in sets.items():
      runs = [learn(jax.random.fold_in(k_learn, seed), real, extra)
              for seed in range(learner.seeds)]
      values[f"return_{name}"] = float(np.mean(runs))
      for seed, value in enumerate(runs):
        values[f"return_{name}_seed{seed}"] = value
    return values, {}

  def sample(params, key):
    return synthetic(params, key), {}

  return pipeline_task(pipeline, draw, config.train.batch_size, evaluate=evaluate,
                       sample=sample)
