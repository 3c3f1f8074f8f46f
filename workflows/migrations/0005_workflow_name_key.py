from django.db import migrations, models


class Migration(migrations.Migration):
    """Names become unique per owner (SPEC §11): add the normalised key and drop the global unique on `name`."""

    dependencies = [
        ("workflows", "0004_webhook_deliveries_and_trigger_state"),
    ]

    operations = [
        migrations.AddField(
            model_name="workflow",
            name="name_key",
            field=models.CharField(default="", editable=False, max_length=800),
            preserve_default=False,
        ),
        migrations.AlterField(
            model_name="workflow",
            name="name",
            field=models.CharField(db_index=True, max_length=200),
        ),
    ]
