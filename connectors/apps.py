from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    name = "connectors"
    verbose_name = "Connections and secrets"

    def ready(self) -> None:
        # The ConnectedAccount admin lives with the rest of the GitHub package.
        from connectors.github import admin as _github_admin  # noqa: F401
