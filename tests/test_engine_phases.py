"""Phases in the training engine: scheduling, freezing, prepare, compilation, resumption."""
import collections
import contextlib
import logging
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from diffjax.errors import ConfigError
from diffjax.train import (Phase, Task, build_optimizer, build_train_call, create_train_state,
                           make_data_mesh, train)
from diffjax.train import loop
from diffjax.train.defaults import engine_config
from tests.helpers import assert_trees_equal, regression_config, regression_task

GROUPS = ("a", "b")


def _init(key):
  ka, kc, kb = jax.random.split(key, 3)
  return {"a": {"w": jax.random.normal(ka, (2,)), "c": jax.random.normal(kc, ())},
          "b": jax.random.normal(kb, (2,))}


def _group(params, name):
  return params["a"]["w"] + params["a"]["c"] if name == "a" else params["b"]


def _two_group_task(traces):
  """Two parameter groups fitted in turn: phase "a*" trains group a towards a target that
  its prepare draws from the frozen group b (and the phase's key), and vice versa. Each
  loss also depends on the frozen group, so that freezing is not free. `traces` counts
  Python traces of each function."""
  def make(fit, other):
    def loss(params, key, shard, step, batch, context):
      del shard, step
      assert batch is None
      traces[f"loss_{fit}"] += 1
      x = jax.random.normal(key, (8, 2))
      residual = (_group(params, fit) + 0.5 * _group(params, other) - context)[None] + 0.1 * x
      return jnp.mean(residual ** 2), {}

    def prepare(params, key):
      traces[f"prepare_{fit}"] += 1
      return 2.0 * jnp.tanh(_group(params, other)) + 0.1 * jax.random.normal(key, (2,))

    def trainable(params):
      del params
      return {"a": fit == "a", "b": fit == "b"}   # A prefix of the parameters' structure.
    return loss, trainable, prepare

  fns = {name: make(name, other) for name, other in (("a", "b"), ("b", "a"))}
  phases = [Phase(f"{name}{i}", 8, *fns[name]) for i in (1, 2) for name in GROUPS]
  return Task(init_params=_init, loss=None, evaluate=lambda params, key: ({}, {}),
              sample=None, batch_size=8, phases=phases)


def _config(**train_overrides):
  config = engine_config()
  config.train.update(steps_per_call=4, log_every=4, eval_every=0, checkpoint_every=0,
                      batch_size=8)
  config.train.update(**train_overrides)
  config.optim.update(name="adamw", learning_rate=0.05, weight_decay=0.1, warmup_steps=2,
                      grad_clip=1.0)
  return config


def _host(tree):
  return jax.tree.map(np.asarray, tree)


def test_stopped_and_resumed_inside_phases_equals_one_run(tmp_path, monkeypatch, caplog):
  """4 phases of 8 steps (the default train.num_steps = 10000 stops at their end, step 32).
  A run stopped at step 12 by train.num_steps (inside phase 2, whose prepare reads the
  group phase 1 trained, and runs again on resumption) and resumed ends bit for bit
  where the uninterrupted run does, optimizer state and EMA included (the cosine
  schedule spans the phases, not train.num_steps). Two (loss,
  trainable) pairs and one chunk length: each loss and each prepare is traced once."""
  scalars = []
  original = loop.RunWriter.scalars
  def spy(self, step, values):
    scalars.append((step, dict(values)))
    return original(self, step, values)
  monkeypatch.setattr(loop.RunWriter, "scalars", spy)
  caplog.set_level(logging.INFO, logger="absl")

  traces = collections.Counter()
  full = train(_config(), str(tmp_path / "full"), _two_group_task(traces))
  assert int(full.step) == 32
  assert traces == {"loss_a": 1, "loss_b": 1, "prepare_a": 1, "prepare_b": 1}
  phase_at = {step: v["train/phase"] for step, v in scalars if "train/phase" in v}
  assert phase_at == {4: 0, 8: 0, 12: 1, 16: 1, 20: 2, 24: 2, 28: 3, 32: 3}
  assert "Phase 3/4 'a2': steps 16 to 24." in caplog.text

  staged = str(tmp_path / "staged")
  state = train(_config(num_steps=12), staged, _two_group_task(traces))
  assert int(state.step) == 12
  resumed = train(_config(), staged, _two_group_task(traces))
  assert "Phase 2/4 'b1': steps 8 to 16, resuming at step 12." in caplog.text
  assert int(resumed.step) == 32
  for field in ("params", "ema_params", "opt_state"):
    assert_trees_equal(_host(getattr(full, field)), _host(getattr(resumed, field)))
  assert sorted(os.listdir(os.path.join(staged, "checkpoints"))) == ["12", "32"]


