"""Refused webhook deliveries keep only the head of their body; mark the ones that were cut."""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("workflows", "0007_unique_workflow_name_per_owner"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookdelivery",
            name="body_truncated",
            field=models.BooleanField(default=False),
        ),
    ]
