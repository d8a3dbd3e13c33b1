"""Few-step and one-step generation: teachers (trained runs or the exact mixture oracle), the
registry of distillation methods and their students (`diffjax.distillation.methods`)."""
from diffjax.distillation.context import DistillationContext
from diffjax.distillation.context import build_context
from diffjax.distillation.coverage import ModeCoverage
from diffjax.distillation.coverage import mode_coverage
from diffjax.distillation.methods import DISTILLATION_METHODS
from diffjax.distillation.methods import DistillationMethod
from diffjax.distillation.methods import Student
from diffjax.distillation.methods import build_student
from diffjax.distillation.methods import distillation_task
from diffjax.distillation.methods import load_student
from diffjax.distillation.teachers import TEACHER_MIXTURES
from diffjax.distillation.teachers import Teacher
from diffjax.distillation.teachers import oracle_teacher
from diffjax.distillation.teachers import run_teacher
from diffjax.distillation.teachers import teacher_of_run
from diffjax.distillation.teachers import teacher_from_config
from diffjax.distillation import consistency as _consistency  # Registers consistency_*.
from diffjax.distillation import meanflow as _meanflow  # Registers meanflow.
from diffjax.distillation import shortcut as _shortcut  # Registers shortcut.
from diffjax.distillation import distribution_matching as _matching  # f_distill, dmd.
from diffjax.distillation import disback as _disback  # Registers disback.
from diffjax.distillation import sfd as _sfd  # Registers sfd.
