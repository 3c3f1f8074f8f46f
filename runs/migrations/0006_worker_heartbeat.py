from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("runs", "0005_taskrun_upstream_counters"),
    ]

    operations = [
        migrations.CreateModel(
            name="WorkerHeartbeat",
            fields=[
                ("name", models.CharField(help_text="host:pid, as TaskRun.worker records it", max_length=200,
                                          primary_key=True, serialize=False)),
                ("beat_at", models.DateTimeField()),
                ("machine", models.CharField(blank=True, default="", max_length=100)),
            ],
        ),
    ]
