"""``python -m tests.reliability.slow_cli ARGS`` = ``in2x ARGS`` (the real entry point,
``in2x_cli.cli.main``) with every training micro-step preceded by a sleep of
``IN2X_TEST_STEP_DELAY`` seconds. The numbers are untouched; the tiny model's steps just become
long enough for a seeded kill point to land in the middle of a run instead of after its end."""

from __future__ import annotations

import os
import sys
import time


def main() -> None:
    delay = float(os.environ.get("IN2X_TEST_STEP_DELAY", "0") or 0)
    if delay > 0:
        from transformers import trainer

        original = trainer.Trainer.training_step

        def slowed(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            time.sleep(delay)
            return original(self, *args, **kwargs)

        trainer.Trainer.training_step = slowed
    from in2x_cli import cli

    cli.main(sys.argv[1:])


if __name__ == "__main__":
    main()
