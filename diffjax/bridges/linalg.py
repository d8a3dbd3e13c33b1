"""Small matrix functions the Gaussian bridges need (float32-safe, jit-able)."""
import jax
import jax.numpy as jnp

_TAYLOR_DEGREE = 12
_MAX_SQUARINGS = 40


def symmetrize(m):
  """(D, D) -> (m + m^T) / 2."""
  return 0.5 * (m + m.T)


def spd_power(m, power):
  """m^power for a symmetric positive-definite (D, D) matrix, by its eigendecomposition
  (eigenvalues floored at 1e-30 so that power < 0 stays finite)."""
  values, vectors = jnp.linalg.eigh(symmetrize(m))
  values = jnp.maximum(values, 1e-30)
  return symmetrize((vectors * (values ** power)[None]) @ vectors.T)


def spd_sqrt(m):
  return spd_power(m, 0.5)


def spd_inv_sqrt(m):
  return spd_power(m, -0.5)


def spd_solve(m, b):
  """m^{-1} b for a symmetric positive-definite m (D, D) and b (D, ...), by Cholesky
  (differentiable at repeated eigenvalues, where an eigendecomposition's derivative is
  not, and it compiles faster than an LU solve)."""
  factor = jnp.linalg.cholesky(symmetrize(m))
  return jax.scipy.linalg.cho_solve((factor, True), b)


def expm(m):
  """The matrix exponential of a (D, D) matrix by scaling and squaring: the degree-12
  Taylor polynomial of m / 2^s with ||m / 2^s||_inf <= 1/2, squared s times (s <= 40).
  The truncation error is below 0.5^13 / 13! ~ 2e-14 relative, far below float32; it
  compiles to a few small loops (jax.scipy.linalg.expm's Padé branches take seconds)."""
  norm = jnp.max(jnp.sum(jnp.abs(m), axis=1))
  squarings = jnp.clip(jnp.ceil(jnp.log2(jnp.maximum(norm, 1e-30))) + 1, 0, _MAX_SQUARINGS)
  scaled = m / 2.0 ** squarings
  eye = jnp.eye(m.shape[0], dtype=m.dtype)

  def horner(k, acc):   # acc <- I + scaled acc / (degree - k)
    return eye + scaled @ acc / (_TAYLOR_DEGREE - k)

  power = jax.lax.fori_loop(0, _TAYLOR_DEGREE, horner, eye)

  def square(j, acc):
    return jnp.where(j < squarings, acc @ acc, acc)

  return jax.lax.fori_loop(0, _MAX_SQUARINGS, square, power)
