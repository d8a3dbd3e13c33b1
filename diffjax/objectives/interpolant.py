"""Stochastic-interpolant objectives: quadratic losses for b, s, eta and v, with antithetic z.

From "Stochastic Interpolants: A Unifying Framework for Flows and Diffusions" (Albergo,
Boffi & Vanden-Eijnden), on x_t = a x0 + b x1 + gamma z with xdot = a' x0 + b' x1 + gamma' z:

  velocity b:                  1/2 |b(x_t)|^2 - xdot . b(x_t)
  score s:                     1/2 |s(x_t)|^2 + s(x_t) . z / gamma
  denoiser eta = E[z | x_t]:   1/2 |eta(x_t)|^2 - eta(x_t) . z
  deterministic velocity v:    1/2 |v(x_t)|^2 - (a' x0 + b' x1) . v(x_t)

Sign convention (fixed here, tested against the exact oracle): eta regresses +z, so
s = -eta / gamma. The fields for the samplers follow b = v - gamma gamma' s.
Each loss is averaged over data dimensions; its minimiser is the conditional expectation,
so it differs from the squared error to that target by a constant only. Antithetic
sampling evaluates every loss at x_t(z) and x_t(-z) and averages: the 1/gamma term of the
score loss cancels to first order, which keeps its variance bounded as gamma -> 0.

Networks with several heads output them concatenated along the last axis, in the order of
`heads`; the registered model "stacked_fields" builds one base network per head. The
fields for the samplers carry velocity and score (and the data prediction and noise they
determine, `diffjax.fields.interpolant_predictions`) from one network evaluation.
"""
import jax
import jax.numpy as jnp

from diffjax.core import Fields, time_column
from diffjax.fields import interpolant_predictions
from diffjax.objectives.base import OBJECTIVES, Objective
from diffjax.objectives.time_sampling import TIME_SAMPLERS

HEADS = ("velocity", "score", "denoiser", "deterministic_velocity")
SCORE_WEIGHTINGS = ("none", "gamma2")
# The score recovered from a denoiser divides by gamma; at t = 0 or 1 (gamma = 0) it is
# undefined, and the floor keeps it finite there.
GAMMA_FLOOR = 1e-3


def _dot(u, v):
  """Per-example mean over data dimensions of u * v: (B, ...) -> (B,)."""
  return jnp.mean((u * v).reshape(u.shape[0], -1), axis=-1)


def velocity_loss(b, xdot):
  """(B, ...) prediction and xdot -> (B,) quadratic loss 1/2 |b|^2 - xdot . b."""
  return 0.5 * _dot(b, b) - _dot(xdot, b)


def score_loss(s, z, gamma, weighting="none"):
  """(B, ...) s, z and (B,) gamma -> (B,) loss 1/2 |s|^2 + s . z / gamma.

  weighting "gamma2" multiplies by gamma^2 (1/2 |gamma s|^2 + gamma s . z, the
  noise-prediction weighting of SF2M's lambda(t) = 2 sigma_t / sigma^2 loss); it vanishes
  at gamma = 0 instead of diverging.
  """
  if weighting == "gamma2":
    gs = time_column(gamma, s) * s
    return 0.5 * _dot(gs, gs) + _dot(gs, z)
  if weighting != "none":
    raise ValueError(f"Unknown score weighting {weighting!r}; valid: {SCORE_WEIGHTINGS}.")
  return 0.5 * _dot(s, s) + _dot(s, z) / gamma


def denoiser_loss(eta, z):
  """(B, ...) eta and z -> (B,) loss 1/2 |eta|^2 - eta . z (minimiser E[z | x_t])."""
  return 0.5 * _dot(eta, eta) - _dot(eta, z)


def deterministic_velocity_loss(v, vdot):
  """(B, ...) v and a' x0 + b' x1 -> (B,) loss 1/2 |v|^2 - vdot . v."""
  return velocity_loss(v, vdot)


