"""The Schrödinger bridge between two Gaussians in closed form.

Between rho0 = N(a, A) and rho1 = N(b, B) (t = 0 and t = 1) under a reference with a linear
drift, dX = (L X + c) dt + sigma dW (L = 0: Brownian), the bridge is a Gaussian process:

- Static coupling. For the Brownian reference it is the entropic OT plan for the cost
  |x0 - x1|^2 with regularisation epsilon = 2 sigma^2 ("The Schrödinger Bridge between
  Gaussian Measures has a Closed Form", Bunne, Hsieh, Cuturi & Krause, AISTATS 2023,
  Thm. 3), with cross-covariance
      C = Cov(X0, X1)
        = A^(1/2) (A^(1/2) B A^(1/2) + sigma^4/4 I)^(1/2) A^(-1/2) - sigma^2/2 I.
  For a linear reference with transition X1 | X0 ~ N(Phi x0 + phi, Q) the static problem
  has the cost (x1 - Phi x0 - phi)^T Q^-1 (x1 - Phi x0 - phi) / 2; in the whitened
  variables u = Q^(-1/2) (Phi x0 + phi), v = Q^(-1/2) x1 it is the Brownian problem with
  sigma = 1, so C = Phi^-1 Q^(1/2) C_uv Q^(1/2). This is the Ornstein–Uhlenbeck case of
  "Learning non-equilibrium diffusions with Schrödinger bridges: from exactly solvable to
  simulation-free" (Zhang & Stumpf, NeurIPS 2025), derived here by the whitening argument
  and tested against entropic OT and simulation.
- Marginals. Given (x0, x1) the bridge is the reference's bridge, X_t = P_t x0 + R_t x1 +
  r_t + N(0, S_t), with R_t = Q_t Phi_{1-t}^T Q_1^-1, P_t = Phi_t - R_t Phi_1,
  r_t = phi_t - R_t phi_1, S_t = Q_t - R_t Phi_{1-t} Q_t (Brownian: P = 1 - t, R = t,
  S = sigma^2 t (1 - t) I). So mu_t = P_t a + R_t b + r_t and
  Sigma_t = P A P^T + R B R^T + P C R^T + R C^T P^T + S_t.
- Forward drift. The bridge is Markov, so its drift is the reference-bridge drift averaged
  over X1 | X_t = x: f(x, t) = L x + c + sigma^2 Phi_{1-t}^T Q_{1-t}^-1
  (E[X1 | X_t = x] - Phi_{1-t} x - phi_{1-t}). For the Brownian reference this is, without
  the removable singularity at t = 1,
      f(x, t) = b - a + [t (B - C) + (1 - t) (C^T - A) - t sigma^2 I] Sigma_t^-1 (x - mu_t),
  which solves the covariance equation Sigma_t' = M Sigma + Sigma M^T + sigma^2 I (tested).
  For other linear references f is defined on t in [0, 1) (t is clipped to 1 - 1e-4).
- Backward drift (the drift of the time-reversed process, x_{t-h} = x_t + h g(x_t, t) +
  sigma sqrt(h) z): g = -f + sigma^2 grad log rho_t (Nelson's relation).
"""
import dataclasses
import functools
from typing import Any, Optional

import jax
import jax.numpy as jnp

from diffjax.bridges.linalg import expm, spd_inv_sqrt, spd_solve, spd_sqrt, symmetrize
from diffjax.bridges.reference import Reference, check_sigma
from diffjax.errors import ConfigError

# Linear (non-Brownian) references: the drift formula divides by Q_{1-t}, so t <= _T_MAX.
_T_MAX = 1.0 - 1e-4


def entropic_cross_covariance(cov0, cov1, sigma):
  """Cov(X0, X1) of the Brownian (variance sigma^2) Schrödinger bridge between
  N(., cov0) and N(., cov1): (D, D) (Bunne et al. 2023, Thm. 3; equivalently entropic OT
  with cost |x0 - x1|^2 and epsilon = 2 sigma^2). sigma -> 0 gives cov0 T with T the
  Monge map; sigma -> inf gives 0 (the independent coupling)."""
  a_half = spd_sqrt(cov0)
  a_inv_half = spd_inv_sqrt(cov0)
  eye = jnp.eye(cov0.shape[0], dtype=cov0.dtype)
  middle = spd_sqrt(a_half @ cov1 @ a_half + sigma ** 4 / 4 * eye)
  return a_half @ middle @ a_inv_half - sigma ** 2 / 2 * eye


