"""Secrets get an owner; names become unique per owner instead of globally (existing rows: 0004)."""
from django.conf import settings
from django.db import migrations, models
import django.db.models.deletion


class Migration(migrations.Migration):

    dependencies = [
        ("connectors", "0002_connected_accounts"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="secret",
            name="owner",
            field=models.ForeignKey(
                blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="secrets",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(model_name="secret", name="name", field=models.CharField(max_length=100)),
        migrations.AddConstraint(
            model_name="secret",
            constraint=models.UniqueConstraint(fields=("owner", "name"), name="secret_unique_owner_name"),
        ),
    ]
