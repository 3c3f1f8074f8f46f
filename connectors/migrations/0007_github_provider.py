"""GitHub becomes one Provider row, made from the GITHUB_* settings when a client id is configured.

Connected accounts keep `provider="github"`, which is this row's name, so they keep working. Without
GITHUB_CLIENT_ID nothing is created: an operator adds GitHub (or any provider) later from the admin, and the
token service still reads the GITHUB_* settings for GitHub while no row exists.
"""
from django.conf import settings
from django.db import migrations


def create_github(apps, schema_editor):
    Provider = apps.get_model("connectors", "Provider")
    client_id = getattr(settings, "GITHUB_CLIENT_ID", "")
    if not client_id or Provider.objects.filter(name="github").exists():
        return
    oauth_url = settings.GITHUB_OAUTH_URL.rstrip("/")
    Provider.objects.create(
        name="github", title="GitHub",
        authorize_url=f"{oauth_url}/login/oauth/authorize",
        token_url=f"{oauth_url}/login/oauth/access_token",
        userinfo_url=f"{settings.GITHUB_API_URL.rstrip('/')}/user",
        scopes=["repo"], client_id=client_id, client_secret=settings.GITHUB_CLIENT_SECRET or "",
        pkce=False,
    )


class Migration(migrations.Migration):

    dependencies = [("connectors", "0006_provider")]

    operations = [migrations.RunPython(create_github, migrations.RunPython.noop)]
