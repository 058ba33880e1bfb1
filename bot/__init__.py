"""prereg-bot core: the rules of preregistration and the processes that run them."""
