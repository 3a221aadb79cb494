"""Training glue around the engines (TRL / transformers Trainer, accelerate): read top to bottom."""