@jax.jit
def linear_transition(matrix, offset, sigma, t):
  """Transition of dX = (L X + c) dt + sigma dW over a time t: X_t | X_0 = x ~
  N(Phi x + phi, Q). Returns (Phi (D, D), phi (D,), Q (D, D)). L None means L = 0 and
  offset None means c = 0. Q by Van Loan's block exponential ("Computing integrals
  involving the matrix exponential", 1978)."""
  dim = offset.shape[0] if matrix is None else matrix.shape[0]
  t = jnp.asarray(t, jnp.float32)
  offset = jnp.zeros((dim,)) if offset is None else offset
  if matrix is None:
    return jnp.eye(dim), t * offset, sigma ** 2 * t * jnp.eye(dim)
  top = jnp.concatenate([matrix, offset[:, None]], 1)
  augmented = jnp.concatenate([top, jnp.zeros((1, dim + 1))], 0)
  flow = expm(t * augmented)
  phi_matrix, phi_offset = flow[:dim, :dim], flow[:dim, dim]
  eye = jnp.eye(dim)
  van_loan = jnp.concatenate([
      jnp.concatenate([-matrix, sigma ** 2 * eye], 1),
      jnp.concatenate([jnp.zeros((dim, dim)), matrix.T], 1)], 0)
  block = expm(t * van_loan)
  q = symmetrize(block[dim:, dim:].T @ block[:dim, dim:])
  return phi_matrix, phi_offset, q


@functools.partial(jax.tree_util.register_dataclass,
                   data_fields=("mean0", "cov0", "mean1", "cov1", "sigma",
                                "cross_covariance", "matrix", "offset"), meta_fields=())
@dataclasses.dataclass(frozen=True)
class GaussianBridge:
  """The Schrödinger bridge between N(mean0, cov0) and N(mean1, cov1); build it with
  `gaussian_bridge`. Shapes: means (D,), covariances (D, D); x (B, D); t a scalar.
  A pytree: its methods are compiled once per shape and pass through jit/vmap."""
  mean0: Any
  cov0: Any
  mean1: Any
  cov1: Any
  sigma: float
  cross_covariance: Any          # Cov(X0, X1), (D, D)
  matrix: Optional[Any] = None   # L of the reference drift (None: zero)
  offset: Optional[Any] = None   # c of the reference drift (None: zero)

  @property
  def dim(self) -> int:
    return self.mean0.shape[0]

  @property
  def brownian(self) -> bool:
    return self.matrix is None

  def _transitions(self, t):
    """The reference transitions over t, 1 - t and 1 from one (batched) evaluation."""
    t = jnp.asarray(t, jnp.float32)
    offset = jnp.zeros((self.dim,)) if self.offset is None else self.offset
    spans = jnp.stack([t, 1.0 - t, jnp.ones_like(t)])
    return jax.vmap(lambda s: linear_transition(self.matrix, offset, self.sigma, s))(spans)

  def coupling_covariance(self):
    """The (2D, 2D) covariance of (X0, X1) under the static coupling."""
    c = self.cross_covariance
    return jnp.concatenate([jnp.concatenate([self.cov0, c], 1),
                            jnp.concatenate([c.T, self.cov1], 1)], 0)

  def _bridge(self, t):
    phis, offsets, qs = self._transitions(t)
    gain = spd_solve(qs[2], (qs[0] @ phis[1].T).T).T     # R_t = Q_t Phi_{1-t}^T Q_1^-1
    coefficients = (phis[0] - gain @ phis[2], gain, offsets[0] - gain @ offsets[2],
                    symmetrize(qs[0] - gain @ phis[1] @ qs[0]))
    return coefficients, (phis[1], offsets[1], qs[1])

  @jax.jit
  def bridge_coefficients(self, t):
    """(P_t, R_t, r_t, S_t): X_t | x0, x1 ~ N(P x0 + R x1 + r, S) under the reference."""
    return self._bridge(t)[0]

  def _marginal(self, coefficients):
    p, r, shift, s = coefficients
    c = self.cross_covariance
    mean = p @ self.mean0 + r @ self.mean1 + shift
    cov = p @ self.cov0 @ p.T + r @ self.cov1 @ r.T + p @ c @ r.T + r @ c.T @ p.T + s
    return mean, symmetrize(cov)

  @jax.jit
  def marginal(self, t):
    """(mu_t (D,), Sigma_t (D, D)) of X_t, t a scalar in [0, 1]."""
    return self._marginal(self.bridge_coefficients(t))

  @jax.jit
  def score(self, x, t):
    """grad log rho_t(x) = -Sigma_t^-1 (x - mu_t): (B, D); t a scalar or (B,)."""
    if jnp.ndim(t):
      return _per_example(self.score, x, t)
    mean, cov = self.marginal(t)
    return -spd_solve(cov, (x - mean[None]).T).T

  @jax.jit
  def forward_drift(self, x, t):
    """The bridge's drift f(x, t): dX = f dt + sigma dW forward in time. (B, D); t a
    scalar or (B,)."""
    if jnp.ndim(t):
      return _per_example(self.forward_drift, x, t)
    t = jnp.asarray(t, jnp.float32)
    c = self.cross_covariance
    if self.brownian:
      mean, cov = self.marginal(t)
      eye = jnp.eye(self.dim)
      gain = (t * (self.cov1 - c) + (1 - t) * (c.T - self.cov0) - t * self.sigma ** 2 * eye)
      return (self.mean1 - self.mean0)[None] + spd_solve(cov, (x - mean[None]).T).T @ gain.T
    t = jnp.minimum(t, _T_MAX)
    coefficients, (phi_r, off_r, q_r) = self._bridge(t)
    mean, cov = self._marginal(coefficients)
    p, r, _, _ = coefficients
    cross_1t = c.T @ p.T + self.cov1 @ r.T                      # Cov(X1, X_t)
    expected_x1 = self.mean1[None] + spd_solve(cov, (x - mean[None]).T).T @ cross_1t.T
    residual = expected_x1 - x @ phi_r.T - off_r[None]
    pull = self.sigma ** 2 * spd_solve(q_r, residual.T).T @ phi_r
    return x @ self.matrix.T + self.offset[None] + pull

  @jax.jit
  def backward_drift(self, x, t):
    """The drift g of the time-reversed bridge (x_{t-h} = x + h g + sigma sqrt(h) z):
    g = -f + sigma^2 grad log rho_t. (B, D)."""
    return -self.forward_drift(x, t) + self.sigma ** 2 * self.score(x, t)

  def sample_coupling(self, key, num_samples):
    """(x0, x1), each (num_samples, D), from the static coupling."""
    joint_mean = jnp.concatenate([self.mean0, self.mean1])
    z = jax.random.multivariate_normal(key, joint_mean, self.coupling_covariance(),
                                       (num_samples,), method="eigh")
    return z[:, :self.dim], z[:, self.dim:]

  def sample_marginal(self, key, t, num_samples):
    """(num_samples, D) draws of X_t."""
    mean, cov = self.marginal(t)
    return jax.random.multivariate_normal(key, mean, cov, (num_samples,), method="eigh")


