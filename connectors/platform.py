"""The operator's policy for actions, read from Django settings into the engine's `ActionConfig`.

Workers, the CLI runner and poll triggers pass it to the executor; secrets are looked up elsewhere
(connectors/secrets.py).
"""
from __future__ import annotations

from django.conf import settings

from connectors.base import ActionConfig


def action_config(*, allow_shell: bool | None = None) -> ActionConfig:
    return ActionConfig(
        files_root=settings.AUTOMATION_FILES_ROOT,
        allow_shell=settings.AUTOMATION_ALLOW_SHELL if allow_shell is None else allow_shell,
        http_allow_private=settings.AUTOMATION_HTTP_ALLOW_PRIVATE,
        http_allowed_networks=tuple(settings.AUTOMATION_HTTP_ALLOWED_NETWORKS),
    )
