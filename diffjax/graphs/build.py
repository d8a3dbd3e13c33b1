"""GDSS's system of SDEs built from config sections, every name and option checked first.

`build_graph_diffusion(sde, model)` reads sde.x / sde.adj (a Gaussian path each: `name`
and its options, `diffjax.paths`) and model.x / model.adj (a network each: `name` and its
options, `diffjax.graphs.networks`). A bad name, an option the component does not take or a
path whose coefficients are not a valid Gaussian diffusion (not finite, sigma(0) = 0, a
log-SNR that decreases from noise to data) raises a one-line ConfigError naming the key.
"""
import inspect
from typing import Mapping

import numpy as np

from diffjax.errors import ConfigError
from diffjax.graphs.diffusion import GraphDiffusion
from diffjax.graphs.networks import ADJACENCY_NETWORKS, NODE_NETWORKS
from diffjax.paths import PATHS
from diffjax.registry import Registry

# Times at which a path's coefficients are checked.
_CHECK_TIMES = np.linspace(0.0, 1.0, 33, dtype=np.float32)


def _options(section: Mapping) -> dict:
  return {k: v for k, v in section.items() if k != "name"}


def _describe(where, name, options):
  listed = ", ".join(f"{k}={v!r}" for k, v in options.items())
  return f"{where} ({name}{', ' if listed else ''}{listed})"


def _build(registry: Registry, where: str, section: Mapping, valid_names=None):
  """registry[section.name](**options), with one-line errors naming `where`."""
  name = section.get("name")
  names = registry.names() if valid_names is None else valid_names()
  if name not in registry:
    raise ConfigError(f"{where}.name={name!r} is not one of the valid names: "
                      f"{', '.join(names)}.")
  factory, options = registry.get(name), _options(section)
  parameters = inspect.signature(factory).parameters
  if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
    extra = sorted(set(options) - set(parameters))
    if extra:
      valid = [p for p in parameters if p not in ("parent", "name")]
      raise ConfigError(f"{where}.name={name!r} takes the options {', '.join(valid)}; "
                        f"remove {', '.join(f'{where}.{k}' for k in extra)}.")
  try:
    return factory(**options)
  except ConfigError:
    raise
  except (TypeError, ValueError) as error:
    raise ConfigError(f"{_describe(where, name, options)}: {error}") from None


def _gaussian_path_names():
  """The registered paths that are Gaussian diffusions with their default options."""
  names = []
  for name in PATHS.names():
    try:
      if PATHS.get(name)().gaussian is not None:
        names.append(name)
    except (TypeError, ValueError):   # A path that needs options it is not given.
      continue
  return names


def check_gaussian_path(path, where: str, options: Mapping):
  """ConfigError unless alpha and sigma are finite on [0, 1], sigma > 0 before the data end
  and the log-SNR never decreases from t = 0 (noise) to t = 1 (data)."""
  view = path.gaussian
  alpha, sigma = (np.asarray(f(_CHECK_TIMES)) for f in (view.alpha, view.sigma))
  log_snr = np.asarray(view.log_snr(_CHECK_TIMES))
  problem = None
  if not (np.isfinite(alpha).all() and np.isfinite(sigma).all()):
    problem = "its alpha or sigma is not finite on [0, 1]"
  elif not (sigma[:-1] > 0).all() or (alpha < 0).any():
    problem = "sigma must be > 0 before t = 1 and alpha >= 0"
  elif (np.diff(log_snr) < -1e-6).any():
    problem = "its log-SNR decreases from t = 0 (noise) to t = 1 (data)"
  if problem:
    raise ConfigError(f"{_describe(where, path.name, options)} is not a valid Gaussian "
                      f"diffusion: {problem}.")


def build_gaussian_path(where: str, section: Mapping):
  """The Gaussian path named by `section` (checked; module docstring)."""
  name = section.get("name")
  if name in PATHS and name not in _gaussian_path_names():
    raise ConfigError(f"{where}.name={name!r} is not a Gaussian diffusion path; GDSS "
                      f"diffuses X and A on Gaussian paths: "
                      f"{', '.join(_gaussian_path_names())}.")
  path = _build(PATHS, where, section, _gaussian_path_names)
  check_gaussian_path(path, where, _options(section))
  return path


def build_graph_diffusion(sde: Mapping, model: Mapping) -> GraphDiffusion:
  """The `GraphDiffusion` of config sections sde (x, adj) and model (x, adj)."""
  return GraphDiffusion(build_gaussian_path("sde.x", sde["x"]),
                        build_gaussian_path("sde.adj", sde["adj"]),
                        _build(NODE_NETWORKS, "model.x", model["x"]),
                        _build(ADJACENCY_NETWORKS, "model.adj", model["adj"]))
