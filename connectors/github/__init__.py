"""GitHub: the OAuth2 connect flow (social-auth), connected accounts, the REST client and the github.* actions."""
