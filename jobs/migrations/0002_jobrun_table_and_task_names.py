# The moved JobRun settles in: its table is renamed to the jobs app's own (rows, constraints and indexes go
# with it), its content type follows it (admin history and permissions keep pointing at it), and the task
# names recorded before the move (on job runs, for "run now", and on beat's schedules) name the tasks' new home.

from django.db import migrations

OLD_TO_NEW_TASKS = {
    'fleet.job_tasks.nightly_job_task': 'jobs.tasks.nightly_job_task',
    'fleet.job_tasks.nightly_depot_task': 'jobs.tasks.nightly_depot_task',
    'fleet.job_tasks.job_chunk_task': 'jobs.tasks.job_chunk_task',
    'fleet.tasks.telemetry_capacity_estimates': 'batteries.tasks.telemetry_capacity_estimates',
}


def move_content_type(apps, schema_editor):
    ContentType = apps.get_model('contenttypes', 'ContentType')
    old = ContentType.objects.filter(app_label='fleet', model='jobrun').first()
    if old is None:
        return  # a new database: post_migrate creates jobs.jobrun
    ContentType.objects.filter(app_label='jobs', model='jobrun').delete()
    old.app_label = 'jobs'
    old.save(update_fields=['app_label'])


def rename_tasks(apps, schema_editor):
    JobRun = apps.get_model('jobs', 'JobRun')
    PeriodicTask = apps.get_model('django_celery_beat', 'PeriodicTask')
    for old, new in OLD_TO_NEW_TASKS.items():
        JobRun.objects.filter(task_name=old).update(task_name=new)
        PeriodicTask.objects.filter(task=old).update(task=new)


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0001_initial'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('django_celery_beat', '0019_alter_periodictasks_options'),
    ]

    operations = [
        migrations.AlterModelTable(name='jobrun', table=None),
        migrations.RunPython(move_content_type, migrations.RunPython.noop),
        migrations.RunPython(rename_tasks, migrations.RunPython.noop),
    ]
