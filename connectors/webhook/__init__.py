"""webhook.send: a signed JSON POST to another system's webhook."""
