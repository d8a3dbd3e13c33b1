"""The one command line of diffjax.

  python -m experiments.main --config=configs/quickstart.py --workdir=/tmp/quickstart \
      [--mode=train|eval|sample] [--overwrite] [--config.train.num_steps=2000 ...]

Rerunning a command resumes its workdir, a local directory or a bucket URL
(--workdir=gs://bucket/run, see README "Workdirs in a bucket"). On several hosts run the
same command on every host with --multihost (cluster auto-detected), or give
--coordinator_address, --num_processes and --process_id to start the processes by hand.

Every value is checked before the workdir is touched; a mistake ends the command with one
line `error: ...` naming the value and what is valid. Exit codes: 0 when the requested work
is done (or a SIGTERM stopped it cleanly, see README), 2 for a usage error (a flag, a
config file or value, the workdir), 1 for a failure while running (a NaN loss, no
checkpoint restores, another process holds the workdir). `--verbosity=0` (or higher) shows
every library's INFO logs, which are hidden by default.
"""
import difflib
import importlib.util
import os
import re
import signal
import sys
import traceback

import jax
from absl import flags, logging
from ml_collections import config_dict, config_flags

import experiments
from diffjax.data import DatasetNotPreparedError
from diffjax.errors import ConfigError
from diffjax.inception import InceptionWeightsError
from diffjax.registry import UnknownComponentError
from diffjax.train import (CheckpointError, NonFiniteLossError, WorkdirLockedError,
                           initialize_distributed)
from diffjax.train import logs, preemption
from diffjax.train.workdir import MetricsFileError

EXIT_DONE, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
HELP_FLAGS = ("--help", "-help", "-h", "--helpshort", "--helpfull", "-?")


class UsageError(Exception):
  """A bad command line: flags, the config file, or an override of a config key."""


USAGE_ERRORS = (UsageError, ConfigError, UnknownComponentError)
RUNTIME_ERRORS = (WorkdirLockedError, CheckpointError, NonFiniteLossError, MetricsFileError,
                  DatasetNotPreparedError, InceptionWeightsError, OSError)
USER_ERRORS = USAGE_ERRORS + RUNTIME_ERRORS


