"""Test settings: strict rank promotion (silent broadcasting bugs fail loudly), float32, and
one persistent XLA compilation cache shared by the session's workers and the processes the
tests start (`JAX_COMPILATION_CACHE_DIR` is inherited): the same tiny programs are compiled
by many tests, and compiling is most of a tiny run's time on a CPU. Set
DIFFJAX_TEST_JAX_CACHE to choose the directory, or to "off"."""
import os
import tempfile

_CACHE = os.environ.get("DIFFJAX_TEST_JAX_CACHE") or os.path.join(
    tempfile.gettempdir(), f"diffjax-tests-jax-cache-{os.getuid()}")
if _CACHE != "off":
  os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _CACHE)
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position

jax.config.update("jax_numpy_rank_promotion", "raise")
if _CACHE != "off":
  jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
  jax.config.update("jax_persistent_cache_min_compile_time_secs",
                    float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))
