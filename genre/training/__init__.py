"""Training: devices, seeding, schedules, checkpoints and the train/evaluate loop."""
