"""ModelVersion and Job now belong to the assistant and learning apps (their tables moved with them)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("feedback", "0003_rephrases"),
        ("assistant", "0003_modelversion_from_feedback"),
        ("learning", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="ModelVersion"),
                migrations.DeleteModel(name="Job"),
            ],
        ),
    ]
