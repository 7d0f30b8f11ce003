"""The one training loop (checkpoints, resume, logs, DDP, bf16, NaN rollback) and test-time adaptation."""
