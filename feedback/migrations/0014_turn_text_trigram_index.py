"""Word search in the review inbox: a trigram index on the turn's words, upper-cased as Django's
icontains compares them (UPPER(raw_text::text) LIKE UPPER('%words%')), so a search reads the index
instead of every stored turn. PostgreSQL only: the SQLite file `make run` falls back to has no
pg_trgm, and scans."""

from django.db import migrations

INDEX = "turn_text_trgm"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON feedback_turn USING gin ((UPPER(raw_text::text)) gin_trgm_ops)"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("feedback", "0013_generated_label")]

    operations = [migrations.RunPython(create, drop)]
