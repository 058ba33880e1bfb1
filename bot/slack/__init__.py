"""The Slack platform: the Web API client and the ack-first running of listeners."""
