"""Shared test utilities: tiny configs, running the CLI, reading a run's final state."""
import os
import subprocess
import sys

import jax
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config(**overrides):
  """The quickstart's tiny config with dotted-key overrides, e.g. {'train.num_steps': 50}."""
  from configs import quickstart  # pylint: disable=g-import-not-at-top
  config = quickstart.get_config("tiny")
  for key, value in overrides.items():
    section, name = key.rsplit(".", 1) if "." in key else (None, key)
    target = config
    if section:
      for part in section.split("."):
        target = target[part]
    target[name] = value
  config.lock()
  return config


def run_main(args, env=None, timeout=300, **kwargs):
  """Runs `python -m experiments.main ARGS` from the repository root."""
  full_env = dict(os.environ, **(env or {}))
  full_env.setdefault("JAX_PLATFORMS", "cpu")
  return subprocess.run([sys.executable, "-m", "experiments.main", *args], cwd=REPO,
                        env=full_env, capture_output=True, text=True, timeout=timeout,
                        **kwargs)


def final_state(config, workdir):
  """Restores the latest checkpoint of workdir as host NumPy arrays."""
  from experiments import toy2d  # pylint: disable=g-import-not-at-top
  from diffjax.train import restore_for_inference  # pylint: disable=g-import-not-at-top
  state = restore_for_inference(config, workdir, toy2d.build_task(config))
  return jax.tree.map(np.asarray, state)


def assert_trees_equal(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)


def regression_task(batch_size=32, dim=4, process_index=0, process_count=1):
  """A host-fed task: least squares on batches that depend only on the step number."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from diffjax.train import Task  # pylint: disable=g-import-not-at-top
  w_true = np.arange(1.0, dim + 1, dtype=np.float32)
  local = batch_size // process_count

  def data(start_step):
    step = start_step
    while True:
      rng = np.random.default_rng(step)
      x = rng.normal(size=(batch_size, dim)).astype(np.float32)
      y = x @ w_true + 0.1 * rng.normal(size=batch_size).astype(np.float32)
      rows = slice(process_index * local, (process_index + 1) * local)
      yield {"x": x[rows], "y": y[rows]}
      step += 1

  def loss(params, key, shard, step, batch):
    del key, shard, step
    residual = batch["x"] @ params["w"] - batch["y"]
    return jnp.mean(residual ** 2), {}

  return Task(init_params=lambda key: {"w": jnp.zeros(dim)}, loss=loss,
              evaluate=lambda params, key: ({"w_error": float(
                  np.abs(np.asarray(params["w"]) - w_true).max())}, {}),
              sample=None, batch_size=batch_size, data=data)


def regression_config(**train):
  from diffjax.train.defaults import engine_config  # pylint: disable=g-import-not-at-top
  config = engine_config()
  config.train.update(num_steps=40, steps_per_call=10, log_every=10, eval_every=40,
                      checkpoint_every=20, batch_size=32)
  config.train.update(**train)
  config.optim.update(learning_rate=0.2, warmup_steps=0, schedule="constant")
  config.eval.use_ema = False
  return config
