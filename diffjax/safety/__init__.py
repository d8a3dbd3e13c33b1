"""Safety and robustness of diffusion models on the class-conditional digits: TrojDiff
(`trojan`), unlearning by an erasing fine-tune (`erasure`; negative guidance is
`diffjax.guidance.negative`, SFD `diffjax.distillation.sfd`), the denoising-loss
classifier (`diffusion_classifier`) and UnlearnDiffAtk (`adversarial_condition`,
`subjects`), digits-C (`corruptions`), DDA's projection (`dda`) and SDA's
synthetic-domain fine-tune (`sda`); `digits_data` draws the digits by class on the device."""
from diffjax.safety import adversarial_condition
from diffjax.safety import diffusion_classifier
from diffjax.safety import digits_data
from diffjax.safety import erasure
from diffjax.safety import subjects
from diffjax.safety import trojan
from diffjax.safety import corruptions
from diffjax.safety import dda
from diffjax.safety import sda
