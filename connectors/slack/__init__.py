"""slack.*: the Slack Web API with the workflow owner's connected Slack account (an OAuth2 connection)."""
