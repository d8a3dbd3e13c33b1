"""notebooks/quickstart.ipynb executes top to bottom (small setting) and shows its plots."""
import os

import nbformat
from nbclient import NotebookClient

from tests.helpers import REPO


def test_quickstart_notebook_runs(tmp_path, monkeypatch):
  monkeypatch.setenv("DIFFJAX_NOTEBOOK_SMALL", "1")
  monkeypatch.setenv("DIFFJAX_NOTEBOOK_WORKDIR", str(tmp_path / "runs"))
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")
  monkeypatch.setenv("PYTHONPATH", REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
  notebook = nbformat.read(os.path.join(REPO, "notebooks", "quickstart.ipynb"), as_version=4)
  NotebookClient(notebook, timeout=600, kernel_name="python3",
                 resources={"metadata": {"path": str(tmp_path)}}).execute()
  outputs = [o for cell in notebook.cells if cell.cell_type == "code"
             for o in cell.get("outputs", [])]
  assert not [o for o in outputs if o.output_type == "error"]
  images = [o for o in outputs if "image/png" in o.get("data", {})]
  assert len(images) >= 5  # Two 2D scatters, trajectories, two digit grids.
  text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
  assert "W2 to held-out moons" in text and "digits_frechet_proxy" in text