def test_frozen_parameters_and_their_adam_moments_stay_bitwise_unchanged():
  """Train group b for 3 steps, then group a for 3 steps (AdamW with weight decay and
  gradient clipping): in each phase the frozen group's values and Adam moments are
  bitwise those it had before, although its gradient is not zero; the trained group
  moves. Adam's step count runs on."""
  traces = collections.Counter()
  task = _two_group_task(traces)
  config = _config()
  optimizer = build_optimizer(config.optim, 32)
  mesh = make_data_mesh(jax.devices()[:1])
  state = jax.jit(lambda key: create_train_state(task.init_params, optimizer, key))(
      jax.random.PRNGKey(0))   # jit: params and EMA in separate buffers (both donated).
  phase_a, phase_b = task.phases[0], task.phases[1]

  key = jax.random.PRNGKey(1)
  grads, _ = jax.grad(phase_a.loss, has_aux=True)(state.params, key, None, 0, None,
                                 phase_a.prepare(state.params, key))
  assert float(jnp.abs(grads["b"]).min()) > 0     # Without the mask, b would move.

  def moments(state):
    return {name: _host(optax.tree_utils.tree_get(state.opt_state, name))
            for name in ("mu", "nu")}

  def run(state, phase):
    call = build_train_call(task, optimizer, 0.999, mesh, phase=phase)
    before = _host(state)
    after = call(state, 3, None, phase.prepare(state.params, key))[0]
    return before, after

  before, state = run(state, phase_b)
  assert_trees_equal(before.params["a"], _host(state.params["a"]))
  assert_trees_equal([m["a"] for m in moments(before).values()],
                     [m["a"] for m in moments(state).values()])
  assert np.all(moments(before)["mu"]["a"]["w"] == 0)
  assert not np.any(before.params["b"] == np.asarray(state.params["b"]))
  before, state = run(state, phase_a)
  assert_trees_equal(before.params["b"], _host(state.params["b"]))
  assert_trees_equal([m["b"] for m in moments(before).values()],
                     [m["b"] for m in moments(state).values()])
  assert np.all(moments(state)["mu"]["b"] != 0)
  assert not np.any(before.params["a"]["w"] == np.asarray(state.params["a"]["w"]))
  counts = optax.tree_utils.tree_get_all_with_path(state.opt_state, "count")
  assert [int(count) for _, count in counts] == [6, 6]    # Adam's and the schedule's.


def _phased_regression_task():
  """Least squares y = x . w + c on host-fed batches, w and c fitted in alternating
  phases that share nothing but the data."""
  w_true = np.arange(1.0, 5.0, dtype=np.float32)

  def data(start_step):
    step = start_step
    while True:
      rng = np.random.default_rng(step)
      x = rng.normal(size=(32, 4)).astype(np.float32)
      yield {"x": x, "y": x @ w_true + 3.0 + 0.1 * rng.normal(size=32).astype(np.float32)}
      step += 1

  def loss(params, key, shard, step, batch, context):
    del key, shard, step, context
    residual = batch["x"] @ params["w"] + params["c"] - batch["y"]
    return jnp.mean(residual ** 2), {}

  def only(name):
    return lambda params: {k: k == name for k in params}

  phases = [Phase(f"{name}{i}", 10, loss, only(name)) for i in range(2) for name in "wc"]
  return Task(init_params=lambda key: {"w": jnp.zeros(4), "c": jnp.zeros(())}, loss=None,
              evaluate=lambda params, key: ({}, {}), sample=None, batch_size=32,
              data=data, phases=phases)


