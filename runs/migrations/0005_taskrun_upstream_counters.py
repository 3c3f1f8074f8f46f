
from django.db import migrations, models

FINAL = {"succeeded", "failed", "skipped", "cancelled"}


def fill_counters(apps, schema_editor):
    """Runs in flight when this applies: their pending task runs get the counters the engine now decides them by
    (a run started afterwards fills them itself)."""
    from workflows.services import spec_for_version  # the compiled definition, `steps:` or `tasks:` alike

    TaskRun = apps.get_model("runs", "TaskRun")
    top = TaskRun.objects.filter(item_index__isnull=True)
    in_flight = top.filter(status="pending", run__status="running")
    for run_id, version_id in set(in_flight.values_list("run_id", "run__workflow_version_id")):
        spec = spec_for_version(version_id)
        statuses = dict(top.filter(run_id=run_id).values_list("task_id", "status"))
        for row in top.filter(run_id=run_id, status="pending"):
            upstream = [statuses.get(dep, "succeeded") for dep in set(spec.tasks[row.task_id].depends_on)]
            row.upstream_left = sum(1 for status in upstream if status not in FINAL)
            row.upstream_succeeded = upstream.count("succeeded")
            row.upstream_failed = upstream.count("failed")
            row.save(update_fields=["upstream_left", "upstream_succeeded", "upstream_failed"])


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0004_trigger_kind_child_failure_handler'),
    ]

    operations = [
        migrations.AddField(
            model_name='taskrun',
            name='upstream_failed',
            field=models.IntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name='taskrun',
            name='upstream_left',
            field=models.IntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name='taskrun',
            name='upstream_succeeded',
            field=models.IntegerField(db_default=0, default=0),
        ),
        migrations.AddIndex(
            model_name='taskrun',
            index=models.Index(condition=models.Q(('item_index__isnull', True), ('status__in', ['pending', 'queued', 'running', 'waiting'])), fields=['run'], name='taskrun_unfinished'),
        ),
        migrations.RunPython(fill_counters, migrations.RunPython.noop),
    ]
