"""Shared conventions of diffjax benchmarks.

Every benchmark runs as `python -m benchmarks.<name> [--quick]`, prints a table and writes
`benchmarks/results/<name>.json` (top-level "figures": name -> number, plus free-form
details) and `benchmarks/results/<name>.md`.
"""
import argparse
from importlib import metadata
import json
import os
import platform
import time

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def parse_args(description, argv=None):
  parser = argparse.ArgumentParser(description=description)
  parser.add_argument("--quick", action="store_true",
                      help="A smaller run that finishes in under 3 minutes on a 2-core CPU.")
  return parser.parse_args(argv)


def markdown_table(header, rows):
  lines = ["| " + " | ".join(map(str, header)) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
  lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
  return "\n".join(lines)


def _fmt(value):
  if isinstance(value, float):
    return f"{value:.4g}"
  return str(value)


# The peers a benchmark may compare against (benchmarks/requirements.txt). A version string
# carries its build: torch "2.13.0+cpu" is the CPU wheel the requirements pin, a bare "2.15.0"
# from PyPI is a CUDA build.
PEERS = ("torch", "torchcfm", "diffusers", "diffrax", "POT")


def peer_versions():
  """Installed version (with build tag) of each peer, or None; read without importing it."""
  versions = {}
  for name in PEERS:
    try:
      versions[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
      versions[name] = None
  return versions


def machine_info():
  import jax  # pylint: disable=g-import-not-at-top
  return {"platform": platform.platform(), "processor": platform.processor(),
          "cpu_count": os.cpu_count(), "jax": jax.__version__,
          "devices": [str(d) for d in jax.devices()],
          "load_average": os.getloadavg(), "peers": peer_versions(),
          "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def write_results(name, figures, details, markdown, quick, command):
  """Writes results/<name>.json and results/<name>.md; prints the markdown."""
  os.makedirs(RESULTS_DIR, exist_ok=True)
  record = {"figures": figures, "quick": quick, "command": command,
            "machine": machine_info(), "details": details}
  with open(os.path.join(RESULTS_DIR, f"{name}.json"), "w") as f:
    json.dump(record, f, indent=2, default=float)
    f.write("\n")
  text = f"# {name}\n\nCommand: `{command}`\n\n{markdown}\n"
  with open(os.path.join(RESULTS_DIR, f"{name}.md"), "w") as f:
    f.write(text)
  print(text)
  print("figures:", json.dumps(figures, indent=2, default=float))
