"""Give the secrets that predate owners to the first superuser, or else the first user.

A database holding secrets but no user at all keeps those rows with owner NULL: no workflow can read them until
an operator assigns an owner in the admin. No secret is ever dropped.
"""
from django.conf import settings
from django.db import migrations


def assign_owner(apps, schema_editor):
    Secret = apps.get_model("connectors", "Secret")
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    owner = User.objects.filter(is_superuser=True).order_by("id").first() or User.objects.order_by("id").first()
    if owner is not None:
        Secret.objects.filter(owner__isnull=True).update(owner=owner)


class Migration(migrations.Migration):

    dependencies = [
        ("connectors", "0003_secret_owner"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(assign_owner, migrations.RunPython.noop)]
