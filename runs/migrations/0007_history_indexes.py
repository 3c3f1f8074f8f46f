from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("runs", "0006_worker_heartbeat"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="workflowrun",
            index=models.Index(fields=["trigger_kind", "-id"], name="run_trigger_kind_newest"),
        ),
        migrations.AddIndex(
            model_name="workflowrun",
            index=models.Index(fields=["started_at"], name="run_started"),
        ),
    ]
