"""The distribution-matching methods as tasks: SFD's forgetting target is the other class's
exact score and its players read no data; f_distill and DisBack resume bit for bit (DisBack
inside its backtracking, after writing its nodes)."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs.distillation import disback as disback_config
from configs.distillation import f_distill as f_distill_config
from configs.distillation import sfd as sfd_config
from diffjax.data.conditional_mixture import ClassConditionalMixture
from diffjax.data.gaussian_mixture import isotropic_mixture
from diffjax.distillation import build_context, distillation_task
from diffjax.distillation.disback import record_loss
from diffjax.distillation.sfd import ScoreForgetting, build_sfd
from diffjax.distillation.score_distillation import OneStepGenerator, ScoreDistillation
from diffjax.fields import complete
from diffjax.models import Model
from diffjax.paths import build_path
from diffjax.pipeline import DataSpec, Pipeline
from diffjax.train import make_players_step, train
from diffjax.train.state import create_train_state
from experiments import distillation
from tests.helpers import assert_trees_equal

PATH = build_path("rectified_flow")


def _three_classes():
  blob = lambda x, y: isotropic_mixture(jnp.ones((1,)), jnp.array([[x, y]]), 0.5)
  return ClassConditionalMixture(jnp.array([0.3, 0.3, 0.4]),
                                 (blob(-3.0, 0.0), blob(0.0, 3.0), blob(3.0, 0.0)))


def _forgetting(override):
  target = _three_classes()
  fake = Pipeline(DataSpec((2,), 3), PATH, None, Model(None, None), None, None)
  core = ScoreDistillation(OneStepGenerator(None, None), fake, None, 3, 8)
  teacher = lambda labels: complete(target.fields(PATH, labels), PATH)
  return ScoreForgetting(core, teacher, forget=1, override=override), target


@pytest.mark.parametrize("override", [2, -1])
def test_forgetting_target_is_the_other_class_exact_score(override):
  """Samples of the class to forget (1) are matched to the exact score of the override
  class (2, or a uniformly random other class), the others to their own class's."""
  forgetting, target = _forgetting(override)
  labels = jnp.array([0, 1, 2] * 100, jnp.int32)
  x_t = jax.random.normal(jax.random.PRNGKey(0), (300, 2))
  key = jax.random.PRNGKey(1)
  matched = forgetting.teacher_labels(key, labels)
  assert np.all(np.asarray(matched)[np.asarray(labels) != 1] ==
                np.asarray(labels)[np.asarray(labels) != 1])
  forgotten = np.asarray(matched)[np.asarray(labels) == 1]
  assert set(forgotten.tolist()) == ({2} if override == 2 else {0, 2})
  got = forgetting.forgetting_target(key, x_t, 0.7, labels).score
  scores = np.stack([o.score(x_t, 0.7) for o in target.oracles(PATH)[:3]])   # (3, B, 2)
  want = scores[np.asarray(matched), np.arange(300)]
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  forgotten_rows = np.asarray(labels) == 1   # Not the forgotten class's own score:
  assert np.min(np.abs(np.asarray(got) - scores[1])[forgotten_rows].sum(-1)) > 1e-2


def test_sfd_players_read_no_data():
  """SFD's two players train with a data source that raises when called: no real sample
  is read during distillation, and its engine task has no data."""
  config = sfd_config.get_config("two_class,tiny")
  context = build_context(config)

  def no_data(key, n):
    raise AssertionError("SFD read the data")

  context = dataclasses.replace(context, data=context.data._replace(draw=no_data))
  student = build_sfd(context)
  players = tuple(dataclasses.replace(p, optimizer=optax.adam(1e-3)) for p in student.players)
  state = create_train_state(student.init_params, players, jax.random.PRNGKey(0))
  step = jax.jit(make_players_step(players))
  before = state.params["generator"]
  for _ in range(2):
    state, metrics = step(state, None, jax.random.fold_in(state.key, state.step))
  assert np.isfinite(float(metrics["generator/loss"]))
  assert not np.allclose(jax.tree.leaves(before)[0], jax.tree.leaves(state.params["generator"])[0])
  task = distillation_task(config, context, student, lambda p, k: ({}, {}), None)
  assert task.data is None


def _quiet(config, **train_overrides):
  """Evaluation only at the end, without W2 and energy distance (POT's import is slow)."""
  config.train.update(eval_every=0, log_every=0, **train_overrides)
  config.eval.metrics = ()
  return config


def _host(tree):
  return jax.tree.map(np.asarray, tree)


def _assert_same_run(full, resumed):
  for field in ("params", "ema_params", "opt_state"):
    assert_trees_equal(_host(getattr(full, field)), _host(getattr(resumed, field)))


def test_f_distill_resumes_bitwise(tmp_path):
  """Three players and the discriminator's teacher samples (the phase's prepare): a run
  stopped at step 10 and resumed ends where an uninterrupted one does."""
  config = lambda **o: _quiet(f_distill_config.get_config("imbalanced,tiny"), **o)
  config_js = lambda **o: _set(config(**o), "method.divergence", "jensen_shannon")
  full = train(config_js(), str(tmp_path / "full"), distillation.build_task(config_js()))
  staged = str(tmp_path / "staged")
  train(config_js(num_steps=10), staged, distillation.build_task(config_js(num_steps=10)))
  resumed = train(config_js(), staged, distillation.build_task(config_js()))
  _assert_same_run(full, resumed)
  assert set(full.params) == {"generator", "fake", "discriminator"}


def _set(config, dotted, value):
  section, key = dotted.rsplit(".", 1)
  config[section][key] = value
  return config


def test_record_writes_the_copy_into_one_node():
  """One SGD step at learning rate 1 on `record_loss` sets node k to the copy (up to one
  rounding) and leaves the other nodes bit for bit."""
  copy = {"w": jax.random.normal(jax.random.PRNGKey(0), (3, 4)), "b": jnp.arange(4.0)}
  nodes = jax.tree.map(lambda u: jax.random.normal(jax.random.PRNGKey(1), (3,) + u.shape),
                       copy)
  params = {"copy": copy, "nodes": nodes}
  grads = jax.grad(lambda p: record_loss(p, None, None, 0, None, jax.nn.one_hot(1, 3))[0])(
      params)
  updates, _ = optax.sgd(1.0).update(grads, optax.sgd(1.0).init(params))
  new = optax.apply_updates(params, updates)
  for name in copy:
    np.testing.assert_allclose(new["nodes"][name][1], copy[name], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(new["nodes"][name][0], nodes[name][0])
    np.testing.assert_array_equal(new["nodes"][name][2], nodes[name][2])


def test_disback_resumes_bitwise_inside_backtracking(tmp_path):
  """Stopped inside the last backtracking stage (its context, the teacher node, prepared
  again from the recorded nodes) and resumed, the run ends bit for bit as an
  uninterrupted one; its K + 1 nodes are distinct."""
  config = lambda **o: _quiet(disback_config.get_config("imbalanced,tiny"), **o)
  total = config().train.num_steps
  full = train(config(), str(tmp_path / "full"), distillation.build_task(config()))
  staged = str(tmp_path / "staged")
  middle = total - 3   # Inside backtrack_0.
  train(config(num_steps=middle), staged, distillation.build_task(config(num_steps=middle)))
  resumed = train(config(), staged, distillation.build_task(config()))
  _assert_same_run(full, resumed)
  leaves = jax.tree.leaves(_host(full.params["nodes"]))[0]
  assert len({leaves[k].tobytes() for k in range(leaves.shape[0])}) == leaves.shape[0]
