"""Fill `name_key` for existing workflows, stripping their names; names that now clash within one owner
(say "Report" and "report ") get a " (2)", " (3)" suffix so no workflow is lost."""
import unicodedata

from django.db import migrations


def _key(name: str) -> str:
    # A copy of workflows.models.workflow_name_key as of this migration: migrations must not follow later edits.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).strip().casefold())


def fill_name_keys(apps, schema_editor) -> None:
    Workflow = apps.get_model("workflows", "Workflow")
    taken: set[tuple[int | None, str]] = set()
    for workflow in Workflow.objects.order_by("id").only("id", "name", "owner_id").iterator():
        name = workflow.name.strip() or f"workflow {workflow.id}"
        candidate, suffix = name, 1
        while (workflow.owner_id, _key(candidate)) in taken:
            suffix += 1
            candidate = f"{name[:190]} ({suffix})"
        taken.add((workflow.owner_id, _key(candidate)))
        Workflow.objects.filter(id=workflow.id).update(name=candidate, name_key=_key(candidate))


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0005_workflow_name_key"),
    ]

    operations = [
        migrations.RunPython(fill_name_keys, migrations.RunPython.noop),
    ]
