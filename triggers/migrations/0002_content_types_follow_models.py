"""Data: the content types of the moved models change app, so permissions granted on them (and admin log
entries) follow the models instead of pointing at a model the workflows app no longer has."""
from django.db import migrations

MOVED = ("webhookdelivery", "triggerstate", "pollseenkey")


def forwards(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        if not ContentType.objects.filter(app_label="triggers", model=model).exists():
            ContentType.objects.filter(app_label="workflows", model=model).update(app_label="triggers")


def backwards(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        if not ContentType.objects.filter(app_label="workflows", model=model).exists():
            ContentType.objects.filter(app_label="triggers", model=model).update(app_label="workflows")


class Migration(migrations.Migration):

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("triggers", "0001_trigger_models_from_workflows"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
