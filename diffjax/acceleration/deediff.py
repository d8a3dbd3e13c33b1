"""DeeDiff: per-layer exits of a transformer (the DiT, the token transformer), each with an
uncertainty estimate, and sampling that stops a network call at the first layer confident
enough.

"DeeDiff: Dynamic Uncertainty-Aware Early Exiting for Accelerating Diffusion Model
Generation" (Tang et al. 2023). After block i (i = 1 .. L - 1) of an L-block DiT an exit
decodes the tokens h_i with its own copy of the network's output layer (adaLN modulation
and linear unpatchify, initialised from the final layer), g_i(h_i), and an uncertainty
estimation module (UEM, timestep-aware: it reads the conditioning vector c, which holds the
time embedding) predicts that exit's error,

  u_i = mean over tokens n of sigmoid(w_i . [h_i,n, c] + b_i)            in (0, 1).

Training (the paper's losses, per sample, averaged over the batch; y the regression target
of the network, here the flow-matching velocity):

  u^_i    = tanh(mean |g_i(h_i) - y|)            the exit's pseudo uncertainty (its label)
  L_u     = sum_i (u_i - u^_i)^2                  the UEMs regress their exit's error
  L_UAL   = sum_i (1 - u_i) mean (g_i(h_i) - y)^2 the uncertainty-aware layer-wise loss
  L       = mean (g_L(h_L) - y)^2 + L_u + L_UAL   (L_simple on the full network's output)

u^_i is a label (no gradient flows into it), and so is u_i inside L_UAL: the weights say
how much an exit is trusted, and a gradient through them would reward a UEM for claiming a
high uncertainty. The backbone may be frozen (only exits and UEMs train; then L_simple is a
constant and the full network stays the trained one).

Sampling: a call exits after the first block i whose u_i < threshold, returning g_i(h_i);
otherwise it runs all L blocks and the network's own output layer. The decision is per
sample, and the call still compiles: `early_exit_apply` runs the blocks in a
`lax.while_loop` over layers whose carry holds every sample's output, exit layer and
"done" flag; a sample that has exited keeps its output (its tokens are still updated, and
ignored), and the loop stops as soon as every sample of the batch has exited. We chose
the while loop over masked computation (all L blocks always run, outputs selected by
mask) because only the loop saves compute inside a compiled program: masked computation
saves nothing but an accounting. The loop's cost is the batch's deepest exit, so a batch
of one realises each sample's own saving; `layers` reports the per-sample count (the
paper's measure) and `loop_layers` what the batch executed. With threshold 0 no sample
ever exits early (u > 0) and the call is the full network bit for bit
(tests/test_acceleration_deediff.py).

Any network given as `Stages` (`diffjax.models.transformer`: embed, block, head, the
block and output-layer parameter names) takes exits: the DiT (`dit_stages`, regression of
the velocity, `regression_errors`) and the masked-diffusion token transformer
(`token_transformer_stages`, logits over the vocabulary, `token_errors`: per-sample
cross-entropy at the masked positions in place of the mean absolute error).

Shapes: x (B, H, W, C) images or (B, N) token ids, t (B,) or scalar, tokens (B, N, D), c
(B, D); `exit_outputs` returns (L, B, ...) outputs shaped as the network's (the last the
network's own) and (L - 1, B) uncertainties.
"""
import jax
import jax.numpy as jnp
import numpy as np

from diffjax.errors import ConfigError
from diffjax.models.transformer import Stages


def check_threshold(threshold):
  """An exit threshold in [0, 1] (the uncertainties are in (0, 1); 0: never exit); a
  traced value passes unchecked."""
  if isinstance(threshold, jax.core.Tracer):
    return threshold
  try:
    value = float(threshold)
  except (TypeError, ValueError):
    raise ConfigError(f"The DeeDiff exit threshold must be a number in [0, 1]; got "
                      f"{threshold!r}.") from None
  if not 0.0 <= value <= 1.0:
    raise ConfigError(f"The DeeDiff exit threshold must be in [0, 1] (0: never exit early, "
                      f"1: exit at the first layer); got {threshold!r}.")
  return value


