from django.apps import AppConfig

from workflows.trigger_specs import install_trigger_catalog

from .registry import default_registry


class TriggersConfig(AppConfig):
    name = "triggers"
    verbose_name = "Triggers"

    def ready(self) -> None:
        from . import signals

        signals.connect()
        # The parser below learns every registered trigger type (entry points included) without importing us.
        install_trigger_catalog(default_registry())
