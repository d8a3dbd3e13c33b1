"""Tools to study what a trained diffusion model learned: hallucination by mode interpolation, intrinsic dimension from the score, h-space directions and boundary editing."""
