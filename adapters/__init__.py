"""Front ends: the terminal, Slack and Discord, each a thin converter around the core."""
