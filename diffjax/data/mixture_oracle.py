"""Exact marginals and fields of any path between two Gaussian mixtures: the test oracle.

With rho0 = sum_i p_i N(mu0_i, C0_i), rho1 = sum_j q_j N(mu1_j, C1_j), the independent
coupling and z ~ N(0, I), the path x_t = a x0 + b x1 + gamma z (`diffjax.core.Path`) is,
given the pair of components (i, j), jointly Gaussian with x0, x1 and
xdot = a' x0 + b' x1 + gamma' z:

  x_t | ij ~ N(m_ij, S_ij),   m_ij = a mu0_i + b mu1_j,  S_ij = a^2 C0_i + b^2 C1_j + gamma^2 I,
  Cov(xdot, x_t | ij) = a a' C0_i + b b' C1_j + gamma gamma' I,   Cov(x1, x_t | ij) = b C1_j.

So rho_t is the K0 K1-component mixture with weights p_i q_j, and with responsibilities
r_ij(x) and P_ij = S_ij^{-1} (m_ij - x) (Gaussian conditioning; "Stochastic Interpolants: A
Unifying Framework for Flows and Diffusions", Albergo, Boffi & Vanden-Eijnden, eq. 2.10 for
b and 2.12 for s):

  score     s(x)  = sum r_ij P_ij,
  velocity  b(x)  = sum r_ij [m'_ij - (a a' C0_i + b b' C1_j) P_ij] - gamma gamma' s(x),
  data      E[x1 | x_t = x] = sum r_ij (mu1_j - b C1_j P_ij),
  noise     E[eps | x_t] = -sigma s on a Gaussian path, E[z | x_t] = -gamma s otherwise.

Only gamma gamma' enters, so the fields are finite at t = 0 and 1. A one-sided path's source
is its own N(0, source_std^2 I) (`mixture_oracle`). Everything is vectorised over the batch:
the K0 K1 Cholesky factors are computed once per time, not per point.
"""
import dataclasses

import jax
import jax.numpy as jnp

from diffjax.core import Fields, Path, Predictions
from diffjax.data.gaussian_mixture import GaussianMixture


@dataclasses.dataclass(frozen=True)
class MixtureOracle:
  """Closed-form fields of `path` between the mixtures `rho0` (t = 0) and `rho1` (t = 1).

  Every method takes x: (N, D) and t: a scalar or (N,) and returns (N, D) (log_prob: (N,)).
  """
  path: Path
  rho0: GaussianMixture
  rho1: GaussianMixture

  def _components(self, t):
    """Scalar t -> (rho_t as a GaussianMixture, mean velocities (K, D), Cov(xdot, x_t)
    without the gamma part (K, D, D), Cov(x1, x_t) (K, D, D), gamma gamma'), K = K0 K1."""
    p = self.path
    a, b, g = p.coefficients(t)
    da, db, _ = p.coefficient_derivatives(t)
    m0, m1 = self.rho0.means, self.rho1.means
    c0, c1 = self.rho0.covariances, self.rho1.covariances
    eye = jnp.eye(self.rho0.dim)
    k0, k1 = m0.shape[0], m1.shape[0]
    flat = lambda u: u.reshape((k0 * k1,) + u.shape[2:])
    pair = lambda u0, u1: flat(u0[:, None] + u1[None])
    weights = flat(self.rho0.weights[:, None] * self.rho1.weights[None])
    mean = pair(a * m0, b * m1)
    cov = pair(a ** 2 * c0, b ** 2 * c1) + g ** 2 * eye[None]
    dmean = pair(da * m0, db * m1)
    cross = pair(a * da * c0, b * db * c1)
    data_cross = pair(jnp.zeros_like(c0), b * c1)
    data_mean = pair(jnp.zeros_like(m0), m1)
    return (GaussianMixture(weights, mean, cov), dmean, cross, data_mean, data_cross,
            p.gamma_gamma_derivative(t))

  def _terms(self, x, t):
    """x (N, D), scalar t -> (log rho_t (N,), score, velocity, data), each (N, D)."""
    marginal, dmean, cross, data_mean, data_cross, gg = self._components(t)
    log_comp, p = marginal.component_terms(x)               # (N, K), (N, K, D)
    log_prob = jax.scipy.special.logsumexp(log_comp, axis=-1)
    resp = jnp.exp(log_comp - log_prob[:, None])
    score = jnp.einsum("nk,nkd->nd", resp, p)
    velocity = (resp @ dmean - jnp.einsum("nk,kij,nkj->ni", resp, cross, p) - gg * score)
    data = resp @ data_mean - jnp.einsum("nk,kij,nkj->ni", resp, data_cross, p)
    return log_prob, score, velocity, data

  def _evaluate(self, x, t):
    t = jnp.asarray(t, jnp.float32)
    if t.ndim == 0:
      return self._terms(x, t)
    one = lambda xi, ti: jax.tree.map(lambda u: u[0], self._terms(xi[None], ti))
    return jax.vmap(one)(x, t)

  def marginal(self, t) -> GaussianMixture:
    """rho_t at a scalar t as a `GaussianMixture` of K0 K1 components."""
    return self._components(jnp.asarray(t, jnp.float32))[0]

  def log_prob(self, x, t):
    return self._evaluate(x, t)[0]

  def score(self, x, t):
    return self._evaluate(x, t)[1]

  def velocity(self, x, t):
    return self._evaluate(x, t)[2]

  def data(self, x, t):
    """E[x1 | x_t = x]."""
    return self._evaluate(x, t)[3]

  def deterministic_velocity(self, x, t):
    """E[a' x0 + b' x1 | x_t = x] = b(x) + gamma gamma' s(x)."""
    _, score, velocity, _ = self._evaluate(x, t)
    gg = self.path.gamma_gamma_derivative(jnp.broadcast_to(t, x.shape[:1]))
    return velocity + gg[:, None] * score

  def noise(self, x, t):
    """E[eps | x_t] = -sigma s on a Gaussian path, E[z | x_t] = -gamma s otherwise."""
    t = jnp.broadcast_to(jnp.asarray(t, jnp.float32), x.shape[:1])
    view = self.path.gaussian
    level = view.sigma(t) if view is not None else self.path.coefficients(t)[2]
    return -level[:, None] * self.score(x, t)

  def fields(self) -> Fields:
    """The exact `Fields` (velocity, score, data, noise) for every sampler."""
    def evaluate(x, t):
      _, score, velocity, data = self._evaluate(x, t)
      tb = jnp.broadcast_to(jnp.asarray(t, jnp.float32), x.shape[:1])
      view = self.path.gaussian
      level = view.sigma(tb) if view is not None else self.path.coefficients(tb)[2]
      return Predictions(velocity=velocity, score=score, data=data,
                         noise=-level[:, None] * score)
    return Fields(evaluate, ("velocity", "score", "data", "noise"))


def standard_normal_mixture(dim, std=1.0) -> GaussianMixture:
  """N(0, std^2 I) as a one-component mixture."""
  return GaussianMixture(jnp.ones((1,)), jnp.zeros((1, dim)),
                         (std ** 2) * jnp.eye(dim)[None])


def mixture_oracle(path: Path, target: GaussianMixture, source=None) -> MixtureOracle:
  """The oracle of `path` towards `target`; the source is the path's own
  N(0, source_std^2 I) for a one-sided path, else the given `source` mixture."""
  if source is None:
    if not path.one_sided:
      raise ValueError(f"The two-sided path {path.name!r} needs a source mixture.")
    source = standard_normal_mixture(target.dim, path.source_std)
  return MixtureOracle(path, source, target)
