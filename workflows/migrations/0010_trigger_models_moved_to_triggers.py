"""WebhookDelivery, TriggerState and PollSeenKey now belong to the triggers app (triggers 0001): state only, the
tables and their rows stay."""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("workflows", "0009_definition_source"),
        ("triggers", "0001_trigger_models_from_workflows"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="WebhookDelivery"),
                migrations.DeleteModel(name="TriggerState"),
                migrations.DeleteModel(name="PollSeenKey"),
            ],
            database_operations=[],
        ),
    ]
