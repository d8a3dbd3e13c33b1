"""The bridges experiment family end to end: configs, bad values, and a tiny SBIRR run
(IPF phases under a refined reference, refits, snapshot EMD) that, stopped inside an
outer iteration and resumed, ends bit for bit where an uninterrupted run does."""
import contextlib
import importlib
import json
import os
import shutil

import jax
from jax.experimental.compilation_cache import compilation_cache
import numpy as np
import pytest

import experiments
from diffjax.errors import ConfigError
from configs.bridges import base as bridge_base
from experiments import bridges
from tests.helpers import assert_trees_equal

CONFIGS = {"gaussian": ("sbcfm", "ipf", "imf"), "toy": ("ipf", "imf"),
           "lotka_volterra": ("refined", "vanilla", "oracle"),
           "repressilator": ("refined", "vanilla", "oracle")}


def test_every_config_has_its_command_and_phases():
  for name, args in CONFIGS.items():
    module = importlib.import_module(f"configs.bridges.{name}")
    assert f"configs/bridges/{name}.py" in module.__doc__
    for arg in args:
      config = module.get_config(arg)
      every = bridge_base.iteration_steps(config)
      assert config.train.eval_every == every and every % config.train.steps_per_call == 0
  with pytest.raises(ValueError, match="tiny"):
    importlib.import_module("configs.bridges.toy").get_config("huge")


@pytest.mark.parametrize("key,value,message", [
    ("bridge.sigma", -1.0, "bridge.sigma must be a positive number.*-1"),
    ("bridge.sigma", 0.0, "bridge.sigma must be a positive number.*got 0.0"),
    ("bridge.method", "dsb", "bridge.method='dsb' is not one of the valid names: imf, ipf, "
     "multimarginal, sbcfm, sbirr"),
    ("data.kind", "snapshots", "bridge.method='ipf' bridges two marginals but "
     "data.kind='snapshots' gives snapshots; with this data choose bridge.method from "
     "multimarginal, sbirr"),
    ("bridge.steps_per_phase", 0, "bridge.steps_per_phase=0 is out of range: it must be "
     ">= 1"),
    ("bridge.t_margin", 0.5, "bridge.t_margin=0.5 is out of range"),
    ("reference.num_outer", 0, "reference.num_outer=0 is out of range"),
    ("reference.family", "lotka", "reference.family='lotka' is not one of the valid names"),
    ("eval.num_samples", 1, "eval.num_samples=1 is out of range"),
])
def test_bad_values_fail_before_the_workdir_is_touched(key, value, message, tmp_path):
  config = importlib.import_module("configs.bridges.toy").get_config("ipf,tiny")
  section, name = key.split(".")
  config[section][name] = value
  with pytest.raises(ConfigError, match=message):
    experiments.run(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")


def test_bad_snapshot_settings_are_refused(tmp_path):
  config = importlib.import_module("configs.bridges.lotka_volterra").get_config("tiny")
  config.data.update(times_start=0.0, times_stop=0.0)
  with pytest.raises(ConfigError, match="at least two snapshots"):
    experiments.run(config, str(tmp_path / "run"))
  config = importlib.import_module("configs.bridges.lotka_volterra").get_config("tiny")
  config.reference.family = "repressilator"
  with pytest.raises(ConfigError, match="works in dimension 3; the data have dimension 2"):
    experiments.run(config, str(tmp_path / "run2"))
  assert not os.path.exists(tmp_path / "run") and not os.path.exists(tmp_path / "run2")


@contextlib.contextmanager
def persistent_compilation_cache(directory):
  """JAX's persistent compilation cache in `directory` while inside: a second run of the
  same config loads the programs the first compiled (compiling is most of a tiny run's
  time) instead of compiling them again. The same executables: results are unchanged."""
  names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")
  previous = {name: getattr(jax.config, name) for name in names}
  compilation_cache.reset_cache()
  jax.config.update("jax_compilation_cache_dir", str(directory))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  try:
    yield
  finally:
    for name, value in previous.items():
      jax.config.update(name, value)
    compilation_cache.reset_cache()


def test_sbirr_tiny_run_resumes_bit_for_bit(tmp_path):
  # The run checkpoints every 10 steps; a copy of its workdir without the checkpoints after
  # step `kill` is a run killed there, inside the first phase of outer iteration 2, whose
  # prepare refits the reference: the resumed run refits and prepares it again. Resumed,
  # it ends where the full run ends.
  config = importlib.import_module("configs.bridges.lotka_volterra").get_config("tiny")
  config.train.update(checkpoint_every=10, keep_checkpoints=1000)
  iteration = bridge_base.iteration_steps(config)
  kill = iteration + 10
  full_dir, killed_dir = tmp_path / "full", tmp_path / "killed"
  with persistent_compilation_cache(tmp_path / "jax_cache"):
    full = experiments.run(config, str(full_dir))
    shutil.copytree(full_dir, killed_dir)
    for name in os.listdir(killed_dir / "checkpoints"):
      if name.isdigit() and int(name) > kill:
        shutil.rmtree(killed_dir / "checkpoints" / name)
    resumed = experiments.run(config, str(killed_dir))
  assert_trees_equal(resumed.params, full.params)
  assert_trees_equal(resumed.opt_state, full.opt_state)
  with open(full_dir / "metrics.jsonl") as f:
    records = [json.loads(line) for line in f]
  assert [r["step"] for r in records] == [iteration * (i + 1)
                                          for i in range(config.reference.num_outer)]
  assert all(np.isfinite(r["emd_mean"]) and r["emd_mean"] > 0 for r in records)
  assert set(full.params) == {"forward", "backward"}
  assert records[-1]["reference_alpha"] != 0.0     # The refit moved the reference.


def test_imf_first_phase_reads_the_prefetched_ot_pairs():
  config = importlib.import_module("configs.bridges.toy").get_config("imf,tiny")
  config.bridge.update(host_coupling=True, initial_coupling="exact_ot")
  task = bridges.build_task(config)
  # Phases of one kind share their functions, so the engine compiles one train call per
  # (loss, trainable) and one prepare per (prepare, trainable): 3 and 2 here, not 5 and 4.
  assert len(task.phases) == 1 + 2 * config.bridge.num_iterations
  assert len({(p.loss, p.trainable) for p in task.phases}) == 3
  assert len({(p.prepare, p.trainable) for p in task.phases if p.prepare}) == 2
  stream = task.data(0)
  batch = next(stream)
  stream.close()
  assert batch["x0"].shape == (config.train.batch_size, 2)
  params = jax.jit(task.init_params)(jax.random.PRNGKey(0))   # One compile, not one per op.
  first = task.phases[0]
  loss, aux = jax.jit(lambda p, b: first.loss(p, jax.random.PRNGKey(1), lambda x: x, 0, b,
                                              None))(params, batch)
  assert np.isfinite(float(loss)) and set(aux) == {"bridge_matching_forward",
                                                   "bridge_matching_backward"}
  config.bridge.initial_coupling = "sinkhorn_ot"
  with pytest.raises(ConfigError, match="host_coupling"):
    bridges.build_task(config)
