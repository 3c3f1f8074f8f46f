"""WebhookDelivery, TriggerState and PollSeenKey move here from the workflows app: state only.

The tables keep their names (`db_table`) and every row; workflows 0010 drops the models from that app's state.
"""
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("runs", "0001_initial"),
        ("workflows", "0009_definition_source"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='PollSeenKey',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('trigger_key', models.CharField(max_length=80)),
                        ('key', models.CharField(max_length=255)),
                        ('first_seen_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('last_seen_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('workflow', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='poll_seen_keys', to='workflows.workflow')),
                    ],
                    options={
                        'db_table': 'workflows_pollseenkey',
                        'indexes': [models.Index(fields=['workflow', 'trigger_key', 'last_seen_at'], name='poll_key_recency')],
                        'constraints': [models.UniqueConstraint(fields=('workflow', 'trigger_key', 'key'), name='unique_poll_seen_key')],
                    },
                ),
                migrations.CreateModel(
                    name='TriggerState',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('trigger_key', models.CharField(max_length=80)),
                        ('armed_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('last_fired_at', models.DateTimeField(blank=True, null=True)),
                        ('workflow', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='trigger_states', to='workflows.workflow')),
                    ],
                    options={
                        'db_table': 'workflows_triggerstate',
                        'constraints': [models.UniqueConstraint(fields=('workflow', 'trigger_key'), name='unique_trigger_state')],
                    },
                ),
                migrations.CreateModel(
                    name='WebhookDelivery',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('received_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('method', models.CharField(max_length=8)),
                        ('headers', models.JSONField(blank=True, default=dict)),
                        ('query', models.JSONField(blank=True, default=dict)),
                        ('body', models.BinaryField(blank=True, default=b'')),
                        ('body_truncated', models.BooleanField(default=False)),
                        ('status_code', models.PositiveSmallIntegerField()),
                        ('error', models.TextField(blank=True, default='')),
                        ('idempotency_key', models.CharField(blank=True, max_length=255, null=True)),
                        ('run', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='runs.workflowrun')),
                        ('workflow', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='webhook_deliveries', to='workflows.workflow')),
                    ],
                    options={
                        'db_table': 'workflows_webhookdelivery',
                        'verbose_name_plural': 'webhook deliveries',
                        'ordering': ['-id'],
                        'indexes': [models.Index(fields=['workflow', '-id'], name='delivery_workflow_newest')],
                        'constraints': [models.UniqueConstraint(condition=models.Q(('idempotency_key__isnull', False)), fields=('workflow', 'idempotency_key'), name='unique_webhook_idempotency_key')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
