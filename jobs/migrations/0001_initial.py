# JobRun, moved from the fleet app: the model state is created over the existing table ``fleet_jobrun``
# (created by fleet/migrations/0003_job_runs.py), so no row is copied or lost. 0002 renames the table.

import django.db.models.deletion
from django.db import migrations, models

import config.scopes


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('fleet', '0006_jobrun_moves_to_jobs'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='JobRun',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('job', models.CharField(help_text="The job's name, e.g. charging.plan_depot_night.", max_length=100)),
                        ('key', models.CharField(help_text='The work this run does; one success per key is enough.', max_length=255)),
                        ('task_name', models.CharField(blank=True, help_text="Celery task that runs the job; 'run now' sends it again.", max_length=200)),
                        ('arguments', models.JSONField(blank=True, default=dict, help_text="The task's keyword arguments (ids, dates).")),
                        ('night', models.DateField(blank=True, help_text='Local date of the evening the night starts.', null=True)),
                        ('status', models.CharField(choices=[('pending', 'Pending (queued)'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed'), ('interrupted', 'Interrupted (worker lost)')], default='pending', max_length=12)),
                        ('attempt', models.PositiveIntegerField(default=1, help_text='1 for the first run of this key, then 2, 3, ...')),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('started_at', models.DateTimeField(blank=True, null=True)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('duration_seconds', models.FloatField(blank=True, null=True)),
                        ('summary', models.CharField(blank=True, max_length=500)),
                        ('counts', models.JSONField(blank=True, default=dict, help_text='What the job did, e.g. vehicles planned.')),
                        ('error', models.TextField(blank=True)),
                        ('worker', models.CharField(blank=True, help_text='Host name of the worker that ran it.', max_length=200)),
                        ('celery_task_id', models.CharField(blank=True, max_length=64)),
                        ('depot', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='job_runs', to='fleet.depot')),
                    ],
                    options={
                        'db_table': 'fleet_jobrun',
                        'ordering': ['-created_at', '-id'],
                        'indexes': [models.Index(fields=['key', 'status'], name='job_run_key_status'), models.Index(fields=['job', 'night'], name='job_run_job_night'), models.Index(fields=['status', 'created_at'], name='job_run_status_created')],
                        'constraints': [models.UniqueConstraint(fields=('key', 'attempt'), name='job_run_attempt_unique'), models.UniqueConstraint(condition=models.Q(('status', 'running')), fields=('key',), name='one_running_job_run_per_key')],
                    },
                    bases=(config.scopes.DepotScoped, models.Model),
                ),
            ],
        ),
    ]