def _check_heads(heads, path):
  heads = tuple(heads)
  unknown = [h for h in heads if h not in HEADS]
  if unknown or not heads or len(set(heads)) != len(heads):
    raise ValueError(f"heads must be distinct names among {HEADS}; got {heads}.")
  has_score = "score" in heads or "denoiser" in heads
  if "score" in heads and "denoiser" in heads:
    raise ValueError("Model the score or the denoiser, not both.")
  if "velocity" not in heads and not ("deterministic_velocity" in heads and has_score):
    raise ValueError("The samplers need a velocity: heads must include 'velocity', or "
                     "'deterministic_velocity' with 'score' or 'denoiser'; got "
                     f"{heads}.")
  if has_score and not path.has_noise:
    raise ValueError(f"Path {path.name!r} has gamma = 0: its score cannot be learned from "
                     "z. Choose a path option gamma other than 'zero'.")
  return heads


@OBJECTIVES.register("interpolant")
def interpolant(path, heads=("velocity",), antithetic=True, score_weighting="none",
                time_sampler="uniform", **time_sampler_options) -> Objective:
  """The stochastic-interpolant objective on `path` for the fields named in `heads`.

  Args:
    path: a `diffjax.core.Path`.
    heads: what the network outputs, in order along its last axis: "velocity" (b),
      "score" (s), "denoiser" (eta), "deterministic_velocity" (v). A velocity must be
      obtainable: "velocity", or "deterministic_velocity" with "score" or "denoiser".
    antithetic: average every loss over z and -z.
    score_weighting: "none" or "gamma2" (see `score_loss`).
    time_sampler, **time_sampler_options: training times, from `TIME_SAMPLERS`.
  """
  heads = _check_heads(heads, path)
  sample_times = TIME_SAMPLERS.get(time_sampler)
  if score_weighting not in SCORE_WEIGHTINGS:
    raise ValueError(f"Unknown score weighting {score_weighting!r}; valid: "
                     f"{SCORE_WEIGHTINGS}.")

  def split(out):
    return dict(zip(heads, jnp.split(out, len(heads), axis=-1)))

  def one_side(apply_fn, params, t, x0, x1, z, cond):
    xt = path.interpolate(t, x0, x1, z)
    outs = split(apply_fn(params, xt, t, cond))
    gamma = path.coefficients(t)[2]
    losses = {}
    for head, out in outs.items():
      if head == "velocity":
        losses[head] = velocity_loss(out, path.conditional_velocity(t, x0, x1, z))
      elif head == "score":
        losses[head] = score_loss(out, z, gamma, score_weighting)
      elif head == "denoiser":
        losses[head] = denoiser_loss(out, z)
      else:
        losses[head] = deterministic_velocity_loss(
            out, path.deterministic_velocity(t, x0, x1))
    return losses

  def loss(apply_fn, params, key, x0, x1, cond=None):
    k_t, k_z = jax.random.split(key)
    t = sample_times(k_t, x1.shape[0], **time_sampler_options)
    z = jax.random.normal(k_z, x1.shape, x1.dtype)
    losses = one_side(apply_fn, params, t, x0, x1, z, cond)
    if antithetic:
      minus = one_side(apply_fn, params, t, x0, x1, -z, cond)
      losses = {h: 0.5 * (losses[h] + minus[h]) for h in heads}
    means = {h: jnp.mean(v) for h, v in losses.items()}
    return sum(means.values()), {f"loss_{h}": v for h, v in means.items()}

  def fields(apply_fn, params, cond=None):
    def score_of(outs, x, t):
      if "score" in outs:
        return outs["score"]
      gamma = jnp.maximum(path.coefficients(t)[2], GAMMA_FLOOR)
      return -outs["denoiser"] / time_column(jnp.broadcast_to(gamma, x.shape[:1]), x)

    def velocity_of(outs, x, t, score):
      if "velocity" in outs:
        return outs["velocity"]
      gg = jnp.broadcast_to(path.gamma_gamma_derivative(t), x.shape[:1])
      return outs["deterministic_velocity"] - time_column(gg, x) * score

    has_score = "score" in heads or "denoiser" in heads

    def evaluate(x, t):
      outs = split(apply_fn(params, x, t, cond))
      score = score_of(outs, x, t) if has_score else None
      return interpolant_predictions(path, x, t, velocity_of(outs, x, t, score), score)

    if has_score:
      return Fields(evaluate, ("velocity", "score", "data", "noise"))
    return Fields(evaluate, ("velocity",) if path.has_noise else ("velocity", "data"))

  return Objective(loss, fields)
