"""The family fuzz: bad values of every pipeline family's own keys (guidance studies, the
noise-aware classifier, images, diagnostics, forecasting) are refused by the command line
with one line, exit 2, before the workdir is touched (`tests/test_cli_fuzz.py` holds the
engine's and the toy family's cases; the bridges, text and graphs families have their own
files)."""
import pytest

from tests.test_cli_fuzz import _assert_refused, _run

GUIDED = "--config=configs/guidance/digits.py:tiny"
NOISY = "--config=configs/guidance/digits_noisy_classifier.py:tiny"
ELNINO = "--config=configs/guidance/elnino_forecast.py:tiny"
IMAGES = "--config=configs/images/digits.py:tiny"
HALLUCINATION = "--config=configs/diagnostics/hallucination.py:2d,tiny"
INTRINSIC = "--config=configs/diagnostics/intrinsic_dimension.py:sphere,tiny"
H_SPACE = "--config=configs/diagnostics/h_space.py:tiny"
SEISMIC = "--config=configs/science/seisfusion.py:tiny"
SEEDS = "--config=configs/science/seeds_lorenz96.py:tiny"
PADTS = "--config=configs/science/padts_var.py:tiny"

CASES = [
    # Guidance studies on the digits (configs/guidance/digits.py).
    (GUIDED, "--config.sample.guidance.cfg_scales=abc", "cfg_scales='abc' must be a number"),
    (GUIDED, "--config.sample.guidance.cfgpp_scales=(0.5,1.5)", "cfgpp_scales=1.5"),
    (GUIDED, "--config.sample.guidance.softplus_beta=0", "softplus_beta=0.0 is out of range"),
    (GUIDED, "--config.eval.study=clip", "eval.study='clip' is not one of"),
    (GUIDED, "--config.eval.mask=diagonal", "eval.mask='diagonal' is not one of the valid "
                                            "names: centre, right_half"),
    (GUIDED, "--config.eval.inpainting_draws=0", "eval.inpainting_draws=0"),
    (GUIDED, "--config.sample.guidance.method=cfgg", "Unknown guidance method 'cfgg'"),
    (GUIDED, "--config.data.image_size=-1", "data.image_size=-1"),
    # The noise-aware classifier.
    (NOISY, "--config.eval.noise_times=(0.5,2.0)", "eval.noise_times=2.0 is out of range"),
    (NOISY, "--config.classifier.width=0", "classifier.width=0"),
    (NOISY, "--config.path.name=linear", "needs a one-sided path"),
    # Forecasting El Niño.
    (ELNINO, "--config.sample.guidance.energy=cubic", "energy 'cubic'"),
    (ELNINO, "--config.data.context=0", "data.context=0"),
    (ELNINO, "--config.data.horizon=-1", "data.horizon=-1"),
    (ELNINO, "--config.eval.num_forecast_samples=0", "eval.num_forecast_samples=0"),
    (ELNINO, "--config.data.name=file", "data.name=file needs data.file"),
    (ELNINO, "--config.eval.refine.methods=('hmc',)", "'hmc'"),
    # Scientific data.
    (SEISMIC, "--config.data.mask_file=missing.npz", "missing.npz does not exist"),
    (SEISMIC, "--config.eval.missing=(1.0,)", "eval.missing"),
    (SEISMIC, "--config.sample.guidance.renoise=2", "renoise takes true or false"),
    (SEEDS, "--config.data.num_seeds=5", "must be below data.members=5"),
    (PADTS, "--config.data.channels=1", "data.channels=1"),
    # Images.
    (IMAGES, "--config.data.name=cifar11", "'cifar11'"),
    (IMAGES, "--config.eval.bpd_steps=0", "eval.bpd_steps=0"),
    (IMAGES, "--config.model.name=unett", "Unknown model 'unett'"),
    # Diagnostics.
    (HALLUCINATION, "--config.data.std=0", "data.std=0.0 is out of range"),
    (HALLUCINATION, "--config.eval.window=100", "eval.window=100 must be at most"),
    (HALLUCINATION, "--config.sample.solver=dopri5", "is adaptive"),
    (INTRINSIC, "--config.eval.noise_levels=(-1.0,)", "eval.noise_levels"),
    (INTRINSIC, "--config.data.name=torus", "'torus'"),
    (INTRINSIC, "--config.eval.threshold=1.5", "eval.threshold=1.5"),
    (H_SPACE, "--config.eval.source_class=12", "eval.source_class=12"),
    (H_SPACE, "--config.eval.edit_time=1.5", "eval.edit_time=1.5"),
    (H_SPACE, "--config.eval.target_class=1", "both 1"),
]


@pytest.mark.parametrize("config, override, text", CASES,
                         ids=[f"{c[0].split('/')[-1]} {c[1]}" for c in CASES])
def test_bad_family_value_is_refused_before_the_workdir(tmp_path, capfd, config, override,
                                                       text):
  workdir = tmp_path / "run"
  code, output = _run([config, f"--workdir={workdir}", override], capfd)
  _assert_refused(code, output, 2, text)
  assert not workdir.exists()
