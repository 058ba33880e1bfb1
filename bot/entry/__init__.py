"""Entry points: the `prereg-bot` CLI and the processes it starts (serve, socket, worker, sweep)."""
