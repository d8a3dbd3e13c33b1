"""Tasks with several players in the training engine: optimizers from config sections,
resumption bit for bit, players inside phases, malformed players refused."""
import os

import jax
import ml_collections
import numpy as np
import optax
import pytest

from diffjax.errors import ConfigError
from diffjax.train import Phase, Player, Task, build_optimizer, make_players_step, train
from diffjax.train import loop
from diffjax.train.defaults import engine_config
from diffjax.train.state import create_train_state
from tests.helpers import assert_trees_equal
from tests.test_train_step import _init, _loss_a, _loss_b

ONLY_A = lambda params: {"a": True, "b": False}   # pylint: disable=unnecessary-lambda-assignment
ONLY_B = lambda params: {"a": False, "b": True}   # pylint: disable=unnecessary-lambda-assignment


def _with_context(loss):
  """A player's loss in a phased task: the phase's context shifts its target."""
  def phased(params, key, shard, step, batch, context):
    value, aux = loss(params, key, shard, step, batch)
    return value + 0.1 * jax.numpy.sum(context * params["a"]), aux
  return phased


def _task(phased=False):
  wrap = _with_context if phased else (lambda loss: loss)
  players = (Player("a", wrap(_loss_a), optax.sgd(0.1, momentum=0.9), ONLY_A),
             Player("b", wrap(_loss_b), "optim_b", ONLY_B))
  phases = ()
  if phased:   # The prepare reads the frozen b only (a is trained in both phases).
    prepare = lambda params, key: jax.numpy.tanh(params["b"])
    phases = (Phase("warm", 4, players=("a",), prepare=prepare),
              Phase("game", 8, players=("a", "b"), prepare=lambda params, key: 0.0 * key[:2]))
  return Task(init_params=_init, loss=None, evaluate=lambda params, key: ({}, {}),
              sample=None, batch_size=1, players=players, phases=phases)


def _config(**train):
  config = engine_config()
  config.train.update(num_steps=12, steps_per_call=4, log_every=4, eval_every=0,
                      checkpoint_every=0, batch_size=1)
  config.train.update(**train)
  config.optim_b = ml_collections.ConfigDict(dict(learning_rate=0.05, schedule="constant",
                                                  warmup_steps=0))
  return config


def _host(tree):
  return jax.tree.map(np.asarray, tree)


def test_two_players_train_as_their_step_and_resume_bitwise(tmp_path):
  """The engine's run equals 12 steps of the public players' step with a's optax optimizer
  and b's built from config.optim_b over config.optim; a run stopped at step 6 and resumed
  ends bit for bit where the uninterrupted one does, optimizer states and EMA included."""
  config = _config()
  full = train(config, str(tmp_path / "full"), _task())
  merged = ml_collections.ConfigDict({**config.optim.to_dict(), **config.optim_b.to_dict()})
  players = (Player("a", _loss_a, optax.sgd(0.1, momentum=0.9), ONLY_A),
             Player("b", _loss_b, build_optimizer(merged, 12), ONLY_B))
  state = create_train_state(_init, players, loop._keys(config.seed)[0])  # pylint: disable=protected-access
  step = jax.jit(make_players_step(players, ema_decay=config.optim.ema_decay))
  for _ in range(12):
    state, _ = step(state, None, jax.random.fold_in(state.key, state.step))
  assert_trees_equal(_host(state.params), _host(full.params))

  staged = str(tmp_path / "staged")
  train(_config(num_steps=6), staged, _task())
  resumed = train(config, staged, _task())
  for field in ("params", "ema_params", "opt_state"):
    assert_trees_equal(_host(getattr(full, field)), _host(getattr(resumed, field)))
  assert sorted(os.listdir(os.path.join(staged, "checkpoints"))) == ["12", "6"]


def test_players_in_phases(tmp_path):
  """Phase "warm" updates a alone: b keeps its parameters and optimizer state bit for bit;
  "game" updates both. Resumed inside "game", the run ends bit for bit as in one go."""
  warm = train(_config(num_steps=4), str(tmp_path / "warm"), _task(phased=True))
  optimizers = loop.build_optimizers(_config(), _task(), 12)
  initial = create_train_state(_init, loop.state_optimizer(_task(), optimizers),
                               jax.random.PRNGKey(0))
  assert_trees_equal(_host(initial.params["b"]), _host(warm.params["b"]))
  assert_trees_equal(_host(initial.opt_state["b"]), _host(warm.opt_state["b"]))
  assert not np.allclose(np.asarray(initial.params["a"]), np.asarray(warm.params["a"]))
  full = train(_config(), str(tmp_path / "full"), _task(phased=True))
  staged = str(tmp_path / "staged")
  train(_config(num_steps=6), staged, _task(phased=True))
  resumed = train(_config(), staged, _task(phased=True))
  for field in ("params", "ema_params", "opt_state"):
    assert_trees_equal(_host(getattr(full, field)), _host(getattr(resumed, field)))
  counts = optax.tree_utils.tree_get_all_with_path(resumed.opt_state["b"], "count")
  assert [int(count) for _, count in counts] == [8, 8]   # b stepped in "game" only.


def _bad(kind):
  task = _task()
  a, b = task.players
  players = {"duplicate": (a, Player("a", b.loss, b.optimizer, b.trainable)),
             "no_section": (a, Player("b", b.loss, "optim_c", b.trainable)),
             "optimizer": (a, Player("b", b.loss, 0.1, b.trainable))}.get(kind, task.players)
  phases = {"phase_unknown": (Phase("p", 3, players=("c",)),),
            "phase_loss": (Phase("p", 3, loss=a.loss, players=("a",)),)}.get(kind, ())
  return Task(init_params=task.init_params, loss=a.loss if kind == "loss" else None,
              evaluate=task.evaluate, sample=None, batch_size=1, players=players,
              phases=phases)


@pytest.mark.parametrize("kind, message", [
    ("duplicate", r"two players are named 'a'"),
    ("no_section", r"Player 'b': optimizer='optim_c' names no config section"),
    ("optimizer", r"Player 'b': optimizer=0.1 must be an optax GradientTransformation"),
    ("section_key", r"config.optim_b.momentum is not an optimizer key"),
    ("section_value", r"optim_b.learning_rate=-1.0 is out of range"),
    ("phase_unknown", r"Phase 0 \('p'\): players=\('c',\) must name one or more of the "
                      r"task's players"),
    ("phase_loss", r"Phase 0 \('p'\): loss=.* must be None in a task with players"),
    ("loss", r"A Task with players trains each player's own loss"),
])
def test_malformed_players_are_refused_before_the_workdir_is_touched(tmp_path, kind, message):
  config = _config()
  if kind == "section_key":
    config.optim_b.momentum = 0.9
  if kind == "section_value":
    config.optim_b.learning_rate = -1.0
  workdir = str(tmp_path / "run")
  with pytest.raises(ConfigError, match=message):
    train(config, workdir, _bad(kind))
  assert not os.path.exists(workdir)
