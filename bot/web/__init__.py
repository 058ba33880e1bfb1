"""The HTTP edge: the WSGI app of `serve`, the checks on Slack requests, the invitation pages."""
