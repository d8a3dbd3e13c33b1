"""Exact marginal, velocity and score of any interpolant between two Gaussian mixtures.

With rho0 = sum_i p_i N(mu0_i, C0_i), rho1 = sum_j q_j N(mu1_j, C1_j), the independent
coupling and z ~ N(0, I), the interpolant x_t = a x0 + b x1 + gamma z is, given the pair of
components (i, j), Gaussian and jointly Gaussian with its time derivative
xdot = a' x0 + b' x1 + gamma' z:

  x_t | ij ~ N(m_ij, S_ij),   m_ij = a mu0_i + b mu1_j,  S_ij = a^2 C0_i + b^2 C1_j + gamma^2 I,
  Cov(xdot, x_t | ij) = a a' C0_i + b b' C1_j + gamma gamma' I.

So rho_t is the K0 K1-component mixture with weights p_i q_j, and with responsibilities
r_ij(x) (Gaussian conditioning; "Stochastic Interpolants: A Unifying Framework for Flows and
Diffusions", Albergo, Boffi & Vanden-Eijnden, eq. 2.10 for b and 2.12 for s):

  score  s(x)  = sum r_ij S_ij^{-1} (m_ij - x),
  velocity b(x) = sum r_ij [m'_ij + Cov(xdot, x_t | ij) S_ij^{-1} (x - m_ij)],
  deterministic velocity v(x) = E[a' x0 + b' x1 | x_t = x] = b(x) + gamma gamma' s(x),
  denoiser eta(x) = E[z | x_t = x] = -gamma s(x).

Only gamma gamma' enters, so the fields are finite at t = 0 and 1.
"""
import dataclasses

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from diffjax.data.gaussian_mixture import GaussianMixture
from diffjax.solvers.sampling import Fields


@dataclasses.dataclass(frozen=True)
class InterpolantOracle:
  """Closed-form fields of `path` between the mixtures `rho0` (t = 0) and `rho1` (t = 1).

  Every field takes x: (N, D) and t: a scalar or (N,) and returns (N, D) (log_prob: (N,)).
  """
  path: object
  rho0: GaussianMixture
  rho1: GaussianMixture

  def _components(self, t):
    """Scalar t -> log-weights (K,), means (K, D), covariances (K, D, D), mean velocities
    (K, D), and the cross-covariances Cov(xdot, x_t) split as (deterministic, gamma part)."""
    p = self.path
    a, b, g = p.coefficients(t)
    da, db, _ = p.coefficient_derivatives(t)
    gg = p.gamma_gamma_derivative(t)
    m0, m1 = self.rho0.means, self.rho1.means
    c0, c1 = self.rho0.covariances, self.rho1.covariances
    eye = jnp.eye(self.rho0.dim)
    k0, k1 = m0.shape[0], m1.shape[0]
    flat = lambda u: u.reshape((k0 * k1,) + u.shape[2:])
    log_w = flat(jnp.log(self.rho0.weights)[:, None] + jnp.log(self.rho1.weights)[None])
    mean = flat(a * m0[:, None] + b * m1[None])
    cov = flat(a ** 2 * c0[:, None] + b ** 2 * c1[None] + g ** 2 * eye[None, None])
    dmean = flat(da * m0[:, None] + db * m1[None])
    cross_det = flat(a * da * c0[:, None] + b * db * c1[None])
    return log_w, mean, cov, dmean, cross_det, gg * eye

  def _point(self, x, t):
    """One point x: (D,) at scalar t -> (log rho_t(x), score, velocity, det. velocity)."""
    log_w, mean, cov, dmean, cross_det, cross_g = self._components(t)
    chol = jnp.linalg.cholesky(cov)                                        # (K, D, D)
    diff = x[None] - mean                                                  # (K, D)
    white = jax.scipy.linalg.solve_triangular(chol, diff[..., None], lower=True)[..., 0]
    log_det = 2 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), -1)
    log_comp = log_w - 0.5 * (x.shape[0] * jnp.log(2 * jnp.pi) + log_det
                              + jnp.sum(white ** 2, -1))
    log_p = logsumexp(log_comp)
    resp = jnp.exp(log_comp - log_p)                                       # (K,)
    prec_diff = jax.scipy.linalg.cho_solve((chol, True), diff[..., None])[..., 0]
    score = -resp @ prec_diff
    det_v = resp @ (dmean + jnp.einsum("kij,kj->ki", cross_det, prec_diff))
    velocity = det_v + cross_g @ (resp @ prec_diff)
    return log_p, score, velocity, det_v

  def _batched(self, x, t):
    t = jnp.broadcast_to(jnp.asarray(t, jnp.float32), x.shape[:1])
    return jax.vmap(self._point)(x, t)

  def marginal(self, t) -> GaussianMixture:
    """rho_t at a scalar t as a `GaussianMixture` of K0 K1 components."""
    log_w, mean, cov, *_ = self._components(jnp.asarray(t, jnp.float32))
    return GaussianMixture(jnp.exp(log_w), mean, cov)

  def log_prob(self, x, t):
    return self._batched(x, t)[0]

  def score(self, x, t):
    return self._batched(x, t)[1]

  def velocity(self, x, t):
    return self._batched(x, t)[2]

  def deterministic_velocity(self, x, t):
    return self._batched(x, t)[3]

  def denoiser(self, x, t):
    """E[z | x_t = x] = -gamma(t) s(x)."""
    g = jnp.broadcast_to(self.path.coefficients(t)[2], x.shape[:1])
    return -g[:, None] * self.score(x, t)

  def fields(self) -> Fields:
    """The exact `Fields(velocity, score)` for every sampler."""
    return Fields(velocity=self.velocity, score=self.score)
