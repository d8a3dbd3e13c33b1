"""UnlearnDiffAtk: an adversarial condition that makes an unlearned model generate the
class it was made to forget, found with the model's own denoising loss.

"To Generate or Not? Safety-Driven Unlearned Diffusion Models Are Still Easy To Generate
Unsafe Images ... For Now" (Zhang et al., ECCV 2024, eq. 3 and 4): the diffusion model is
its own classifier (`diffjax.safety.diffusion_classifier`), so a condition c' that
minimises the denoising loss of target images x_tgt of the forgotten concept,

    c* = argmin_c'  E_{x_tgt, lambda, eps} exp(2 lambda) || x_tgt - x_hat(z_lambda; c') ||^2,

makes the model's class-conditional density of c* put its mass on the forgotten concept,
and sampling with c* regenerates it. The paper optimises a few prompt tokens; a
class-conditional network embeds the class in a table (`Embed` of K + 1 rows), so here
the condition is the embedding row of the forgotten class, replaced by a learned vector
(`with_class_embedding`) and started from the row's own value (the forgotten "prompt").
`optimise_condition` runs Adam on it through `diffjax.train.fit` (the engine's train
step) with the network frozen.

An `AttackSubject` (`diffjax.safety.subjects`) says what is attacked: fields(vector, n)
-> the `Fields` the model samples the forgotten class with, under that embedding (a
fine-tuned run, a negatively guided run, the one-step student's network), and
generate(vector, key, n) -> its samples of that class.
"""
import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from diffjax.safety.diffusion_classifier import antithetic_noise, denoising_loss, random_log_snr
from diffjax.train import fit


def embedding_table_key(params) -> str:
  """The top-level parameter holding the class-embedding table {"embedding": (K + 1, d)}
  (`diffjax.models.base.embed_condition`); ValueError if there is none or several."""
  keys = [k for k, v in params.items()
          if isinstance(v, dict) and set(v) == {"embedding"} and v["embedding"].ndim == 2]
  if len(keys) != 1:
    raise ValueError(f"Expected one class-embedding table among the parameters' top-level "
                     f"entries; found {keys or 'none'} in {sorted(params)}: is the network "
                     "class-conditional (model.num_classes > 0)?")
  return keys[0]


def class_embedding(params, label: int):
  """(d,) the embedding row of class `label`."""
  return params[embedding_table_key(params)]["embedding"][label]


def with_class_embedding(params, label: int, vector):
  """The parameters with the embedding row of `label` replaced by vector (d,)."""
  key = embedding_table_key(params)
  table = params[key]["embedding"].at[label].set(vector)
  return {**params, key: {"embedding": table}}


@dataclasses.dataclass(frozen=True)
class AttackSubject:
  """An (unlearned) model under attack: fields(vector, n) -> `Fields` of the forgotten
  class with that condition embedding for a batch of n; generate(vector, key, n) ->
  (n, ...) samples of it; initial (d,): the forgotten class's own embedding."""
  name: str
  fields: Callable
  generate: Callable
  initial: jax.Array


def attack_loss(subject: AttackSubject, path, targets, num_pairs=2, num_lambda=4,
                lambda_range=(-6.0, 6.0)):
  """loss(vector, batch, key) -> the denoising loss (module docstring) of the target
  images (N, ...) averaged over them: random log-SNRs and antithetic noise per call."""
  def loss(vector, batch, key):
    del batch
    k_lambda, k_noise = jax.random.split(key)
    lam, weights = random_log_snr(k_lambda, num_lambda, *lambda_range)
    eps = antithetic_noise(k_noise, num_pairs, targets.shape)
    fields = subject.fields(vector, targets.shape[0])
    return jnp.mean(denoising_loss(fields, path, targets, eps, lam, weights))
  return loss


def optimise_condition(subject: AttackSubject, path, targets, *, num_steps=100,
                       learning_rate=0.05, key, **loss_options):
  """c* (d,) after num_steps Adam steps on `attack_loss`, from subject.initial."""
  state = fit(attack_loss(subject, path, targets, **loss_options),
              optax.adam(learning_rate), subject.initial, num_steps=num_steps, key=key,
              ema_decay=None, steps_per_call=num_steps)
  return state.params
