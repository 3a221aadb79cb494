"""Pure algorithms: no typer, no paths, no printing. Each docstring names its paper and formula."""
