"""One module per subcommand: options → frozen config → core → io. Each exposes ``register(app)``."""
