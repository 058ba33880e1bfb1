"""The Slack-facing layer: translates Slack payloads to service calls and results to Block Kit."""
