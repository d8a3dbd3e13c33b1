"""notebooks/quickstart.ipynb executes top to bottom (small setting), shows its plots and its
training progress, and installs diffjax only when the library is missing."""
import os
import subprocess
import sys

import nbformat
from nbclient import NotebookClient

from tests.helpers import REPO

NOTEBOOK = os.path.join(REPO, "notebooks", "quickstart.ipynb")


def test_quickstart_notebook_runs(tmp_path, monkeypatch):
  monkeypatch.setenv("DIFFJAX_NOTEBOOK_SMALL", "1")
  monkeypatch.setenv("DIFFJAX_NOTEBOOK_WORKDIR", str(tmp_path / "runs"))
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")
  monkeypatch.setenv("PYTHONPATH", REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  NotebookClient(notebook, timeout=600, kernel_name="python3",
                 resources={"metadata": {"path": str(tmp_path)}}).execute()
  outputs = [o for cell in notebook.cells if cell.cell_type == "code"
             for o in cell.get("outputs", [])]
  assert not [o for o in outputs if o.output_type == "error"]
  images = [o for o in outputs if "image/png" in o.get("data", {})]
  assert len(images) >= 5  # Two 2D scatters, trajectories, two digit grids.
  sources = "".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
  assert "import experiments" not in sources and "from configs" not in sources
  text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
  assert "W2 to held-out moons" in text and "digits_frechet_proxy" in text
  assert "step 100/200 | loss" in text and "100/100 | loss" in text  # Engine and fit progress.
  assert "loaded" in text and "at step 200" in text                   # runs.load.


def _install_cell():
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  return next(c.source for c in notebook.cells if c.cell_type == "code")


def test_install_check_is_not_fooled_by_a_folder_named_diffjax(tmp_path):
  """A clone named diffjax in the working directory is a namespace package, not the
  library: the cell installs from DIFFJAX_SOURCE (here a missing path, so pip fails,
  offline). With the library on the path it installs nothing."""
  (tmp_path / "diffjax").mkdir()
  source = str(tmp_path / "no_such_clone")
  env = dict(os.environ, DIFFJAX_SOURCE=source, PIP_NO_INDEX="1", PYTHONPATH="")
  # -S: no site-packages, where the development install of diffjax lives.
  missing = subprocess.run([sys.executable, "-S", "-c", _install_cell()], cwd=tmp_path,
                           env=env, capture_output=True, text=True, timeout=300)
  assert missing.returncode != 0 and "CalledProcessError" in missing.stderr
  assert f"'install', '-q', '{source}'" in missing.stderr
  present = subprocess.run([sys.executable, "-S", "-c", _install_cell()], cwd=tmp_path,
                           env=dict(env, PYTHONPATH=REPO), capture_output=True, text=True,
                           timeout=300)
  assert present.returncode == 0, present.stderr
