"""Run logs: at the default verbosity a run prints its own lines (start, progress,
evaluations, end) and every library's warnings and errors, and nothing else.

Libraries log much at INFO (orbax a dozen lines per checkpoint, JAX "Unable to initialize
backend 'tpu'" on every start). `configure_logging()` routes absl and Python logging to
stderr and drops INFO records that do not come from diffjax or experiments;
`configure_logging(verbose=True)` (the command line's --verbosity) keeps them all.
"""
import logging as std_logging
import os
import sys

from absl import logging

_DIFFJAX_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OWN_CODE = (_DIFFJAX_DIR + os.sep,
            os.path.join(os.path.dirname(_DIFFJAX_DIR), "experiments") + os.sep)


class QuietLibraries(std_logging.Filter):
  """Keeps warnings and errors, and INFO records of diffjax's own code."""

  def filter(self, record):
    return (record.levelno >= std_logging.WARNING
            or os.path.abspath(record.pathname).startswith(OWN_CODE))


def configure_logging(verbose: bool = False):
  """Sends logs to stderr through absl's handler (as `absl.app.run` does) at INFO, quiet
  unless `verbose`. Safe to call again (e.g. from a notebook)."""
  logging.use_absl_handler()
  handler = logging.get_absl_handler()
  # absl's handler keeps the stderr of when absl was imported; a notebook kernel (or a
  # test's capture) has replaced it since.
  handler.python_handler.setStream(sys.stderr)
  for old in [f for f in handler.filters if isinstance(f, QuietLibraries)]:
    handler.removeFilter(old)
  if not verbose:
    logging.set_verbosity(logging.INFO)
    handler.addFilter(QuietLibraries())
