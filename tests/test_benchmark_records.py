"""What a benchmark result records about its peers, and the IsoFLOP grids' shape."""
import json

from benchmarks import common
from experiments import text_scaling


def test_results_record_each_peers_version_and_the_load(tmp_path, monkeypatch):
  monkeypatch.setattr(common, "RESULTS_DIR", str(tmp_path))
  monkeypatch.setattr(common, "peer_versions", lambda: {"torch": "2.13.0+cpu", "POT": None})
  common.write_results("probe", {"ratio": 1.5}, {}, "| a |", True, "python -m probe")
  machine = json.loads((tmp_path / "probe.json").read_text())["machine"]
  assert machine["peers"] == {"torch": "2.13.0+cpu", "POT": None}
  assert len(machine["load_average"]) == 3


def test_peer_versions_name_every_peer_and_read_installed_ones():
  versions = common.peer_versions()
  assert set(versions) == set(common.PEERS)
  assert all(v is None or isinstance(v, str) and v[0].isdigit() for v in versions.values())


def test_isoflop_grids_have_three_sizes_by_three_budgets_beyond_the_smoke_test():
  for name in ("medium", "full"):
    sizes, budgets = text_scaling.GRIDS[name]
    assert len(sizes) >= 3 and len(budgets) >= 3, name
    assert list(budgets) == sorted(set(budgets)), name
    widths = [d * depth for d, depth in sizes]
    assert widths == sorted(set(widths)), name
