"""A fuzz of bad values of the bridges family on the command line, run in-process
(`experiments.main.cli`): each ends with exit code 2, one line `error: ...` naming the bad
value and no traceback, before the workdir is created (nothing is trained: every value is
checked by `diffjax.bridges.check_bridge_config` or when the data are built)."""
import numpy as np
import pytest

from tests.test_cli_fuzz import _assert_refused, _run

TOY_IPF = "--config=configs/bridges/toy.py:ipf,tiny"
TOY_IMF = "--config=configs/bridges/toy.py:imf,tiny"
GAUSSIAN = "--config=configs/bridges/gaussian.py:sbcfm,tiny"
LOTKA = "--config=configs/bridges/lotka_volterra.py:tiny"

# (config, overrides, text the error line must contain).
CASES = [
    # Names, each from its registry.
    (TOY_IPF, ["--config.bridge.method=dsb"],
     "bridge.method='dsb' is not one of the valid names: imf, ipf, multimarginal, sbcfm, "
     "sbirr"),
    (TOY_IPF, ["--config.data.kind=images"], "data.kind='images' is not one of the valid "
                                             "names: gaussian, snapshots, toy2d"),
    (LOTKA, ["--config.reference.family=lotka"], "reference.family='lotka' is not one of"),
    (TOY_IMF, ["--config.bridge.initial_coupling=magic"], "bridge.initial_coupling='magic' "
                                                          "is not one of the valid names"),
    (TOY_IPF, ["--config.data.source=moonz"], "data.source='moonz' is not one of"),
    (LOTKA, ["--config.data.system=lorenz"], "data.system='lorenz' is not one of the valid "
                                             "names: lotka_volterra, repressilator"),
    (GAUSSIAN, ["--config.eval.end_metrics=('w2','w3')"], "'w3' is not a metric; valid "
                                                          "names: energy_distance, w2"),
    # The method and the data kind bridge different problems.
    (TOY_IPF, ["--config.data.kind=snapshots"],
     "bridge.method='ipf' bridges two marginals but data.kind='snapshots' gives snapshots"),
    (TOY_IPF, ["--config.bridge.method=sbirr"],
     "choose bridge.method from imf, ipf, sbcfm"),
    (LOTKA, ["--config.bridge.method=imf"],
     "choose bridge.method from multimarginal, sbirr"),
    # Non-positive sigma, steps, sizes.
    (TOY_IPF, ["--config.bridge.sigma=0"], "bridge.sigma must be a positive number"),
    (LOTKA, ["--config.bridge.sigma=-0.1"], "bridge.sigma must be a positive number"),
    (TOY_IPF, ["--config.bridge.sigma=nan"], "bridge.sigma must be a positive number"),
    (TOY_IPF, ["--config.bridge.num_steps=0"], "bridge.num_steps=0 is out of range"),
    (TOY_IMF, ["--config.bridge.steps_per_phase=-5"], "bridge.steps_per_phase=-5"),
    (TOY_IPF, ["--config.bridge.cache_size=0"], "bridge.cache_size=0 is out of range"),
    (LOTKA, ["--config.data.num_points=0"], "data.num_points=0 is out of range"),
    (LOTKA, ["--config.reference.num_outer=0"], "reference.num_outer=0 is out of range"),
    (LOTKA, ["--config.data.times_step=0"], "data.times_step=0.0 is out of range"),
    (TOY_IPF, ["--config.bridge.gamma_min=0"], "bridge.gamma_min=0.0 is out of range"),
    (TOY_IMF, ["--config.bridge.t_margin=0.5"], "bridge.t_margin=0.5 is out of range"),
    (GAUSSIAN, ["--config.data.dim=0"], "data.dim=0 is out of range"),
    # Rules tying keys together.
    (GAUSSIAN, ["--config.data.blocks=(1,2)"], "data.blocks=(1, 2) must sum to data.dim=2"),
    (GAUSSIAN, ["--config.data.blocks=(3,-1)"], "data.blocks=(3, -1) must be positive "
                                                "integers"),
    (TOY_IPF, ["--config.data.dim=3"], "data.dim=3 does not apply to data.kind='toy2d'"),
    (TOY_IPF, ["--config.bridge.caches_per_phase=3"],
     "bridge.steps_per_phase=20 must be divisible by bridge.caches_per_phase=3"),
    (TOY_IMF, ["--config.bridge.host_coupling=true",
               "--config.bridge.initial_coupling=sinkhorn_ot"],
     "bridge.initial_coupling='sinkhorn_ot' cannot be solved on the host"),
    (GAUSSIAN, ["--config.bridge.host_coupling=true"], "does not apply to "
                                                       "bridge.method='sbcfm'"),
    (LOTKA, ["--config.data.times_stop=0.0"], "at least two snapshots"),
    (LOTKA, ["--config.reference.family=repressilator"], "works in dimension 3; the data "
                                                         "have dimension 2"),
    (LOTKA, ["--config.reference.start=truth"], "reference.start='truth' is not one of the "
                                                "valid names: family, system"),
    (LOTKA, ["--config.reference.start=system", "--config.reference.family=linear"],
     "needs simulated snapshots (data.file='') of a system of family "
     "reference.family='linear'"),
    ("--config=configs/bridges/lotka_volterra.py:refined,vanilla", [],
     "Give one of refined, vanilla"),
    # Snapshot files.
    (LOTKA, ["--config.data.file=/nonexistent/snapshots.npz"], "does not exist"),
]


@pytest.mark.parametrize("config, argv, text", CASES,
                         ids=[" ".join([c.split("/")[-1]] + a) for c, a, _ in CASES])
def test_bad_bridges_value_is_refused_before_the_workdir(tmp_path, capfd, config, argv,
                                                         text):
  workdir = tmp_path / "run"
  code, output = _run([config, f"--workdir={workdir}", *argv], capfd)
  _assert_refused(code, output, 2, text)
  assert not workdir.exists()


@pytest.mark.parametrize("content, text", [
    (b"not an archive", "is not a readable .npz file"),
    (None, "holds a single array"),
    ({"points": [[[0.0, 1.0]]] * 3}, "has no 'times' array"),
    ({"times": [0.0, 1.0, 2.0], "snapshot_0": [[0.0, 1.0]]}, "missing ['snapshot_1', "
                                                             "'snapshot_2']"),
    ({"times": [0.0, 2.0, 1.0], "points": [[[0.0, 1.0]]] * 3}, "strictly increasing"),
])
def test_malformed_snapshot_file_is_refused(tmp_path, capfd, content, text):
  path = tmp_path / "snapshots.npz"
  if isinstance(content, bytes):
    path.write_bytes(content)
  elif content is None:
    with open(path, "wb") as f:
      np.save(f, np.zeros((3, 4)))     # An .npy array under an .npz name.
  else:
    np.savez(path, **{k: np.asarray(v) for k, v in content.items()})
  workdir = tmp_path / "run"
  code, output = _run([LOTKA, f"--workdir={workdir}", f"--config.data.file={path}"], capfd)
  _assert_refused(code, output, 2, text)
  assert not workdir.exists()
