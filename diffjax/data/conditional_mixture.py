"""A class-conditional Gaussian mixture with exact conditional and unconditional fields.

Class y in {0, ..., K - 1} has prior weight pi_y and the mixture rho1(x | y) =
sum_j q_yj N(mu_yj, C_yj); the unconditional target is rho1(x) = sum_y pi_y rho1(x | y),
itself a Gaussian mixture. On any path (`diffjax.core.Path`) each class's fields and the
unconditional fields are those of `diffjax.data.mixture_oracle` towards rho1(. | y) and
rho1, so guidance methods can be checked against closed forms:
  - the exact noise-aware classifier log p_t(y | x) = log pi_y + log rho_t(x | y) -
    log rho_t(x) (Bayes' rule on the time-t marginals), whose gradient added to the
    unconditional score gives the conditional score exactly;
  - CFG with scale w samples the flow of s_u + w (s_y - s_u) = s_u + w grad log p_t(y | x).
Labels are (B,) ints; the id K is the null class (the unconditional model), as in
condition dropout (`diffjax.conditioning`).
"""
import dataclasses
from typing import Tuple

import jax
import jax.numpy as jnp

from diffjax.core import Fields, Path, Predictions
from diffjax.data.gaussian_mixture import GaussianMixture
from diffjax.data.mixture_oracle import mixture_oracle


@dataclasses.dataclass(frozen=True)
class ClassConditionalMixture:
  """K classes with prior weights `class_weights` (K,) and one mixture per class."""
  class_weights: jax.Array
  classes: Tuple[GaussianMixture, ...]

  @property
  def num_classes(self) -> int:
    return len(self.classes)

  @property
  def dim(self) -> int:
    return self.classes[0].dim

  def unconditional(self) -> GaussianMixture:
    """rho1 = sum_y pi_y rho1(. | y) as one mixture."""
    w = jnp.concatenate([p * m.weights for p, m in zip(self.class_weights, self.classes)])
    return GaussianMixture(w, jnp.concatenate([m.means for m in self.classes]),
                           jnp.concatenate([m.covariances for m in self.classes]))

  def sample(self, key, num_samples):
    """(x (N, D), labels (N,) int32): exact draws of (x1, y)."""
    k_label, k_x = jax.random.split(key)
    labels = jax.random.categorical(k_label, jnp.log(self.class_weights), shape=(num_samples,))
    return self.sample_class(k_x, labels), labels.astype(jnp.int32)

  def sample_class(self, key, labels):
    """(N, D) draws of x1 | y for labels (N,)."""
    draws = jnp.stack([m.sample(jax.random.fold_in(key, k), labels.shape[0])
                       for k, m in enumerate(self.classes)])               # (K, N, D)
    return jnp.take_along_axis(draws, labels[None, :, None], 0)[0]

  def oracles(self, path: Path, source=None):
    """The K class oracles and the unconditional one (index K)."""
    return tuple(mixture_oracle(path, m, source) for m in self.classes) + (
        mixture_oracle(path, self.unconditional(), source),)

  def fields(self, path: Path, labels, source=None) -> Fields:
    """Exact fields given labels (B,) in [0, K] (K: the unconditional fields), for x of
    batch B. Every class is evaluated and the label's one selected (K + 1 small)."""
    oracles = self.oracles(path, source)

    def evaluate(x, t):
      outs = [o.fields().evaluate(x, t) for o in oracles]
      pick = lambda *values: jnp.take_along_axis(
          jnp.stack(values), labels[None, :, None], 0)[0]
      return jax.tree.map(pick, *outs)

    return Fields(evaluate, ("velocity", "score", "data", "noise"))

  def fields_of(self, path: Path, source=None):
    """labels -> exact `Fields` (the `fields_of` of a `diffjax.guidance.ConditionalModel`)."""
    return lambda labels: self.fields(path, labels, source)

  def log_prob_class(self, path: Path, t, x, labels):
    """log p_t(y | x) (B,) for x (B, D), labels (B,) in [0, K): the exact noise-aware
    classifier of the time-t marginals (module docstring)."""
    oracles = self.oracles(path)
    log_joint = jnp.stack([jnp.log(p) + o.log_prob(x, t)
                           for p, o in zip(self.class_weights, oracles[:-1])], -1)
    log_post = log_joint - oracles[-1].log_prob(x, t)[:, None]
    return jnp.take_along_axis(log_post, labels[:, None], -1)[:, 0]


def two_class_mixture(separation=2.0, std=0.6, dim=2) -> ClassConditionalMixture:
  """Two equally likely classes, each a mixture of two Gaussians of std `std`: class 0 to
  the left of the origin, class 1 to the right (at +-separation on the first axis, the
  two components of a class at +-std on the second). A small conditional task with a
  known answer: the class proportion and mean of guided samples."""
  def blob(sign):
    means = jnp.zeros((2, dim)).at[:, 0].set(sign * separation).at[:, 1].set(
        jnp.array([-1.0, 1.0]) * separation / 2)
    covs = (std ** 2) * jnp.broadcast_to(jnp.eye(dim), (2, dim, dim))
    return GaussianMixture(jnp.full((2,), 0.5), means, covs)
  return ClassConditionalMixture(jnp.full((2,), 0.5), (blob(-1.0), blob(1.0)))
