"""Bad values of the graphs family (configs/graphs/community_small.py:tiny) through the
command line, in-process (`experiments.main.cli`): each ends with exit code 2 and one line
`error: ...` naming the value and what is valid, and the workdir is never created. No case
trains or compiles anything (they fail while the task is built)."""
import pytest

from experiments import main as cli

TINY = "--config=configs/graphs/community_small.py:tiny"

CASES = [
    (["--config.data.name=ego_small9"], "data.name='ego_small9' is not one of the valid "
                                        "names: community_small"),
    (["--config.data.min_size=16", "--config.data.max_size=14"],
     "data.min_size=16 exceeds data.max_size=14"),
    (["--config.data.min_size=2"], "got data.min_size=2"),
    (["--config.data.max_nodes=10"], "more than the configured maximum data.max_nodes=10"),
    (["--config.data.test_fraction=1.0"], "data.test_fraction=1.0 is out of range"),
    (["--config.data.num_features=3"], "data.num_features >= "),
    (["--config.sample.threshold=1.5"], "sample.threshold=1.5 is out of range"),
    (["--config.sample.snr=nan"], "sample.snr=nan must be a finite number"),
    (["--config.train.batch_size=32"], "train.batch_size=32 exceeds the 16 training graphs"),
    (["--config.eval.num_seeds=0"], "eval.num_seeds=0 is out of range"),
    (["--config.model.adj.name=transformer9"], "model.adj.name='transformer9' is not one of "
                                               "the valid names: gmh, gnn"),
    (["--config.model.x.name=mlp9"], "model.x.name='mlp9' is not one of the valid names: gcn"),
    (["--config.model.adj.hidden=0"], "model.adj.hidden=0 is out of range"),
    (["--config.model.adj.num_heads=3"], "must split evenly over model.adj.num_heads=3"),
    (["--config.sde.x.name=linear"], "sde.x.name='linear' is not a Gaussian diffusion path"),
    (["--config.sde.x.name=vp9"],
     "sde.x.name='vp9' is not one of the valid names: ddpm_discrete, edm, "),
    (["--config.sde.adj.name=ve"], "sde.adj.name='ve' takes the options sigma_min, "
                                   "sigma_max; remove sde.adj.beta_max, sde.adj.beta_min"),
    (["--config.sde.adj.beta_max=-1"], "sde.adj (vp, beta_max=-1.0, beta_min=0.1, "
                                       "s_min=0.0001): A Gaussian path needs sigma(0) > 0"),
    (["--config.sde.x.beta_min=-0.5"], "is not a valid Gaussian diffusion: its alpha or sigma "
                                     "is not finite"),
    (["--config.sde.x.s_min=2.0"], "its log-SNR decreases"),
]


@pytest.mark.parametrize("argv, text", CASES, ids=[" ".join(case[0]) for case in CASES])
def test_bad_graphs_value_is_refused_before_the_workdir(tmp_path, capfd, argv, text):
  workdir = tmp_path / "run"
  code = cli.cli(["main", TINY, f"--workdir={workdir}", *argv])
  out, err = capfd.readouterr()
  lines = [line for line in (out + err).splitlines() if line.strip()]
  assert code == 2, out + err
  assert len(lines) == 1 and lines[0].startswith("error: "), out + err
  assert text in lines[0], lines[0]
  assert "Traceback" not in out + err
  assert not workdir.exists()