def init_exits(stages: Stages, network_params, key=None):
  """Parameters of the L - 1 exits: {"head": the network's output layer
  (stages.head_params) stacked L - 1 times, "uncertainty": {"kernel": (L - 1, 2 D), "bias": (L - 1,)}} (UEMs
  start at u = 0.5 everywhere). key: unused (kept for an init(key) signature)."""
  del key
  if stages.depth < 2:
    raise ConfigError(f"DeeDiff needs a network of at least 2 blocks; this one has "
                      f"{stages.depth}.")
  exits = stages.depth - 1
  head = {k: network_params[k] for k in stages.head_params}
  width = network_params[stages.head_params[0]]["kernel"].shape[0]
  return {"head": jax.tree.map(lambda p: jnp.stack([p] * exits), head),
          "uncertainty": {"kernel": jnp.zeros((exits, 2 * width), jnp.float32),
                          "bias": jnp.zeros((exits,), jnp.float32)}}


def uncertainty(uem, tokens, c):
  """u (B,) of one UEM {"kernel": (2 D,), "bias": ()} on tokens (B, N, D) and c (B, D)."""
  d = tokens.shape[-1]
  logits = (jnp.einsum("bnd,d->bn", tokens.astype(jnp.float32), uem["kernel"][:d])
            + (c.astype(jnp.float32) @ uem["kernel"][d:])[:, None] + uem["bias"])
  return jnp.mean(jax.nn.sigmoid(logits), axis=1)


def _index(tree, i):
  return jax.tree.map(lambda p: p[i], tree)


def exit_outputs(stages: Stages, network_params, exits, x, t, cond=None):
  """Every exit's output and uncertainty (module docstring): (outputs (L, B, ...),
  uncertainties (L - 1, B)); outputs[L - 1] is apply(network_params, x, t, cond)."""
  tokens, c = stages.embed(network_params, x, t, cond)
  outputs, uncertainties = [], []
  for i, name in enumerate(stages.block_names):
    tokens = stages.block(network_params[name], tokens, c)
    if i < stages.depth - 1:
      outputs.append(stages.head(_index(exits["head"], i), x, tokens, c))
      uncertainties.append(uncertainty(_index(exits["uncertainty"], i), tokens, c))
  outputs.append(stages.head(network_params, x, tokens, c))
  return jnp.stack(outputs), jnp.stack(uncertainties)


def regression_errors(outputs, target):
  """(loss, error), each (L, B), of each exit's output (L, B, ...) against a regression
  target (B, ...): the mean squared error and the mean absolute error (tanh of which is
  the paper's pseudo uncertainty)."""
  diff = (outputs - target[None]).reshape(outputs.shape[0], outputs.shape[1], -1)
  return jnp.mean(diff ** 2, axis=-1), jnp.mean(jnp.abs(diff), axis=-1)


def token_errors(weights):
  """errors(logits (L, B, N, V), target ids (B, N)) -> (loss, error), each (L, B), for a
  token network: the cross-entropy of each exit's logits at the positions weighted by
  `weights` (B, N) (masked diffusion: 1 at the masked positions, 0 elsewhere), averaged
  over them per sample, as both. The regression form's mean absolute error has no token
  analogue in the paper (its exits regress noise); the cross-entropy is the loss the
  network is trained with, so tanh(cross-entropy) plays the part of tanh(mean |g - y|)."""
  def errors(outputs, target):
    log_p = jax.nn.log_softmax(outputs, axis=-1)
    picked = jnp.take_along_axis(log_p, jnp.broadcast_to(
        target[None, ..., None], outputs.shape[:-1] + (1,)), axis=-1)[..., 0]
    w = weights[None].astype(jnp.float32)
    loss = -jnp.sum(w * picked, axis=-1) / jnp.maximum(jnp.sum(w, axis=-1), 1.0)
    return loss, loss
  return errors


def deediff_loss(outputs, uncertainties, target, errors=regression_errors):
  """(loss, aux) of DeeDiff (module docstring) from `exit_outputs`' outputs (L, B, ...),
  uncertainties (L - 1, B) and the target (B, ...): L_simple + L_u + L_UAL, each a mean
  over the batch. errors(outputs, target) -> (loss, error) per exit and sample:
  `regression_errors` (mse and mean |g - y|, the paper's) or `token_errors(weights)`; the
  pseudo uncertainty is tanh(error). aux: the three terms and the mean loss per exit."""
  loss, error = errors(outputs, target)
  labels = jax.lax.stop_gradient(jnp.tanh(error[:-1]))
  simple = jnp.mean(loss[-1])
  uem = jnp.mean(jnp.sum((uncertainties - labels) ** 2, axis=0))
  weights = 1.0 - jax.lax.stop_gradient(uncertainties)
  layerwise = jnp.mean(jnp.sum(weights * loss[:-1], axis=0))
  aux = {"loss_simple": simple, "loss_uncertainty": uem, "loss_layerwise": layerwise}
  aux.update({f"exit_{i + 1}_loss": jnp.mean(m) for i, m in enumerate(loss[:-1])})
  return simple + uem + layerwise, aux


