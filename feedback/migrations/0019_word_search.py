"""Word search in the review inbox, by PostgreSQL's full-text search ('simple': every word as written,
lower-cased, no stemming): a GIN index on the turn's words as review/turns.py's SearchVector writes
them, so that a search reads the index or walks the likeliest defects, whichever the planner finds
cheaper. It replaces the trigram index of 0014 (substring search); a cluster's wordings, searched
instead of its turns, are kept on the cluster. The SQLite file `make run` falls back to has neither,
and scans."""

from django.db import migrations, models

INDEX = "turn_words_fts"
TRIGRAM_INDEX = "turn_text_trgm"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON feedback_turn "
        "USING gin (to_tsvector('simple'::regconfig, COALESCE(raw_text, ''::text)))"
    )
    schema_editor.execute(f"DROP INDEX IF EXISTS {TRIGRAM_INDEX}")
    # Until the next learning cycle regroups them, the clusters are searched by their examples.
    schema_editor.execute(
        "UPDATE feedback_defectcluster SET wordings = array_to_string(ARRAY("
        "SELECT jsonb_array_elements_text(examples)), E'\\n') WHERE jsonb_typeof(examples) = 'array'"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {TRIGRAM_INDEX} ON feedback_turn USING gin ((UPPER(raw_text::text)) gin_trgm_ops)"
    )


class Migration(migrations.Migration):
    dependencies = [("feedback", "0018_turn_skill_nlu_version")]

    operations = [
        migrations.AddField(
            model_name="defectcluster",
            name="wordings",
            field=models.TextField(
                blank=True,
                default="",
                help_text="Its wordings, one per line, most frequent first: what the inbox searches.",
            ),
        ),
        migrations.RunPython(create, drop),
    ]
