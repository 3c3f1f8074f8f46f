"""http.request: one HTTP call through connectors.net.safe_request."""