def define_flags(flag_values=flags.FLAGS, argv=None):
  """Defines the command line's flags on `flag_values` (each call of `cli` uses a fresh
  FlagValues). `argv` (default sys.argv) is where config_flags finds --config.<key>."""
  config_flags.DEFINE_config_file(
      "config", None,
      "Config file, e.g. configs/quickstart.py or configs/quickstart.py:tiny.",
      flag_values=flag_values, lock_config=True, sys_argv=argv)
  flags.DEFINE_string("workdir", None,
                      "Directory (or gs://bucket/path) of the run: config, checkpoints, logs.",
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


# --- The config file and its overrides, checked before absl parses them. ---

def _flag_value(argv, name):
  """The value of --name=V or --name V in argv (the last one), or None."""
  value = None
  for i, arg in enumerate(argv):
    if arg.startswith((f"--{name}=", f"-{name}=")):
      value = arg.split("=", 1)[1]
    elif arg in (f"--{name}", f"-{name}") and i + 1 < len(argv):
      value = argv[i + 1]
  return value


def _where(error, path):
  """' (file line N)' for the last frame of `error`'s traceback inside `path`."""
  frames = [f for f in traceback.extract_tb(error.__traceback__)
            if os.path.abspath(f.filename) == os.path.abspath(path)]
  return f" ({path} line {frames[-1].lineno})" if frames else ""


def _config_files_near(path):
  directory = os.path.dirname(path) or "."
  if not os.path.isdir(directory):
    return []
  names = [os.path.join(os.path.dirname(path), n) for n in os.listdir(directory)
           if n.endswith(".py") and not n.startswith("_")]
  return difflib.get_close_matches(path, names, n=3, cutoff=0.5)


def load_config_file(spec: str) -> config_dict.ConfigDict:
  """Loads `path[:arg]` as config_flags does (get_config(arg)), with one-line errors."""
  path, colon, arg = spec.partition(":")
  flag = f"--config={spec}"
  if not path:
    raise UsageError(f"{flag}: give a config file, e.g. --config=configs/quickstart.py.")
  if not os.path.isfile(path):
    near = _config_files_near(path)
    hint = f"; did you mean {' or '.join(near)}?" if near else "."
    raise UsageError(f"{flag}: there is no file {path}{hint}")
  module_spec = importlib.util.spec_from_file_location("diffjax_cli_config", path)
  if module_spec is None:
    raise UsageError(f"{flag}: {path} is not a Python file.")
  module = importlib.util.module_from_spec(module_spec)
  try:
    module_spec.loader.exec_module(module)
  except SyntaxError as error:
    raise UsageError(f"{flag}: {path} line {error.lineno}: {error.msg}.") from None
  except Exception as error:  # The user's file: report where it failed, in one line.
    raise UsageError(f"{flag}: loading {path} failed{_where(error, path)}: "
                     f"{type(error).__name__}: {error}") from None
  get_config = getattr(module, "get_config", None)
  if not callable(get_config):
    raise UsageError(f"{flag}: {path} defines no get_config() function.")
  try:
    config = get_config(arg) if colon else get_config()
  except Exception as error:  # e.g. ValueError("Unknown config argument ...").
    kind = "" if isinstance(error, ValueError) else f"{type(error).__name__}: "
    raise UsageError(f"{flag}: {kind}{' '.join(str(error).split())}{_where(error, path)}"
                     ) from None
  if not isinstance(config, config_dict.ConfigDict):
    raise UsageError(f"{flag}: get_config() returned {type(config).__name__}, not an "
                     "ml_collections.ConfigDict.")
  return config


def _dotted_keys(config, prefix=""):
  keys = []
  for name, value in config.items():
    keys.append(prefix + name)
    if isinstance(value, config_dict.ConfigDict):
      keys.extend(_dotted_keys(value, f"{prefix}{name}."))
  return keys


def _closest_keys(key, config):
  valid = _dotted_keys(config)
  leaf = key.rsplit(".", 1)[-1]
  same_leaf = [k for k in valid if k.rsplit(".", 1)[-1] == leaf]
  close = difflib.get_close_matches(key, valid, n=3, cutoff=0.6)
  return list(dict.fromkeys(same_leaf + close))[:3]


def check_override_keys(config, argv):
  """UsageError for a --config.<key> that the config does not have, naming the closest
  valid keys."""
  for arg in argv:
    match = re.match(r"^--?(?:no)?config\.([^=]+)", arg)
    if not match:
      continue
    key = match.group(1)
    node, walked = config, []
    for part in key.split("."):
      if not isinstance(node, config_dict.ConfigDict):
        raise UsageError(f"--config.{key}: {'.'.join(walked)} is a value, not a section.")
      if part not in node:
        close = _closest_keys(key, config)
        hint = (f"closest valid keys: {', '.join(close)}" if close else
                f"valid keys of {'.'.join(walked) or 'the config'}: "
                f"{', '.join(sorted(node.keys()))}")
        raise UsageError(f"--config.{key}: the config has no key {key}; {hint}.")
      node = node[part]
      walked.append(part)


def _describe_flag_error(error, config):
  """One line for an absl flag error; for a config override, the key's type and value."""
  text = " ".join(str(error).split())
  match = re.match(r"^flag --config\.([\w.]+)=(.*?): ", text)
  if match:
    key, value = match.groups()
    node = config
    for part in key.split("."):
      node = node[part]
    if isinstance(node, config_dict.ConfigDict):
      return (f"--config.{key}={value}: {key} is a section; set its keys, e.g. "
              f"--config.{key}.{sorted(node.keys())[0]}=...")
    kind = "true or false" if isinstance(node, bool) else type(node).__name__
    return f"--config.{key}={value}: {key} takes {kind} (the config file gives {node!r})."
  return text.replace("flag --", "--", 1)


ABSL_LOGGING_FLAGS = ("verbosity", "logtostderr", "alsologtostderr", "stderrthreshold")


def parse(argv):
  """Parses argv into FlagValues (fresh ones each call); UsageError with one line."""
  config_spec = _flag_value(argv[1:], "config")
  if config_spec is None:
    raise UsageError("--config is required: a config file, e.g. "
                     "--config=configs/quickstart.py (see README).")
  config = load_config_file(config_spec)
  check_override_keys(config, argv[1:])
  flag_values = flags.FlagValues()
  define_flags(flag_values, argv)
  # absl's logging flags (--verbosity, ...) are shared Flag objects: forget what an earlier
  # command line in this process (a notebook, a test) gave them.
  for name in ABSL_LOGGING_FLAGS:
    flags.FLAGS[name].unparse()
  flag_values.append_flag_values(flags.FLAGS)
  try:
    rest = flag_values(argv)
  except flags.Error as error:
    raise UsageError(_describe_flag_error(error, config)) from None
  if len(rest) > 1:
    raise UsageError(f"unexpected argument(s): {' '.join(rest[1:])} (flags take the form "
                     "--name=value).")
  if flag_values.overwrite and flag_values.mode != "train":
    raise UsageError(f"--overwrite discards a run before training it again; it does not "
                     f"apply to --mode={flag_values.mode}.")
  manual = (flag_values.coordinator_address, flag_values.num_processes,
            flag_values.process_id)
  if not flag_values.multihost and any(v is not None for v in manual):
    raise UsageError("--coordinator_address/--num_processes/--process_id need "
                     "--multihost.")
  if flag_values.multihost and any(v is not None for v in manual) and None in manual:
    raise UsageError("--multihost: give all of --coordinator_address, --num_processes and "
                     "--process_id, or none of them to auto-detect the cluster.")
  flags.FLAGS.mark_as_parsed()
  return flag_values


def _error_line(error) -> str:
  text = " ".join(str(error).split())
  if isinstance(error, OSError) and not isinstance(error, DatasetNotPreparedError):
    text = f"{type(error).__name__}: {text}"
  return f"error: {text}"


def cli(argv) -> int:
  """Runs the command line `argv` (argv[0] is the program) and returns its exit code."""
  if any(arg in HELP_FLAGS for arg in argv[1:]):
    help_flags = flags.FlagValues()
    define_flags(help_flags, ["main"])
    print(__doc__ + "\n" + help_flags.get_help(include_special_flags=False))
    return EXIT_DONE
  previous_handler = preemption.install()  # SIGTERM: exit 0 now, or save and stop.
  try:
    try:
      flag_values = parse(argv)
    except UsageError as error:
      print(_error_line(error), file=sys.stderr)
      return EXIT_USAGE
    verbose = flag_values["verbosity"].present or flag_values["v"].present
    logs.configure_logging(verbose=verbose)
    return _execute(flag_values)
  finally:
    if previous_handler is not None:
      signal.signal(signal.SIGTERM, previous_handler)


def _execute(flag_values) -> int:
  try:
    if flag_values.multihost:
      initialize_distributed(flag_values.coordinator_address, flag_values.num_processes,
                             flag_values.process_id)
    logging.vlog(1, "JAX %s, process %d of %d, %d local / %d global devices (%s).",
                 jax.__version__, jax.process_index(), jax.process_count(),
                 jax.local_device_count(), jax.device_count(), jax.devices()[0].platform)
    experiments.run(flag_values.config, flag_values.workdir, flag_values.mode,
                    overwrite=flag_values.overwrite)
  except USAGE_ERRORS as error:
    print(_error_line(error), file=sys.stderr)
    return EXIT_USAGE
  except RUNTIME_ERRORS as error:
    print(_error_line(error), file=sys.stderr)
    return EXIT_FAILURE
  except KeyboardInterrupt:
    print("Interrupted; rerun the same command to resume from the last checkpoint.",
          file=sys.stderr)
    return 130
  return EXIT_DONE


def main():
  sys.exit(cli(sys.argv))


if __name__ == "__main__":
  main()
