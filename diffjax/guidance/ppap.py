"""Practical Plug-and-Play (PPAP): noise-range expert classifiers and their data-free
knowledge transfer.

"Towards Practical Plug-and-Play Diffusion Models" (Go et al., CVPR 2023, Sec. 4): one
guidance classifier cannot serve every noise level, so the time axis [0, 1] is split into
K intervals [b_k, b_{k+1}) and expert k, a noise-aware classifier
(`noisy_classifier`), is fine-tuned on x_t with t in its interval only; guidance at time t
asks the expert whose interval holds t (`expert_log_prob`). The experts need no labelled
data: each learns from a clean (off-the-shelf) classifier by knowledge transfer, the
clean classifier's softmax on a clean image x1 as the soft target for the expert on the
noised x_t (`transfer_loss`, cross-entropy to soft targets = KL up to the teacher's
entropy), and x1 comes from the diffusion model's own samples (data-free).

With K = 1 and one interval [0, 1] an expert is the single noise-aware classifier.
Guidance itself is the registered "classifier" method (`classifier.classifier_guidance`):
the experts' log-probability is its context.classifier_log_prob.
"""
import jax
import jax.numpy as jnp
import numpy as np

from diffjax.errors import ConfigError


def check_boundaries(boundaries):
  """Refuses interval boundaries b_0 = 0 < b_1 < ... < b_K = 1 that do not cover [0, 1]
  in increasing order."""
  b = np.asarray(boundaries, np.float64)
  if b.ndim != 1 or len(b) < 2 or b[0] != 0.0 or b[-1] != 1.0 or np.any(np.diff(b) <= 0):
    raise ConfigError(f"The experts' time boundaries must increase from 0 to 1 (covering "
                      f"[0, 1]); got {list(np.asarray(boundaries).tolist())}.")
  return b


def uniform_boundaries(num_experts):
  """K + 1 boundaries of K equal intervals of [0, 1]."""
  if not (isinstance(num_experts, int) and num_experts >= 1):
    raise ConfigError(f"The number of experts must be an integer >= 1; got {num_experts!r}.")
  return np.linspace(0.0, 1.0, num_experts + 1)


def expert_index(boundaries, t):
  """The expert whose interval [b_k, b_{k+1}) holds t (scalar or (B,)); t = 1 goes to
  the last one."""
  b = jnp.asarray(boundaries, jnp.float32)
  return jnp.clip(jnp.searchsorted(b, t, side="right") - 1, 0, len(boundaries) - 2)


def expert_logits(apply_fn, expert_params, boundaries):
  """(x (B, ...), t) -> (B, C) logits of the expert of t's interval, chosen per example:
  expert_params a list of K parameter sets of apply_fn(params, x, t) -> (B, C) logits (a
  sampler gives one t for the whole batch)."""
  boundaries = check_boundaries(boundaries)
  if len(expert_params) != len(boundaries) - 1:
    raise ConfigError(f"{len(expert_params)} experts for {len(boundaries) - 1} intervals.")

  def logits(x, t):
    t_b = jnp.broadcast_to(jnp.asarray(t, jnp.float32), x.shape[:1])
    index = expert_index(boundaries, t_b)
    every = jnp.stack([apply_fn(p, x, t_b) for p in expert_params])   # (K, B, C)
    return jnp.take_along_axis(every, index[None, :, None], 0)[0]
  return logits


def expert_log_prob(apply_fn, expert_params, boundaries, labels):
  """(x (B, ...), t) -> (B,) log p_t(y | x) of the labels (B,) under the expert of t's
  interval, for `classifier.classifier_guidance`."""
  logits = expert_logits(apply_fn, expert_params, boundaries)

  def log_prob(x, t):
    return jnp.take_along_axis(jax.nn.log_softmax(logits(x, t)), labels[:, None], -1)[:, 0]
  return log_prob


def transfer_loss(path, apply_fn, params, key, x0, x1, teacher_probs, t_range):
  """Knowledge transfer to one expert: cross-entropy of apply_fn(params, x_t, t) to the
  clean classifier's probabilities teacher_probs (B, C) of x1, with t ~ U(t_range) and
  x_t = path.sample(t, x0, x1): (mean loss, {"agreement"} with the teacher's argmax)."""
  low, high = t_range
  k_time, k_path = jax.random.split(key)
  t = jax.random.uniform(k_time, (x1.shape[0],), minval=low, maxval=high)
  logits = apply_fn(params, path.sample(k_path, t, x0, x1), t)
  loss = -jnp.sum(teacher_probs * jax.nn.log_softmax(logits), -1).mean()
  agreement = jnp.mean(jnp.argmax(logits, -1) == jnp.argmax(teacher_probs, -1))
  return loss, {"agreement": agreement}
