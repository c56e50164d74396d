# JobRun moves to the ``jobs`` app: removed from fleet's model state only; the table and its rows stay, and
# jobs/migrations/0001_initial.py takes the model over (then renames the table).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('fleet', '0005_audit_history'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='JobRun')],
            database_operations=[],
        ),
    ]
