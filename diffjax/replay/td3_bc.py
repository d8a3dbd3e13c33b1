"""TD3+BC, a small offline actor-critic, to measure what a replay buffer is worth.

"A Minimalist Approach to Offline Reinforcement Learning" (Fujimoto & Gu, 2021, eq. 3):
TD3's twin critics with target policy smoothing, and an actor that maximises
lambda Q1(s, pi(s)) - (pi(s) - a)^2 with lambda = alpha / mean |Q1(s, pi(s))|; states
are standardised by the training data's statistics, actions scaled to [-1, 1]. The critic
and the actor are two players of one train step (`diffjax.train.make_players_step`,
critic first); the target networks follow the parameters by Polyak averaging (rate tau)
after every step. Unlike the paper the actor is updated every step (no policy delay).

  learner = td3_bc_learner(obs_dim=3, act_dim=1, max_action=2.0)
  params = learner.train(key, real, len(real), synthetic, len(synthetic), 0.5, 5000)
  actions = learner.policy(params, observations)                     # (B, 3) -> (B, 1)

`train` is compiled once per shape of its data and number of steps: the data, the mixing
ratio and the key are arguments, so learners on several buffers of one size share it.
"""
import functools
from typing import Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from diffjax.train.state import create_train_state
from diffjax.train.step import make_players_step
from diffjax.train.task import Player


class _MLP(nn.Module):
  features: tuple

  @nn.compact
  def __call__(self, x):
    for width in self.features[:-1]:
      x = nn.relu(nn.Dense(width)(x))
    return nn.Dense(self.features[-1])(x)


class Learner(NamedTuple):
  """train(key, real (N, D), num_real, synthetic (M, D), num_synthetic, real_fraction,
  num_steps) -> params: rows [s, a, r, s', done] in environment units, of which the first
  num_real and num_synthetic count (the rest pads data sets of several sizes to one
  compiled shape); each batch row is real with probability real_fraction (SynthER's
  mixing ratio); observations are standardised by the moments of that mixture. policy(params, observations
  (B, S)) -> actions (B, A) in environment units."""
  train: Callable
  policy: Callable


def polyak(targets, params, tau):
  """Target networks moved a fraction tau towards the parameters."""
  return jax.tree.map(lambda t, p: (1.0 - tau) * t + tau * p, targets, params)


def td3_bc_learner(obs_dim: int, act_dim: int, max_action: float, *, width=256,
                   batch_size=256, discount=0.99, alpha=2.5, policy_noise=0.2,
                   noise_clip=0.5, learning_rate=3e-4, tau=0.005) -> Learner:
  """TD3+BC (module docstring) for observations of obs_dim and actions of act_dim in
  [-max_action, max_action]; two hidden layers of `width` in actor and critics."""
  actor, critic = _MLP((width, width, act_dim)), _MLP((width, width, 1))

  def init(key):
    k_actor, k_q1, k_q2 = jax.random.split(key, 3)
    sa = jnp.zeros((1, obs_dim + act_dim))
    return {"actor": actor.init(k_actor, jnp.zeros((1, obs_dim)))["params"],
            "critic": {"q1": critic.init(k_q1, sa)["params"],
                       "q2": critic.init(k_q2, sa)["params"]}}

  def act(params, s):
    return jnp.tanh(actor.apply({"params": params["actor"]}, s))

  def q(params, name, s, a):
    return critic.apply({"params": params["critic"][name]},
                        jnp.concatenate([s, a], -1))[:, 0]

  def batch(key, data):
    real, num_real, synthetic, num_synthetic, real_fraction, mean, std = data
    k_pick, k_real, k_synth = jax.random.split(key, 3)
    from_real = jax.random.uniform(k_pick, (batch_size, 1)) < real_fraction
    x = jnp.where(from_real, real[jax.random.randint(k_real, (batch_size,), 0, num_real)],
                  synthetic[jax.random.randint(k_synth, (batch_size,), 0, num_synthetic)])
    s = (x[:, :obs_dim] - mean[None]) / std[None]
    a = x[:, obs_dim:obs_dim + act_dim] / max_action
    r = x[:, obs_dim + act_dim]
    s2 = (x[:, obs_dim + act_dim + 1:2 * obs_dim + act_dim + 1] - mean[None]) / std[None]
    return s, a, r, s2, x[:, -1]

  def critic_loss(params, key, shard, step, inputs):
    del shard, step
    targets, data = inputs
    k_batch, k_noise = jax.random.split(key)
    s, a, r, s2, done = batch(k_batch, data)
    noise = jnp.clip(policy_noise * jax.random.normal(k_noise, a.shape), -noise_clip,
                     noise_clip)
    a2 = jnp.clip(act(targets, s2) + noise, -1.0, 1.0)
    target_q = jnp.minimum(q(targets, "q1", s2, a2), q(targets, "q2", s2, a2))
    y = jax.lax.stop_gradient(r + discount * (1.0 - done) * target_q)
    loss = (jnp.mean((q(params, "q1", s, a) - y) ** 2) +
            jnp.mean((q(params, "q2", s, a) - y) ** 2))
    return loss, {"q": jnp.mean(y)}

  def actor_loss(params, key, shard, step, inputs):
    del shard, step
    s, a, _, _, _ = batch(key, inputs[1])
    pi = act(params, s)
    value = q(params, "q1", s, pi)
    lam = alpha / jax.lax.stop_gradient(jnp.mean(jnp.abs(value)) + 1e-6)
    bc = jnp.mean((pi - a) ** 2)
    return -lam * jnp.mean(value) + bc, {"bc": bc}

  optimizer = optax.adam(learning_rate)
  players = (Player("critic", critic_loss, optimizer,
                    lambda p: {"actor": False, "critic": True}),
             Player("actor", actor_loss, optimizer,
                    lambda p: {"actor": True, "critic": False}))
  step = make_players_step(players)

  @functools.partial(jax.jit, static_argnums=6)
  def train(key, real, num_real, synthetic, num_synthetic, real_fraction, num_steps):
    weights = jnp.concatenate([
        (jnp.arange(real.shape[0]) < num_real) * real_fraction / num_real,
        (jnp.arange(synthetic.shape[0]) < num_synthetic) * (1.0 - real_fraction) /
        num_synthetic])
    observations = jnp.concatenate([real[:, :obs_dim], synthetic[:, :obs_dim]])
    mean = weights @ observations
    std = jnp.sqrt(jnp.maximum(weights @ (observations - mean[None]) ** 2, 1e-6))
    data = (real, num_real, synthetic, num_synthetic,
            jnp.asarray(real_fraction, jnp.float32), mean, std)
    state = create_train_state(init, players, key)

    def body(carry, _):
      state, targets = carry
      state, _ = step(state, (targets, data), jax.random.fold_in(state.key, state.step))
      return (state, polyak(targets, state.params, tau)), None

    state = jax.lax.scan(body, (state, state.params), None, length=num_steps)[0][0]
    return {**state.params, "obs_mean": mean, "obs_std": std}

  def policy(params, observations):
    mean, std = params["obs_mean"][None], params["obs_std"][None]
    return max_action * act(params, (observations - mean) / std)

  return Learner(train, policy)
