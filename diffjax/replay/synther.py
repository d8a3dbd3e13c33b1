"""Synthetic Experience Replay: a diffusion model of transitions upsamples a small buffer.

"Synthetic Experience Replay" (Lu, Ball, Teh & Parker-Holder, NeurIPS 2023, Sec. 3)
models a transition as one vector [s, a, r, s', done] (`diffjax.data.replay`),
standardised per dimension with the terminal flag left as it is (Sec. 3.1), trains a
residual-MLP denoiser on it with the EDM objective, and draws many more transitions than
the buffer holds; an offline learner is then trained on the real and synthetic
transitions together. This module holds the data side of that loop (the model and its
training are a `diffjax.pipeline` with path and objective "edm" and model
"residual_mlp"):

  normaliser = transition_normaliser(buffer)                # Standardizer over D dims
  x = normaliser.normalise(flatten_transitions(buffer))     # (N, D) training vectors
  synthetic = synthetic_buffer(generated, normaliser, transition_dims(buffer))
  errors = dynamics_error(synthetic, pendulum.true_transition)

`gaussian_buffer` draws from a Gaussian fitted to the same vectors, the baseline that a
generative model of transitions has to beat on `dynamics_error`. `coverage_gap` asks
whether synthetic transitions reach state-action regions the small buffer lacks: the
mean distance from a reference buffer's (s, a) to the nearest (s, a) of another.
`relabel` is a probe, not part of SynthER: it keeps each synthetic row's state s and
recomputes (r, s') with the true simulator, for the model's own action or for a fresh
action of the data's behaviour policy (`RELABELLINGS`), to tell whether a learner is hurt
by the synthetic states, the synthetic actions or their dynamics.
"""
from typing import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from diffjax.data.normalisation import Standardizer, fit_standardizer
from diffjax.data.replay import TRANSITION_KEYS, flatten_transitions, split_transitions
from diffjax.registry import Registry

# name -> actions(key, buffer, behaviour) -> (N, A): the action `relabel` gives each row;
# behaviour(key, observations (N, S)) -> (N, A) draws the data's behaviour policy.
RELABELLINGS = Registry("synthetic-row relabelling")
RELABELLINGS.register("behaviour", lambda key, buffer, behaviour: behaviour(
    key, jnp.asarray(buffer["observations"])))
RELABELLINGS.register("model", lambda key, buffer, behaviour: buffer["actions"])


def transition_normaliser(buffer) -> Standardizer:
  """The per-dimension standardisation of the buffer's flattened transitions (D,), the
  terminal flag (the last dimension) left unscaled (SynthER, Sec. 3.1)."""
  x = flatten_transitions(buffer)
  return fit_standardizer(x, skip=(x.shape[1] - 1,))


def synthetic_buffer(generated, normaliser: Standardizer, dims: Mapping[str, int]) -> dict:
  """Generated standardised vectors (N, D) -> a buffer in environment units; the
  terminal flag is rounded to {0, 1} (the model's output for it is continuous)."""
  x = normaliser.denormalise(np.asarray(generated, np.float32))
  buffer = split_transitions(x, dims)
  buffer["terminals"] = (buffer["terminals"] > 0.5).astype(np.float32)
  return buffer


def gaussian_buffer(buffer, key, num: int) -> dict:
  """`num` transitions from the Gaussian (full covariance) fitted to the buffer's
  flattened transitions, terminals rounded as in `synthetic_buffer`."""
  x = flatten_transitions(buffer).astype(np.float64)
  mean, cov = x.mean(0), np.cov(x, rowvar=False)
  chol = np.linalg.cholesky(cov + 1e-9 * np.eye(len(mean)))
  z = np.asarray(jax.random.normal(key, (num, len(mean))), np.float64)
  out = split_transitions((mean + z @ chol.T).astype(np.float32),
                          {k: (1 if buffer[k].ndim == 1 else buffer[k].shape[1])
                           for k in TRANSITION_KEYS})
  out["terminals"] = (out["terminals"] > 0.5).astype(np.float32)
  return out


def dynamics_error(buffer, transition: Callable) -> dict:
  """How far the buffer's (s', r) are from the true dynamics at its (s, a).

  transition(observations (N, S), actions (N, A)) -> (next observations (N, S), rewards
  (N,)) is the simulator. Returns {"next_observation_mse": mean over rows and dimensions
  of (s' - s'_true)^2, "reward_mse": mean of (r - r_true)^2}; a buffer collected from the
  simulator itself scores 0 up to float rounding."""
  next_true, reward_true = transition(jnp.asarray(buffer["observations"]),
                                      jnp.asarray(buffer["actions"]))
  return {"next_observation_mse": float(jnp.mean(
              (jnp.asarray(buffer["next_observations"]) - next_true) ** 2)),
          "reward_mse": float(jnp.mean((jnp.asarray(buffer["rewards"]) - reward_true) ** 2))}



def coverage_gap(reference, buffer, chunk: int = 256) -> float:
  """Mean over the reference's rows of the Euclidean distance from its (s, a) to the
  nearest (s, a) row of `buffer`, both scaled by the reference's per-dimension standard
  deviation (a constant dimension keeps scale 1). 0 when every reference pair is in the
  buffer; smaller when the buffer covers more of the reference's state-action region."""
  def pairs(b):
    return np.concatenate([np.asarray(b["observations"], np.float64),
                           np.asarray(b["actions"], np.float64)], 1)
  ref, other = pairs(reference), pairs(buffer)
  scale = ref.std(0)
  scale = np.where(scale > 0, scale, 1.0)
  ref, other = ref / scale, other / scale
  nearest = [np.sqrt(np.maximum(((block[:, None, :] - other[None]) ** 2).sum(-1)
                                .min(1), 0.0))
             for block in np.array_split(ref, max(1, -(-len(ref) // chunk)))]
  return float(np.concatenate(nearest).mean())


def action_deviation(buffer, policy: Callable) -> float:
  """Mean over the buffer's rows of |a - policy(s)|^2 (squared Euclidean norm over the
  action's A dimensions). policy(observations (N, S)) -> actions (N, A) is
  deterministic. For actions a = clip(policy(s) + noise) of a behaviour policy this is
  the second moment of the clipped noise (a Gaussian's censored at the action bounds,
  `tests/test_datatypes_replay.py`); for generated transitions it measures how far
  their actions stray from that policy at their own states."""
  actions = jnp.asarray(buffer["actions"])
  target = policy(jnp.asarray(buffer["observations"]))
  return float(jnp.mean(jnp.sum((actions - target) ** 2, axis=-1)))


def relabel(buffer, transition: Callable, actions=None) -> dict:
  """The buffer's rows made consistent with the simulator at their own states.

  actions (N, A) replace the buffer's actions (None keeps them); then (s', r) =
  transition(s, a) (the signature of `dynamics_error`), so the result's dynamics error is
  0. Observations and terminals are kept as they are: for generated rows, s is the
  model's state, only (a, r, s') or (r, s') are the simulator's."""
  actions = np.asarray(buffer["actions"] if actions is None else actions, np.float32)
  if actions.shape != np.shape(buffer["actions"]):
    raise ValueError(f"relabel: actions of shape {actions.shape}; the buffer's are "
                     f"{np.shape(buffer['actions'])}.")
  next_observations, rewards = transition(jnp.asarray(buffer["observations"]),
                                          jnp.asarray(actions))
  return {**buffer, "actions": actions,
          "next_observations": np.asarray(next_observations, np.float32),
          "rewards": np.asarray(rewards, np.float32)}
