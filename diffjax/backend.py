"""XLA:CPU settings for diffjax's convolutional models, opt-in and applied before JAX starts.

With jaxlib 0.10, XLA:CPU hands each convolution to YNNPACK, which runs it on one core,
however many the machine has (measured on 2 cores: a 16x32x32x64 3x3 convolution takes
the same 13 ms on one core as on two). Removing "individual_convolution" from XLA's
YNNPACK fusion types sends standalone convolutions to XLA's multi-threaded Eigen kernels
instead (7 ms on two cores), and leaves YNNPACK's matrix products, which do use every
core, in place. It changes which library computes each convolution, not what is computed.

XLA reads XLA_FLAGS once, when JAX creates its CPU backend, so call `configure_cpu()`
before the first JAX computation in a process (before `import jax` is safest):

  from diffjax import backend
  backend.configure_cpu()
  import jax

The flag is added only for jaxlib versions it was measured with (an unknown XLA flag
aborts the process), only if XLA_FLAGS does not already choose YNNPACK fusion types, and
never for other backends (it is a no-op there: the flag only affects XLA:CPU).
"""
import importlib.metadata
import os
import sys
import warnings

try:  # A private API, to know whether XLA already read its flags: assume not if it moved.
  from jax._src import xla_bridge as _xla_bridge
except ImportError:
  _xla_bridge = None

CPU_XLA_FLAGS = ("--xla_cpu_experimental_ynn_fusion_type=-individual_convolution",)
# jaxlib versions (prefixes) whose XLA accepts CPU_XLA_FLAGS and was measured faster with them.
TESTED_JAXLIB = ("0.10.",)


def _jaxlib_version():
  try:
    return importlib.metadata.version("jaxlib")
  except importlib.metadata.PackageNotFoundError:
    return ""


def cpu_xla_flags(jaxlib_version=None, xla_flags=None):
  """The flags of CPU_XLA_FLAGS that `configure_cpu` would add (an empty tuple if none)."""
  version = _jaxlib_version() if jaxlib_version is None else jaxlib_version
  current = os.environ.get("XLA_FLAGS", "") if xla_flags is None else xla_flags
  if not version.startswith(TESTED_JAXLIB):
    return ()
  return tuple(f for f in CPU_XLA_FLAGS if f.split("=")[0] not in current)


def _backends_initialized():
  if "jax" not in sys.modules:
    return False
  try:
    return _xla_bridge.backends_are_initialized()
  except AttributeError:  # A private API (or None): assume the best if it moved.
    return False


def configure_cpu():
  """Appends `cpu_xla_flags()` to XLA_FLAGS; returns the flags it added.

  Warns (and changes nothing) if JAX's backends already exist, as XLA would ignore them.
  """
  flags = cpu_xla_flags()
  if flags and _backends_initialized():
    warnings.warn("diffjax.backend.configure_cpu() was called after JAX created its "
                  "backends; XLA_FLAGS is left unchanged.")
    return ()
  if flags:
    os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), *flags]).strip()
  return flags