def test_phases_with_host_fed_data_and_gradient_accumulation(tmp_path):
  """Gradient accumulation over 4 micro-batches of the host-fed batch equals the full
  batch in every phase (float32 summation order: rtol 1e-5)."""
  one = train(regression_config(num_steps=100), str(tmp_path / "one"),
              _phased_regression_task())
  four = train(regression_config(num_steps=100, grad_accum_steps=4), str(tmp_path / "four"),
               _phased_regression_task())
  assert int(one.step) == int(four.step) == 40
  for name in ("w", "c"):
    np.testing.assert_allclose(np.asarray(four.params[name]), np.asarray(one.params[name]),
                               rtol=1e-5, atol=1e-6)
  assert float(one.params["c"]) > 1.0    # c moved only in its phases, towards 3.


def _bad(kind):
  traces = collections.Counter()
  task = _two_group_task(traces)
  first = task.phases[0]
  changes = {
      "steps": dict(num_steps=0),
      "array_mask": dict(trainable=lambda p: {"a": jnp.array(True), "b": False}),
      "structure": dict(trainable=lambda p: {"x": True}),
      "nothing": dict(trainable=lambda p: False),
      "reads_trained": dict(prepare=lambda p, key: p["a"]["w"] * 2.0),
      "reads_trained_shape": dict(prepare=lambda p, key: jnp.zeros(p["a"]["c"].shape)),
  }
  if kind == "loss_and_phases":
    return Task(**{**task.__dict__, "loss": first.loss})
  phase = Phase(**{**first.__dict__, **changes[kind]})
  return Task(**{**task.__dict__, "phases": [phase, *task.phases[1:]]})


@pytest.mark.parametrize("kind, message", [
    ("steps", r"Phase 0 \('a1'\): num_steps=0 must be a positive integer"),
    ("array_mask", r"'a1': trainable\(params\) gave ArrayImpl at \['a'\]; .*Python bools"),
    ("structure", r"'a1': trainable\(params\) must give the parameters' structure"),
    ("nothing", r"Phase 'a1' trains no parameter"),
    ("reads_trained", r"phase 'a1' reads the parameter \['a'\]\['w'\], which this phase "
                      r"trains"),
    ("reads_trained_shape", r"reads the parameter \['a'\]\['c'\]"),
    ("loss_and_phases", r"set Task.loss to None"),
])
def test_malformed_phases_are_refused_before_the_workdir_is_touched(tmp_path, kind, message):
  workdir = str(tmp_path / "run")
  with pytest.raises(ConfigError, match=message):
    train(_config(), workdir, _bad(kind))
  assert not os.path.exists(workdir)


@contextlib.contextmanager
def _train_call_compiles():
  """Counts the compilations of the engine's train call (jax.log_compiles' log lines,
  written whenever a call is lowered, whether or not the persistent cache then has it)."""
  compiles = []

  class Handler(logging.Handler):
    def emit(self, record):
      if record.getMessage().startswith("Compiling jit(train_call)"):
        compiles.append(record.getMessage())

  handler = Handler()
  logging.getLogger("jax").addHandler(handler)
  try:
    with jax.log_compiles(True):
      yield compiles
  finally:
    logging.getLogger("jax").removeHandler(handler)


def test_each_train_call_compiles_once(tmp_path, caplog):
  """Phases a1, b1, a2, b2 share two train calls, each compiled once, although a1's
  prepare reads no parameter (its context would lie on one device, b2's replicated); a
  plain run compiles its one call once. A phase-defined run says nothing of
  train.num_steps."""
  traces = collections.Counter()
  task = _two_group_task(traces)
  first = task.phases[0]
  keyed = Phase(first.name, first.num_steps, first.loss, first.trainable,
                lambda params, key: jax.random.normal(key, (2,)))
  task = Task(**{**task.__dict__, "phases": [keyed, *task.phases[1:]]})
  caplog.set_level(logging.INFO, logger="absl")
  with _train_call_compiles() as compiles:
    train(_config(), str(tmp_path / "phased"), task)
  assert len(compiles) == 2, compiles
  assert "is not reached" not in caplog.text
  with _train_call_compiles() as compiles:
    train(regression_config(), str(tmp_path / "plain"), regression_task())
  assert len(compiles) == 1, compiles
