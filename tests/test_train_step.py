"""The public train step and `fit`: against hand-written optax updates, the engine's call,
and several players updated in order."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from diffjax.data import get_sampler
from diffjax.models import build_model
from diffjax.objectives import build_objective
from diffjax.paths import build_path
from diffjax.train import (Player, Task, build_train_call, create_train_state, fit,
                           make_data_mesh, make_players_step, make_train_step)
from tests.helpers import assert_trees_equal

C_A, C_B = jnp.array([1.0, -2.0]), jnp.array([0.5, 3.0])


def _host(tree):
  return jax.tree.map(np.asarray, tree)


def _loss_a(params, key, shard, step, batch):
  """Player a pulls x to C_A, coupled to y; its noise comes from its own key."""
  del shard, step, batch
  x, y = params["a"], params["b"]
  noise = jax.random.normal(key, (2,))
  return 0.5 * jnp.sum((x - C_A) ** 2) + jnp.dot(x, y) ** 2 / 4 + 0.1 * jnp.dot(noise, x), {}


def _loss_b(params, key, shard, step, batch):
  """Player b pulls y to C_B and pushes x . y up (a game, not a shared objective)."""
  del shard, step, batch
  x, y = params["a"], params["b"]
  noise = jax.random.normal(key, (2,))
  return (0.5 * jnp.sum((y - C_B) ** 2) - jnp.tanh(jnp.dot(x, y))
          + 0.1 * jnp.dot(noise, y), {"coupling": jnp.dot(x, y)})


def _players():
  return (Player("a", _loss_a, optax.sgd(0.1, momentum=0.9), lambda p: {"a": True, "b": False}),
          Player("b", _loss_b, optax.adam(0.05), lambda p: {"a": False, "b": True}))


def _init(key):
  del key
  return {"a": jnp.array([0.3, 0.2]), "b": jnp.array([-0.1, 0.4])}


def test_two_players_follow_the_hand_computed_sequence_of_optax_updates():
  """Per step: a's optimizer updates x from d loss_a / dx at (x, y), key fold_in(k, 0);
  then b's updates y from d loss_b / dy at (x_new, y), key fold_in(k, 1). Three steps of
  the public step equal this sequence; updating b first gives other parameters."""
  players = _players()
  state = create_train_state(_init, players, jax.random.PRNGKey(0))
  assert set(state.opt_state) == {"a", "b"}
  # Each optimizer holds state for its own parameters only.
  assert jax.tree.structure(state.opt_state["b"][0].mu) == jax.tree.structure(
      {"a": None, "b": 0})
  step = jax.jit(make_players_step(players, ema_decay=0.9))
  opt_a, opt_b = optax.sgd(0.1, momentum=0.9), optax.adam(0.05)
  x, y = _init(None)["a"], _init(None)["b"]
  sa, sb = opt_a.init(x), opt_b.init(y)
  ema = {"a": x, "b": y}
  for s in range(3):
    key = jax.random.fold_in(state.key, state.step)
    state, metrics = step(state, None, key)
    ga = jax.grad(lambda x_: _loss_a({"a": x_, "b": y}, jax.random.fold_in(key, 0), None,
                                     s, None)[0])(x)
    ua, sa = opt_a.update(ga, sa, x)
    x = x + ua
    gb = jax.grad(lambda y_: _loss_b({"a": x, "b": y_}, jax.random.fold_in(key, 1), None,
                                     s, None)[0])(y)
    ub, sb = opt_b.update(gb, sb, y)
    y = y + ub
    rate = min(0.9, (1 + s) / (10 + s))
    ema = {"a": rate * ema["a"] + (1 - rate) * x, "b": rate * ema["b"] + (1 - rate) * y}
    np.testing.assert_allclose(state.params["a"], x, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(state.params["b"], y, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(metrics["b/coupling"], jnp.dot(x, state.params["b"] - ub),
                               rtol=1e-5)
  np.testing.assert_allclose(state.ema_params["b"], ema["b"], rtol=1e-6)
  np.testing.assert_allclose(metrics["loss"], metrics["a/loss"] + metrics["b/loss"])
  assert int(state.step) == 3 and int(state.opt_state["b"][0].count) == 3
  swapped = create_train_state(_init, players[::-1], jax.random.PRNGKey(0))
  swapped_step = jax.jit(make_players_step(players[::-1], ema_decay=0.9))
  for _ in range(3):
    swapped, _ = swapped_step(swapped, None, jax.random.fold_in(swapped.key, swapped.step))
  assert not np.allclose(swapped.params["a"], state.params["a"], rtol=1e-4)


def _regression_loss(params, key, shard, step, batch):
  del key, step
  residual = shard(batch["x"]) @ params["w"] - shard(batch["y"])
  return jnp.mean(residual ** 2), {}


def _regression_batches(num_steps, batch_size=16):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(num_steps, batch_size, 3)).astype(np.float32)
  return {"x": x, "y": x @ np.array([1.0, -1.0, 2.0], np.float32)}


def test_the_step_is_an_optax_update_and_the_engine_and_fit_scan_it():
  """One optimizer: the step is `optimizer.update` + `apply_updates` on the loss's
  gradient; the engine's compiled call and `fit` (fed the same batches) give the same
  parameters bit for bit."""
  optimizer = optax.adamw(0.05, weight_decay=0.01)
  init = lambda key: {"w": jax.random.normal(key, (3,))}
  batches = _regression_batches(12)
  state = create_train_state(init, optimizer, jax.random.PRNGKey(1))
  step = make_train_step(_regression_loss, optimizer, ema_decay=0.99)
  expected_w, opt_state = state.params, state.opt_state
  for s in range(2):
    batch = jax.tree.map(lambda b: b[s], batches)
    state, metrics = step(state, batch, jax.random.fold_in(state.key, state.step))
    grads = jax.grad(lambda p: _regression_loss(p, None, lambda v: v, s, batch)[0])(expected_w)
    updates, opt_state = optimizer.update(grads, opt_state, expected_w)
    expected_w = optax.apply_updates(expected_w, updates)
    np.testing.assert_allclose(metrics["grad_norm"], optax.tree.norm(grads), rtol=1e-6)
  np.testing.assert_allclose(state.params["w"], expected_w["w"], rtol=1e-6)

  task = Task(init_params=init, loss=_regression_loss, evaluate=None, sample=None,
              batch_size=16, data=lambda start: None)
  call = build_train_call(task, optimizer, 0.99, make_data_mesh(jax.devices()[:1]))
  engine = jax.jit(lambda k: create_train_state(init, optimizer, k))(jax.random.PRNGKey(1))
  engine, _ = call(engine, 12, jax.tree.map(jnp.asarray, batches))
  loss = lambda params, batch, key: _regression_loss(params, key, lambda v: v, 0, batch)[0]
  fitted = fit(loss, optimizer, init, num_steps=12, key=jax.random.PRNGKey(1),
               data=iter([jax.tree.map(lambda b, i=i: b[i], batches) for i in range(12)]),
               ema_decay=0.99, steps_per_call=5)
  assert_trees_equal(_host(engine.params), _host(fitted.params))
  assert_trees_equal(_host(engine.ema_params), _host(fitted.ema_params))


def test_fit_learns_from_a_sampler_and_prints_progress(capsys):
  """fit with an on-device sampler (a line y = 2 x + 1 with noise) and a frozen parameter."""
  def sample(key, batch_size):
    kx, kn = jax.random.split(key)
    x = jax.random.normal(kx, (batch_size,))
    return {"x": x, "y": 2.0 * x + 1.0 + 0.01 * jax.random.normal(kn, (batch_size,))}

  def loss(params, batch, key):
    del key
    return jnp.mean((params["a"] * batch["x"] + params["b"] - batch["y"]) ** 2)

  params = {"a": jnp.zeros(()), "b": jnp.zeros(()), "frozen": jnp.ones(())}
  state = fit(loss, optax.adam(0.05), params, data=sample, batch_size=64, num_steps=300,
              key=jax.random.PRNGKey(0), progress=True,
              trainable=lambda p: {"a": True, "b": True, "frozen": False})
  assert abs(float(state.params["a"]) - 2.0) < 0.05
  assert abs(float(state.params["b"]) - 1.0) < 0.05
  assert float(state.params["frozen"]) == 1.0 and int(state.step) == 300
  assert float(params["a"]) == 0.0   # The caller's parameters are not donated.
  out = capsys.readouterr().out
  assert "300/300 | loss" in out and "steps/s" in out and out.endswith("\n")


def test_fit_refuses_an_incomplete_call():
  with pytest.raises(ValueError, match="needs batch_size"):
    fit(lambda p, b, k: 0.0, optax.sgd(0.1), {"w": jnp.zeros(())}, num_steps=1,
        key=jax.random.PRNGKey(0), data=lambda key, n: None)
  with pytest.raises(ValueError, match="either loss or objective"):
    fit(optimizer=optax.sgd(0.1), params={}, num_steps=1, key=jax.random.PRNGKey(0))


def test_fit_an_objective_on_a_model():
  """fit(objective=..., model=...): flow matching from N(0, I) to the moons; the loss on a
  held-out batch falls well below that of the initial network."""
  model = build_model("mlp", (2,), width=32, depth=2, time_embedding="concat")
  objective = build_objective("flow_matching", build_path("linear"))
  moons = get_sampler("moons")
  state = fit(objective=objective, model=model, optimizer=optax.adam(3e-3), data=moons,
              batch_size=128, num_steps=200, key=jax.random.PRNGKey(0))
  key = jax.random.PRNGKey(9)
  x1 = moons(key, 512)
  x0 = jax.random.normal(jax.random.fold_in(key, 1), x1.shape)
  held_out = lambda params: float(objective.loss(model.apply, params, key, x0, x1)[0])
  assert held_out(state.params) < 0.7 * held_out(model.init(jax.random.PRNGKey(0)))
