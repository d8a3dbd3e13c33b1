"""Few-step and one-step generation (`experiments.distillation`): one config per method, the
flow-matching teachers they distil (`teacher.py`), and the family's base."""
