"""Task runs name how they failed (`failure`, runs.states.FailureKind); WorkflowRun.enqueued_at was never used."""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("runs", "0001_initial"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="workflowrun",
            name="enqueued_at",
        ),
        migrations.AddField(
            model_name="taskrun",
            name="failure",
            field=models.CharField(
                blank=True,
                choices=[("action_failed", "action_failed"), ("unknown_action", "unknown_action"),
                         ("template_error", "template_error"), ("invalid_inputs", "invalid_inputs"),
                         ("timed_out", "timed_out"), ("output_not_storable", "output_not_storable"),
                         ("worker_lost", "worker_lost")],
                db_default="", default="", max_length=32,
            ),
        ),
    ]
