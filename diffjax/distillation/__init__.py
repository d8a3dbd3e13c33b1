"""Few-step and one-step generation (placeholder until the scaffold merges)."""
