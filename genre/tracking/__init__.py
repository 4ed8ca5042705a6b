"""Run logging: TensorBoard scalars, figures, text and HParams."""
