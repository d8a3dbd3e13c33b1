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
