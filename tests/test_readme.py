"""Every Python block of README.md runs on its own, as printed, in a fresh interpreter
(working directory: a temporary folder, so blocks that write a workdir leave nothing in
the repository)."""
import os
import re
import subprocess
import sys

import pytest

from tests.helpers import REPO


def python_blocks():
  with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
    text = f.read()
  return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


BLOCKS = python_blocks()


def test_the_readme_has_python_blocks():
  assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs_on_its_own(tmp_path, index):
  env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
             JAX_PLATFORMS="cpu")
  result = subprocess.run([sys.executable, "-c", BLOCKS[index]], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, f"README block {index}:\n{BLOCKS[index]}\n{result.stderr}"