def early_exit_apply(stages: Stages, network_params, exits, x, t, cond=None, *,
                     threshold):
  """(output (B, H, W, C), layers (B,) int32, loop_layers int32): the early-exit network
  (module docstring). layers: blocks each sample ran before its output; loop_layers:
  blocks the batch ran (the while loop's trip count)."""
  depth = stages.depth
  tokens, c = stages.embed(network_params, x, t, cond)
  blocks = jax.tree.map(lambda *p: jnp.stack(p),
                        *[network_params[name] for name in stages.block_names])
  batch = x.shape[0]

  def body(carry):
    i, tokens, out, layers, done = carry
    tokens = stages.block(_index(blocks, i), tokens, c)
    last = i == depth - 1

    def final(_):
      return stages.head(network_params, x, tokens, c), jnp.ones((batch,), bool)

    def exit_here(_):
      j = jnp.minimum(i, depth - 2)
      u = uncertainty(_index(exits["uncertainty"], j), tokens, c)
      return stages.head(_index(exits["head"], j), x, tokens, c), u < threshold

    y, leave = jax.lax.cond(last, final, exit_here, None)
    newly = leave & ~done
    out = jnp.where(newly.reshape((batch,) + (1,) * (out.ndim - 1)), y, out)
    layers = jnp.where(done, layers, i + 1)
    return i + 1, tokens, out, layers, done | newly

  shaped = jax.eval_shape(stages.head, network_params, x, tokens, c)
  carry = (jnp.zeros((), jnp.int32), tokens, jnp.zeros(shaped.shape, shaped.dtype),
           jnp.zeros((batch,), jnp.int32), jnp.zeros((batch,), bool))
  i, _, out, layers, _ = jax.lax.while_loop(
      lambda carry: (carry[0] < depth) & ~jnp.all(carry[4]), body, carry)
  return out, layers, i


class BlockTally:
  """The blocks an early-exit network ran, counted on the host as a compiled sampler makes
  its calls (`early_exit_model(..., tally=)` reports each call through
  `jax.debug.callback`): the sampler's own exit decisions, for any sampler (one call per
  step or several, calls skipped under a `lax.cond`, per-sample times), without replaying
  its states. Read after `jax.effects_barrier()`; `reset()` between measurements.

    per_sample()   mean blocks per sample per network call (the paper's layers per step
                   for a sampler calling the network once per step)
    per_call()     mean blocks the batch ran per call (the while loop's trip count)
    calls          network calls counted
  """

  def __init__(self):
    self.reset()

  def reset(self):
    self.calls, self.samples, self.layers, self.loop = 0, 0, 0, 0

  def __call__(self, layers, loop):
    layers = np.asarray(layers)
    self.calls += 1
    self.samples += layers.size
    self.layers += int(layers.sum())
    self.loop += int(loop)

  def per_sample(self) -> float:
    return self.layers / max(self.samples, 1)

  def per_call(self) -> float:
    return self.loop / max(self.calls, 1)


def early_exit_model(stages: Stages, exits, threshold, tally=None):
  """apply(network_params, x, t, cond=None) -> output: the early-exit network as a model
  apply (for `objective.fields`, samplers, guidance). tally: a `BlockTally` (or any
  host function of (layers (B,), loop_layers ())) told about every call."""
  check_threshold(threshold)

  def apply(network_params, x, t, cond=None, **unused):
    del unused
    out, layers, loop = early_exit_apply(stages, network_params, exits, x, t, cond,
                                         threshold=threshold)
    if tally is not None:
      jax.debug.callback(tally, layers, loop)
    return out
  return apply


def layers_along(stages: Stages, network_params, exits, trajectory, ts, cond=None, *,
                 threshold):
  """Blocks run per step along a sampler's trajectory (K + 1, B, ...) on the grid ts (K +
  1,), for samplers evaluating once per step at its start (Euler, DDIM): (per-sample
  layers (K, B), loop layers (K,)). The decisions are deterministic, so replaying them at
  the trajectory's states gives the sampler's own."""
  def one(x, t):
    _, layers, loop = early_exit_apply(stages, network_params, exits, x,
                                       jnp.broadcast_to(t, x.shape[:1]), cond,
                                       threshold=threshold)
    return layers, loop
  return jax.lax.map(lambda args: one(*args), (trajectory[:-1], ts[:-1]))

