"""The one command line of diffjax.

  python -m experiments.main --config=configs/quickstart.py --workdir=/tmp/quickstart \
      [--mode=train|eval|sample] [--config.train.num_steps=2000 ...]

Rerunning a command resumes its workdir. On several hosts run the same command on every
host with --multihost (cluster auto-detected), or give --coordinator_address,
--num_processes and --process_id to start the processes by hand.
"""
import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from diffjax.data import DatasetNotPreparedError
from diffjax.inception import InceptionWeightsError
from diffjax.registry import UnknownComponentError
from diffjax.train import (CheckpointError, IncompatibleWorkdirError, NonFiniteLossError,
                           initialize_distributed)

def define_flags(flag_values=flags.FLAGS, argv=None):
  """Defines the command line's flags on `flag_values` (tests use a fresh FlagValues).

  `argv` (default sys.argv) is where config_flags finds the --config.<key> overrides.
  """
  config_flags.DEFINE_config_file(
      "config", None,
      "Config file, e.g. configs/quickstart.py or configs/quickstart.py:tiny.",
      flag_values=flag_values, lock_config=True, sys_argv=argv)
  flags.DEFINE_string("workdir", None, "Directory of the run: config, checkpoints, logs.",
                      flag_values=flag_values)
  flags.DEFINE_enum("mode", "train", ["train", "eval", "sample"], "What to do.",
                    flag_values=flag_values)
  flags.DEFINE_bool("overwrite", False,
                    "Discard a run with a different config found in --workdir.",
                    flag_values=flag_values)
  flags.DEFINE_bool("multihost", False,
                    "Start multi-host JAX (jax.distributed.initialize).",
                    flag_values=flag_values)
  flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (--multihost).",
                      flag_values=flag_values)
  flags.DEFINE_integer("num_processes", None, "Number of processes (--multihost).",
                       flag_values=flag_values)
  flags.DEFINE_integer("process_id", None, "This process's index (--multihost).",
                       flag_values=flag_values)
  flags.mark_flags_as_required(["config", "workdir"], flag_values=flag_values)


define_flags()
FLAGS = flags.FLAGS

USER_ERRORS = (UnknownComponentError, IncompatibleWorkdirError, CheckpointError,
               NonFiniteLossError, DatasetNotPreparedError, InceptionWeightsError)


class _QuietLibraries(logging.logging.Filter):
  """Keeps orbax's per-save INFO chatter out of the run log (warnings still show)."""

  def filter(self, record):
    return record.levelno >= logging.WARNING or "/orbax/" not in record.pathname


def main(argv):
  logging.get_absl_handler().addFilter(_QuietLibraries())
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  manual = (FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  if FLAGS.multihost:
    initialize_distributed(*manual)
  elif any(v is not None for v in manual):
    raise app.UsageError("--coordinator_address/--num_processes/--process_id need "
                         "--multihost.")
  logging.info("JAX %s, process %d of %d, %d local / %d global devices (%s).",
               jax.__version__, jax.process_index(), jax.process_count(),
               jax.local_device_count(), jax.device_count(), jax.devices()[0].platform)
  import experiments  # pylint: disable=g-import-not-at-top
  try:
    experiments.run(FLAGS.config, FLAGS.workdir, FLAGS.mode, overwrite=FLAGS.overwrite)
  except USER_ERRORS as error:
    logging.error("%s", error)
    print(f"error: {error}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
