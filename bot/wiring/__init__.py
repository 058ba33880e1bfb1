"""The composition root: builds the services, the Bolt app and the web app from Settings."""
