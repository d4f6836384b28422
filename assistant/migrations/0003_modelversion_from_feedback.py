"""ModelVersion moves from the feedback app to the assistant app, beside the serving registry.

The table is kept (state only), then renamed to the assistant app's name.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("assistant", "0002_timer_rang_at"),
        ("feedback", "0003_rephrases"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ModelVersion",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("kind", models.CharField(db_index=True, max_length=30)),
                        ("version", models.CharField(max_length=40)),
                        ("path", models.CharField(max_length=500)),
                        ("manifest", models.JSONField(default=dict)),
                        ("metrics", models.JSONField(default=dict)),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("candidate", "Candidate"),
                                    ("active", "Active"),
                                    ("retired", "Retired"),
                                    ("rejected", "Rejected"),
                                ],
                                db_index=True,
                                default="candidate",
                                max_length=10,
                            ),
                        ),
                        ("note", models.TextField(blank=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("promoted_at", models.DateTimeField(blank=True, null=True)),
                    ],
                    options={
                        "db_table": "feedback_modelversion",
                        "ordering": ["-created_at"],
                        "constraints": [
                            models.UniqueConstraint(fields=("kind", "version"), name="model_version_unique"),
                            models.UniqueConstraint(
                                condition=models.Q(("status", "active")), fields=("kind",), name="one_active_model_per_kind"
                            ),
                        ],
                    },
                ),
            ],
        ),
        migrations.AlterModelTable(name="modelversion", table=None),
    ]
