"""The classic-control pendulum (Gymnasium's Pendulum-v1) as pure JAX functions.

State (theta, theta_dot), theta = 0 upright; observation (cos theta, sin theta,
theta_dot); action: a torque clipped to [-2, 2]; dt = 0.05, g = 10, m = l = 1:

  theta_dot' = clip(theta_dot + (3 g / (2 l) sin theta + 3 / (m l^2) u) dt, -8, 8)
  theta'     = theta + theta_dot' dt
  reward     = -(normalise(theta)^2 + 0.1 theta_dot^2 + 0.001 u^2)

Episodes last 200 steps and never terminate (the time limit truncates them). These are
Gymnasium's equations (`tests/test_replay_data.py` checks them against the installed
`gymnasium` step for step); `collect_pendulum_buffer` gathers a behaviour policy's
transitions with this simulator or, with backend="gymnasium", with the real environment.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from diffjax.errors import ConfigError

MAX_TORQUE, MAX_SPEED, DT, GRAVITY = 2.0, 8.0, 0.05, 10.0
EPISODE_LENGTH = 200
OBSERVATION_DIM, ACTION_DIM = 3, 1
BACKENDS = ("builtin", "gymnasium")
NOISE_RANGE = (0.2, 2.0)   # The behaviour policy's torque-noise std, uniform per episode.


def angle_normalize(theta):
  """theta wrapped to [-pi, pi)."""
  return (theta + jnp.pi) % (2 * jnp.pi) - jnp.pi


def observe(state):
  """(..., 2) states (theta, theta_dot) -> (..., 3) observations."""
  theta, theta_dot = state[..., 0], state[..., 1]
  return jnp.stack([jnp.cos(theta), jnp.sin(theta), theta_dot], -1)


def pendulum_step(state, action):
  """One step: state (..., 2), action (..., 1) -> (next state (..., 2), reward (...,))."""
  theta, theta_dot = state[..., 0], state[..., 1]
  u = jnp.clip(action[..., 0], -MAX_TORQUE, MAX_TORQUE)
  reward = -(angle_normalize(theta) ** 2 + 0.1 * theta_dot ** 2 + 0.001 * u ** 2)
  new_dot = jnp.clip(theta_dot + (1.5 * GRAVITY * jnp.sin(theta) + 3.0 * u) * DT,
                     -MAX_SPEED, MAX_SPEED)
  return jnp.stack([theta + new_dot * DT, new_dot], -1), reward


def reset_states(key, num):
  """(num, 2) initial states: theta ~ U[-pi, pi], theta_dot ~ U[-1, 1] (Pendulum-v1)."""
  return jax.random.uniform(key, (num, 2), minval=-1.0, maxval=1.0) * jnp.array(
      [[jnp.pi, 1.0]])


def true_transition(observations, actions):
  """The simulator's (next observations (N, 3), rewards (N,)) from observations (N, 3)
  and actions (N, 1); the angle is read as atan2(sin, cos), so observations off the unit
  circle (e.g. generated ones) are projected onto it."""
  theta = jnp.arctan2(observations[:, 1], observations[:, 0])
  state = jnp.stack([theta, observations[:, 2]], -1)
  next_state, reward = pendulum_step(state, actions)
  return observe(next_state), reward


def swing_up_controller(observations, gain=0.6, kp=10.0, kd=2.0, capture=0.6):
  """A scripted torque (N, 1): energy pumping towards the upright energy, then PD
  stabilisation once |theta| < capture. With E = theta_dot^2 / 2 + 15 cos theta,
  dE/dt = 3 u theta_dot, so u = gain (E* - E) sign(theta_dot) pumps E to E* = 15."""
  cos, sin, theta_dot = observations[:, 0], observations[:, 1], observations[:, 2]
  theta = jnp.arctan2(sin, cos)
  energy = 0.5 * theta_dot ** 2 + 1.5 * GRAVITY * cos
  pump = gain * (1.5 * GRAVITY - energy) * jnp.sign(theta_dot + 1e-3)
  hold = -(kp * theta + kd * theta_dot)
  u = jnp.where(jnp.abs(theta) < capture, hold, pump)
  return jnp.clip(u, -MAX_TORQUE, MAX_TORQUE)[:, None]


def behaviour_actions(key, observations, noise_std):
  """The behaviour policy: the swing-up controller plus N(0, noise_std^2) torque noise
  (noise_std (N,) per episode, so the buffer mixes good and poor episodes), clipped."""
  noise = noise_std[:, None] * jax.random.normal(key, (observations.shape[0], 1))
  return jnp.clip(swing_up_controller(observations) + noise, -MAX_TORQUE, MAX_TORQUE)


def behaviour_policy(key, observations, noise_range=NOISE_RANGE):
  """(N, 1) fresh behaviour actions at N unrelated observations (N, 3): each row draws its
  own noise std ~ U[noise_range] (what an episode draws in `collect_pendulum_buffer`),
  then `behaviour_actions`. The rows' noise has the buffer's marginal distribution; the
  buffer's link between a state and its episode's noise level is not reproduced."""
  k_std, k_noise = jax.random.split(key)
  noise_std = jax.random.uniform(k_std, (observations.shape[0],), minval=noise_range[0],
                                 maxval=noise_range[1])
  return behaviour_actions(k_noise, observations, noise_std)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _builtin_episodes(key, num_episodes, length, noise_range):
  k_reset, k_noise, k_steps = jax.random.split(key, 3)
  state = reset_states(k_reset, num_episodes)
  noise_std = jax.random.uniform(k_noise, (num_episodes,), minval=noise_range[0],
                                 maxval=noise_range[1])

  def body(state, key):
    obs = observe(state)
    action = behaviour_actions(key, obs, noise_std)
    next_state, reward = pendulum_step(state, action)
    return next_state, (obs, action, reward, observe(next_state))

  _, (obs, act, rew, nxt) = jax.lax.scan(body, state, jax.random.split(k_steps, length))
  return obs, act, rew, nxt


def _gymnasium_episodes(seed, num_episodes, length, noise_range):
  # gymnasium is an optional extra (`pip install diffjax[rl]`): imported where used.
  import gymnasium  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  env = gymnasium.make("Pendulum-v1")
  columns = ([], [], [], [])
  for episode in range(num_episodes):
    obs, _ = env.reset(seed=seed * 100_003 + episode)
    noise_std = rng.uniform(*noise_range)
    for _ in range(length):
      action = np.asarray(swing_up_controller(jnp.asarray(obs[None])))[0]
      action = np.clip(action + noise_std * rng.normal(size=1), -MAX_TORQUE, MAX_TORQUE)
      next_obs, reward, _, _, _ = env.step(action.astype(np.float32))
      for column, value in zip(columns, (obs, action, reward, next_obs)):
        column.append(value)
      obs = next_obs
  env.close()
  obs, act, rew, nxt = (np.asarray(c, np.float32) for c in columns)
  return obs, act, rew, nxt


def collect_pendulum_buffer(num_episodes, seed=0, backend="builtin",
                            length=EPISODE_LENGTH, noise_range=NOISE_RANGE) -> dict:
  """A replay buffer of `num_episodes` episodes of the behaviour policy (module
  docstring) as `diffjax.data.replay` arrays: observations (N, 3), actions (N, 1),
  rewards (N,), next_observations (N, 3), terminals (N,) (all 0: Pendulum never
  terminates), N = num_episodes * length, episode-major. backend: "builtin" (this
  module's simulator, on device) or "gymnasium" (Pendulum-v1 itself, optional extra)."""
  if backend not in BACKENDS:
    raise ConfigError(f"replay.backend={backend!r} is not one of: {', '.join(BACKENDS)}.")
  if backend == "builtin":
    obs, act, rew, nxt = _builtin_episodes(jax.random.PRNGKey(seed), num_episodes, length,
                                           tuple(noise_range))
    # (length, episodes, ...) -> episode-major rows.
    obs, act, rew, nxt = (np.asarray(jnp.swapaxes(a, 0, 1)).reshape(-1, *a.shape[2:])
                          for a in (obs, act, rew, nxt))
  else:
    obs, act, rew, nxt = _gymnasium_episodes(seed, num_episodes, length, noise_range)
  return {"observations": obs.astype(np.float32), "actions": act.astype(np.float32),
          "rewards": rew.astype(np.float32), "next_observations": nxt.astype(np.float32),
          "terminals": np.zeros(len(rew), np.float32)}


@functools.partial(jax.jit, static_argnums=(0, 3))
def policy_returns(policy, params, key, num_episodes=10):
  """(num_episodes,) undiscounted returns of the deterministic policy(params, obs (N, 3))
  -> actions (N, 1) over full 200-step episodes of the simulator."""
  def body(state, _):
    action = policy(params, observe(state))
    next_state, reward = pendulum_step(state, action)
    return next_state, reward

  _, rewards = jax.lax.scan(body, reset_states(key, num_episodes), None,
                            length=EPISODE_LENGTH)
  return rewards.sum(0)
