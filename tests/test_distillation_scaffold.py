"""Distillation teachers: the exact oracle and a tiny trained run as `Teacher`s, and bad
teacher workdirs refused with one line."""
import os
import shutil

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs.distillation import base, teacher as teacher_config
from diffjax import runs
from diffjax.data import mixture_oracle
from diffjax.distillation import (TEACHER_MIXTURES, build_context, oracle_teacher,
                                  teacher_from_config, teacher_of_run)
from diffjax.errors import ConfigError
from diffjax.paths import build_path
from diffjax.train import train
from experiments import toy2d


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
  """A tiny rectified-flow teacher on the moons (20 steps, checkpoints at 10 and 20)."""
  workdir = str(tmp_path_factory.mktemp("teacher") / "moons")
  config = teacher_config.get_config("moons,tiny")
  train(config, workdir, toy2d.build_task(config))
  return workdir


def _config(**teacher):
  config = base.base_config()
  config.teacher.update(**teacher)
  return config


def test_oracle_teacher_gives_the_exact_fields_and_target():
  config = _config(kind="oracle", mixture="imbalanced_eight_gaussians")
  teacher = teacher_from_config(config, expect_shape=(2,))
  target = TEACHER_MIXTURES.get("imbalanced_eight_gaussians")()
  np.testing.assert_allclose(np.asarray(target.weights).sum(), 1.0, rtol=1e-6)
  assert float(target.weights[0]) == pytest.approx(0.4)
  assert float(target.weights[-1]) == pytest.approx(0.02)
  path = build_path("rectified_flow")
  exact = mixture_oracle(path, target).fields()
  x = jax.random.normal(jax.random.PRNGKey(0), (5, 2))
  for t in (0.2, 0.9):
    np.testing.assert_allclose(teacher.fields().velocity(x, t), exact.velocity(x, t))
  assert teacher.exact and teacher.spec.shape == (2,)
  # Heun's 50-step samples of the exact field land on the ring of radius 5.
  samples = teacher.sample(jax.random.PRNGKey(1), 400, num_steps=50).x
  radius = jnp.linalg.norm(samples, axis=-1)
  assert abs(float(jnp.median(radius)) - 5.0) < 0.3


def test_conditional_oracle_selects_a_class():
  path = build_path("rectified_flow")
  target = TEACHER_MIXTURES.get("two_class")()
  teacher = oracle_teacher(path, target)
  assert teacher.spec.num_classes == 2
  x = jnp.zeros((2, 2))
  labels = jnp.array([0, 1])
  data = teacher.fields(labels).data(x, 0.5)
  assert float(data[0, 0]) < 0 < float(data[1, 0])   # class 0 left, class 1 right


def test_run_teacher_gives_the_runs_fields(teacher_run):
  config = _config(kind="run", workdir=teacher_run)
  teacher = teacher_from_config(config, expect_shape=(2,))
  run = runs.load(teacher_run)
  x = jax.random.normal(jax.random.PRNGKey(0), (4, 2))
  np.testing.assert_array_equal(teacher.fields().velocity(x, 0.3),
                                run.fields().velocity(x, 0.3))
  assert not teacher.exact and teacher.path.name == "rectified_flow"
  assert teacher.sample(jax.random.PRNGKey(1), 8, num_steps=4).x.shape == (8, 2)
  context = build_context(config)
  assert context.teacher.run is not None and context.path is context.teacher.path


def test_a_teacher_built_in_memory_replaces_the_configs(teacher_run):
  """build_context(config, teacher): the given teacher (a Run in memory, other weights)
  is the one the student distils, not the one config.teacher names."""
  loaded = runs.load(teacher_run)
  params = jax.tree.map(lambda p: p + 1.0, loaded.params)
  run = runs.Run("in memory", loaded.config, 0, 0, params, loaded.pipeline)
  context = build_context(_config(kind="run", workdir=teacher_run), teacher_of_run(run, "mine"))
  x = jax.random.normal(jax.random.PRNGKey(0), (4, 2))
  np.testing.assert_array_equal(context.teacher.fields().velocity(x, 0.3),
                                run.fields().velocity(x, 0.3))
  assert not np.allclose(context.teacher.fields().velocity(x, 0.3),
                         loaded.fields().velocity(x, 0.3))
  assert context.teacher.name == "mine" and context.path is run.pipeline.path


def _one_line(error):
  message = str(error.value)
  assert "\n" not in message
  return message


def test_bad_teacher_workdirs_are_refused_with_one_line(teacher_run, tmp_path):
  with pytest.raises(runs.RunError) as error:
    teacher_from_config(_config(kind="run", workdir=str(tmp_path / "missing")))
  assert "teacher.workdir" in _one_line(error) and "does not exist" in str(error.value)

  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(ConfigError) as error:
    teacher_from_config(_config(kind="run", workdir=str(empty)))
  assert "holds no run" in _one_line(error)

  unfinished = str(tmp_path / "unfinished")
  shutil.copytree(teacher_run, unfinished)
  shutil.rmtree(os.path.join(unfinished, "checkpoints", "20"))
  with pytest.raises(runs.RunError) as error:
    teacher_from_config(_config(kind="run", workdir=unfinished))
  assert "unfinished" in _one_line(error)

  with pytest.raises(runs.RunError) as error:
    teacher_from_config(_config(kind="run", workdir=teacher_run), expect_shape=(8, 8, 1))
  assert "shape (2,)" in _one_line(error)

  for section, match in ((dict(kind="run", workdir=""), "needs teacher.workdir"),
                         (dict(kind="teacher"), "teacher.kind='teacher'"),
                         (dict(kind="oracle", mixture="moons"), "Unknown teacher mixture")):
    with pytest.raises((ConfigError, KeyError)) as error:
      teacher_from_config(_config(**section))
    assert match in str(error.value) and "\n" not in str(error.value)


def test_a_student_must_live_on_its_teachers_path(teacher_run):
  config = _config(kind="run", workdir=teacher_run)
  config.path = ml_collections.ConfigDict(dict(name="vp"))
  with pytest.raises(ConfigError, match="teacher run's path"):
    build_context(config)