def _per_example(fn, x, t):
  """fn(x, t) for a (B,) vector t, one example at a time."""
  return jax.vmap(lambda xi, ti: fn(xi[None], ti)[0])(x, t)


def _check_gaussian(mean, cov, name):
  mean, cov = jnp.asarray(mean, jnp.float32), jnp.asarray(cov, jnp.float32)
  if mean.ndim != 1 or cov.shape != mean.shape * 2:
    raise ConfigError(f"{name}: expected a mean of shape (D,) and a covariance of shape "
                      f"(D, D); got {mean.shape} and {cov.shape}.")
  return mean, cov


def gaussian_bridge(mean0, cov0, mean1, cov1, reference: Reference) -> GaussianBridge:
  """The Schrödinger bridge between N(mean0, cov0) (t = 0) and N(mean1, cov1) (t = 1)
  under a reference with a linear drift ('zero', 'linear', 'ornstein_uhlenbeck')."""
  mean0, cov0 = _check_gaussian(mean0, cov0, "mean0/cov0")
  mean1, cov1 = _check_gaussian(mean1, cov1, "mean1/cov1")
  if mean0.shape != mean1.shape:
    raise ConfigError(f"The two Gaussians have dimensions {mean0.shape[0]} and "
                      f"{mean1.shape[0]}; they must agree.")
  matrix, offset = reference.linear_coefficients()
  sigma = check_sigma(reference.diffusion(), "The reference's sigma")
  cross = _static_cross_covariance(cov0, cov1, jnp.float32(sigma), matrix, offset)
  return GaussianBridge(mean0, cov0, mean1, cov1, jnp.float32(sigma), cross, matrix, offset)


@jax.jit
def _static_cross_covariance(cov0, cov1, sigma, matrix, offset):
  """Cov(X0, X1) of the static bridge: Brownian closed form, or the whitened problem of a
  linear reference (module docstring)."""
  if matrix is None:
    return entropic_cross_covariance(cov0, cov1, sigma)
  phi, _, q = linear_transition(matrix, offset, sigma, 1.0)   # The shift moves means only.
  q_half, q_inv_half = spd_sqrt(q), spd_inv_sqrt(q)
  cov_u = q_inv_half @ phi @ cov0 @ phi.T @ q_inv_half
  cov_v = q_inv_half @ cov1 @ q_inv_half
  cross_uv = entropic_cross_covariance(cov_u, cov_v, 1.0)
  return jnp.linalg.solve(phi, q_half @ cross_uv @ q_half)
