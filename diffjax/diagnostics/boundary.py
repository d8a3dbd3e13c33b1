"""BoundaryDiffusion: a linear boundary in h-space between two classes, and edits across it.

"Boundary Guided Learning-Free Semantic Control with Diffusion Models" (Zhu, Wu, Deng,
Kang & Li, NeurIPS 2023): at a critical ("mixing") step t_c of the denoising trajectory
the bottleneck features h of images with and without an attribute are linearly separable;
a linear SVM gives the separating hyperplane n.h + b = 0 (unit normal n), and an image is
edited by moving its h across it, h' = h + (d_target - d(h)) n with d(h) = n.h + b the
signed distance (Sec. 3.3, eq. 9-10), with the rest of the denoising left unchanged.

  boundary = fit_linear_boundary(h, labels, source=1, target=7)   # h (N, *h_shape) at t_c
  d = boundary.signed_distance(h)                                 # (N,), > 0 on target side
  shift = boundary.crossing_strength(h, target_distance)          # (N,) for edited_apply
  t_c = critical_time(trajectory, ts)     # the automatic search of the critical step

The critical step is found automatically (the paper's Sec. 3.2, "mixing step"): by the
Gaussian annulus theorem a draw of the source N(0, s^2 I_d) lies, with high probability,
within O(s) of the sphere of radius s sqrt(d); along the DDIM inversion of data the
latents x_t reach that sphere only once the trajectory has mixed into the source. The
critical step is the least noisy time t of the inversion grid from which on (towards the
source) the mean norm of the inverted latents stays within a relative `tolerance` of
s sqrt(d): |mean_n |x_t^n| / (s sqrt(d)) - 1| <= tolerance, the default tolerance two
relative widths of the annulus, 2 / sqrt(2 d) (the norm of N(0, s^2 I_d) has standard
deviation ~ s / sqrt(2)).
"""
import dataclasses

import jax.numpy as jnp
import math

import numpy as np

from diffjax.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class LinearBoundary:
  """The hyperplane normal . h + offset = 0 with a unit `normal` (*h_shape) pointing to
  the target class; `accuracy` is the SVM's accuracy on the data it was fitted to."""
  normal: jnp.ndarray
  offset: float
  accuracy: float

  def signed_distance(self, h):
    """(N, *h_shape) -> (N,) n.h + b (positive on the target side)."""
    return h.reshape(h.shape[0], -1) @ self.normal.reshape(-1) + self.offset

  def crossing_strength(self, h, target_distance):
    """(N,) the multiple of `normal` that moves each h to signed distance
    `target_distance` (BoundaryDiffusion's edit, eq. 10)."""
    return target_distance - self.signed_distance(h)


def fit_linear_boundary(h, labels, source, target, regularization=1.0) -> LinearBoundary:
  """A linear SVM (scikit-learn's LinearSVC, squared hinge loss, C = regularization)
  separating the h (N, *h_shape) of class `target` (positive) from class `source`."""
  h, labels = np.asarray(h, np.float64), np.asarray(labels)
  chosen = (labels == source) | (labels == target)
  if np.sum(labels == source) < 2 or np.sum(labels == target) < 2:
    raise ConfigError(f"A boundary needs at least 2 examples of each class; classes "
                      f"{source} and {target} have {int(np.sum(labels == source))} and "
                      f"{int(np.sum(labels == target))}.")
  if regularization <= 0:
    raise ConfigError(f"The SVM regularization C={regularization} must be > 0.")
  x = h[chosen].reshape(int(chosen.sum()), -1)
  y = (labels[chosen] == target).astype(np.int32)
  # Imported here, not at the top: scikit-learn takes about 1 s to import.
  from sklearn.svm import LinearSVC  # pylint: disable=g-import-not-at-top
  svm = LinearSVC(C=regularization, max_iter=20_000).fit(x, y)
  w, b = svm.coef_[0], float(svm.intercept_[0])
  norm = float(np.linalg.norm(w))
  return LinearBoundary(jnp.asarray((w / norm).reshape(h.shape[1:]), jnp.float32),
                        b / norm, float(svm.score(x, y)))


def annulus_deviation(x, source_std=1.0):
  """x (N, ...) -> |mean_n |x^n| / (s sqrt(d)) - 1|, d = the size of one example."""
  x = np.asarray(x, np.float64).reshape(len(x), -1)
  radius = source_std * math.sqrt(x.shape[1])
  return abs(float(np.mean(np.linalg.norm(x, axis=1))) / radius - 1.0)


def default_tolerance(dim):
  """Two relative widths of the Gaussian annulus in dimension `dim`: 2 / sqrt(2 dim)."""
  return 2.0 / math.sqrt(2.0 * dim)


def critical_time(trajectory, ts, source_std=1.0, tolerance=None) -> float:
  """The automatic critical step (module docstring): trajectory (K + 1, N, ...) of DDIM-
  inverted latents at the times ts (K + 1,) running from the data towards the source;
  the first time from which every later (noisier) latent set is within `tolerance` of the
  annulus. Refuses a trajectory that never reaches it."""
  ts = np.asarray(ts, np.float64)
  trajectory = np.asarray(trajectory)
  if trajectory.shape[0] != ts.shape[0]:
    raise ConfigError(f"The inversion trajectory has {trajectory.shape[0]} states but the "
                      f"grid has {ts.shape[0]} times: they must match.")
  dim = int(np.prod(trajectory.shape[2:]))
  tolerance = default_tolerance(dim) if tolerance is None else tolerance
  inside = np.array([annulus_deviation(x, source_std) <= tolerance for x in trajectory])
  if not inside[-1]:
    end = annulus_deviation(trajectory[-1], source_std)
    raise ConfigError(f"The inverted latents end {end:.3f} from the Gaussian annulus, "
                      f"beyond the tolerance {tolerance:.3f}: invert further "
                      "towards the source or raise the tolerance.")
  outside = np.flatnonzero(~inside)
  first = 0 if outside.size == 0 else int(outside[-1]) + 1
  return float(ts[first])
