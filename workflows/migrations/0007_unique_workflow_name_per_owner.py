from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0006_fill_workflow_name_keys"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="workflow",
            constraint=models.UniqueConstraint(fields=("owner", "name_key"), name="unique_workflow_name_per_owner"),
        ),
        migrations.AddConstraint(
            model_name="workflow",
            constraint=models.UniqueConstraint(condition=models.Q(("owner__isnull", True)), fields=("name_key",),
                                               name="unique_workflow_name_without_owner"),
        ),
    ]
