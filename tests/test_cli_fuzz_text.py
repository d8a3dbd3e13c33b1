"""Bad values of the text family on the command line, run in-process
(`experiments.main.cli`): each ends with exit code 2, one line `error: ...` naming the bad
value, no traceback, and no workdir (see tests/test_cli_fuzz.py for the engine's keys)."""
import pytest

from tests.test_cli_fuzz import _assert_refused, _run

ARITHMETIC = "--config=configs/discrete/arithmetic.py:tiny"
ANCESTRAL = "--config=configs/discrete/arithmetic.py:ancestral,tiny"
CHARS = "--config=configs/discrete/chars.py:tiny"
CHARS_AR = "--config=configs/discrete/chars.py:ar,tiny"

# (config, override, text the error line must contain).
CASES = [
    # Data: a value the data cannot use, or one the chosen data would ignore.
    (CHARS, "--config.data.sequence_length=0", "data.sequence_length=0 must be an integer >= 1"),
    (ARITHMETIC, "--config.data.sequence_length=4", "data.sequence_length=4 does not apply to "
                                                    "the arithmetic language"),
    (ARITHMETIC, "--config.data.digits=0", "data.digits=0 is out of range"),
    (CHARS, "--config.data.tokenizer=words", "data.tokenizer='words' is not one of the valid "
                                             "names: bytes, chars"),
    (CHARS, "--config.data.name=arithmetic", "does not apply to data.name='arithmetic', "
                                             "which reads: digits, sequence_length"),
    (CHARS, "--config.data.max_characters=-1", "data.max_characters=-1 is out of range"),
    # Components: token components only, options they take, models that fit the objective.
    (ARITHMETIC, "--config.path.name=linear", "path.name='linear' is not one of the valid "
                                              "names: masked"),
    (ARITHMETIC, "--config.objective.name=flow_matching", "objective.name='flow_matching' is "
                                                          "not one of the valid names: "
                                                          "autoregressive, masked_diffusion"),
    (ARITHMETIC, "--config.objective.name=autoregressive", "objective.estimator does not apply "
                                                           "to objective.name='autoregressive'"),
    (CHARS_AR, "--config.model.causal=False", "model.causal=False does not fit the "
                                              "autoregressive objective"),
    (CHARS, "--config.model.num_classes=2", "model.num_classes=2 but the data have 0 classes"),
    (ARITHMETIC, "--config.model.positions=alibi", "model.positions='alibi'"),
    # Sampling.
    (ARITHMETIC, "--config.sample.solver=first_hitter", "Unknown sampler 'first_hitter'"),
    (ARITHMETIC, "--config.sample.solver=heun", "sample.solver='heun' reads ['velocity']"),
    (CHARS_AR, "--config.sample.solver=first_hitting", "sample.solver='first_hitting' reads "
                                                       "['logits']"),
    (ARITHMETIC, "--config.sample.num_steps=5", "sample.num_steps=5 is too few for "
                                                "'first_hitting' on 9 positions"),
    (ARITHMETIC, "--config.sample.temperature=0", "sample.temperature=0.0 is out of range"),
    (ARITHMETIC, "--config.sample.top_p=1.5", "sample.top_p=1.5 is out of range"),
    (ANCESTRAL, "--config.model.time_input=True", "needs a time-free network"),
    # Evaluation.
    (ARITHMETIC, "--config.eval.prompt=12+34=05678", "longer than the sequence length 9"),
    (ARITHMETIC, "--config.eval.prompt=ab", "Characters ['a', 'b'] are not in the "
                                            "tokenizer's alphabet"),
    (ARITHMETIC, "--config.eval.nelbo_samples=0", "eval.nelbo_samples=0 is out of range"),
    (ARITHMETIC, "--config.eval.cfg_weights=abc", "eval.cfg_weights='abc' must be a number"),
    (CHARS, "--config.eval.cfg_weights=(1.0,)", "eval.cfg_weights=(1.0,) guide answers"),
]


@pytest.mark.parametrize("config, override, text", CASES,
                         ids=[f"{c.split('/')[-1]} {o}" for c, o, _ in CASES])
def test_bad_text_value_is_refused_before_the_workdir(tmp_path, capfd, config, override,
                                                      text):
  workdir = tmp_path / "run"
  code, output = _run([config, f"--workdir={workdir}", override], capfd)
  _assert_refused(code, output, 2, text)
  assert not workdir.exists()
