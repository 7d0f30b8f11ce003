"""Few-shot colorization benchmark: protocols, runner, reports."""
