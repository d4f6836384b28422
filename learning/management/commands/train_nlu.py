"""Train the NLU (recipe first: the seed utterances; best: the seed and the public data), register it and let
the promotion gate make it the active version; or queue that training for the worker (--background)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Train the NLU model (the seed utterances by default), register it and promote it."

    def add_arguments(self, parser) -> None:
        from assistant.nlu import FIRST, RECIPES

        parser.add_argument(
            "--recipe",
            default=FIRST,
            choices=RECIPES,
            help="first: the seed utterances, frozen-encoder heads (about a minute); best: the seed and the public "
            "data of NLU_PUBLIC_DATA with NLU_BEST_ARCHITECTURE (tens of minutes).",
        )
        parser.add_argument(
            "--background",
            action="store_true",
            help="Queue the training as a learning job for the Celery worker and return; the serving processes "
            "pick the new version up when its gate promotes it.",
        )
        parser.add_argument(
            "--if-missing",
            action="store_true",
            help="Do nothing when the active NLU version was trained with this recipe or a better one "
            "(with --background: or when such a training job is already queued or running).",
        )
        parser.add_argument("--out", type=Path, default=None, help="Folder for versions (default MODEL_DIR/nlu).")
        parser.add_argument("--force", action="store_true", help="Retrain even if the data did not change.")
        parser.add_argument("--no-promote", action="store_true", help="Register as a candidate only.")
        parser.add_argument(
            "--force-promote",
            action="store_true",
            help="Promote even if the version regresses on validation (skips the promotion gate).",
        )
        parser.add_argument(
            "--architecture",
            default=None,
            choices=("heads", "joint"),
            help="heads: frozen MiniLM + trained heads (the first recipe's); joint: fine-tuned MiniLM with early "
            "exit (the best recipe's, NLU_BEST_ARCHITECTURE).",
        )
        parser.add_argument(
            "--data",
            action="append",
            type=Path,
            default=[],
            metavar="FILE",
            help="Training file to merge with the seed examples (repeatable): SLURP/HWU JSONL, Rasa YAML, CLINC JSON.",
        )
        parser.add_argument(
            "--format",
            default="auto",
            choices=("auto", "slurp", "hwu", "rasa", "clinc"),
            help="Format of every --data file (default: guess from each file).",
        )
        parser.add_argument(
            "--split",
            default=None,
            help="Only rows of this split where a file has a `split` field (e.g. devel); CLINC defaults to train.",
        )
        parser.add_argument("--no-seed", action="store_true", help="Train on the --data files only.")
        parser.add_argument(
            "--context",
            action="store_true",
            help="Train only the context re-ranker for the serving NLU version (a few seconds; with --if-missing "
            "only when none serves it).",
        )

    def handle(self, *args, **options) -> None:
        # Only the registry here: --if-missing must answer without importing torch.
        from assistant.nlu import FIRST, NLU_MODELS, RECIPES, recipe_of
        from assistant.registry import RegistryError

        recipe = options["recipe"]
        files = options["data"] or options["no_seed"]
        if files and (recipe != FIRST or options["background"]):
            raise CommandError("--data and --no-seed train here on those files: no --recipe, no --background")
        if options["context"]:
            self._context(options)
            return
        if options["if_missing"]:
            active = NLU_MODELS.active_artifact()
            served = recipe_of(active.manifest) if active is not None else None
            if served is not None and RECIPES.index(served) >= RECIPES.index(recipe):
                self.stdout.write(f"NLU {active.version} ({served}) is active ({active.path}); nothing to do.")
                if not options["background"]:
                    self._queue_context(active.version, if_missing=True)
                return
        if options["background"]:
            self._queue(recipe, options)
            return

        from learning.nlu.run import TrainingError
        from learning.nlu.service import recipe_examples, train_and_register

        last = [-1.0]

        def progress(fraction: float, message: str) -> None:
            if fraction - last[0] >= 0.1 or fraction >= 1.0:
                last[0] = fraction
                self.stdout.write(f"  {fraction:4.0%}  {message}")

        if options["data"]:
            examples, architecture, recipe = self._imported_examples(options), "heads", ""
        elif options["no_seed"]:
            raise CommandError("--no-seed needs at least one --data file")
        else:
            from assistant.nlu.datasets import DatasetError

            try:
                examples, architecture = recipe_examples(recipe)
            except DatasetError as exc:  # an unreadable NLU_PUBLIC_DATA file: say which, no traceback
                raise CommandError(f"{exc} (a file of NLU_PUBLIC_DATA)") from exc
        try:
            outcome = train_and_register(
                examples,
                recipe=recipe,
                out_base=options["out"],
                force=options["force"],
                promote=not options["no_promote"],
                force_promote=options["force_promote"],
                architecture=options["architecture"] or architecture,
                progress=progress,
                context=False,  # the worker trains the re-ranker: the new version serves now
            )
        except (TrainingError, RegistryError, FileExistsError) as exc:
            raise CommandError(str(exc)) from exc
        if outcome.promoted:
            self._queue_context(outcome.version.version)

        self.stdout.write("Examples per intent:")
        for intent, count in outcome.counts.items():
            self.stdout.write(f"  {intent:24s} {count:5d}")
        if outcome.skipped:
            self.stdout.write(self.style.WARNING(f"Skipped retraining: {outcome.reason}."))
        metrics = outcome.manifest.get("metrics", {}).get("validation", {})
        if metrics:
            slots = metrics.get("slots", {})
            oos = (
                f"OOS precision {metrics['oos_precision']:.3f} recall {metrics['oos_recall']:.3f}"
                if "oos_recall" in metrics
                else "no out-of-scope examples"
            )
            self.stdout.write(
                "Validation (held-out templates, {n} examples): intent accuracy {acc:.3f}, {oos}, "
                "slot F1 {f1:.3f} (P {p:.3f} R {r:.3f}), "
                "ECE {ece:.3f} (uncalibrated {ece0:.3f}), temperature {t:.2f}".format(
                    n=metrics.get("examples", 0),
                    acc=metrics.get("intent_accuracy", 0.0),
                    oos=oos,
                    f1=slots.get("f1", 0.0),
                    p=slots.get("precision", 0.0),
                    r=slots.get("recall", 0.0),
                    ece=metrics.get("ece", 0.0),
                    ece0=metrics.get("ece_uncalibrated", 0.0),
                    t=metrics.get("temperature", 1.0),
                )
            )
        if not outcome.skipped and outcome.gate_note:
            style = self.style.SUCCESS if outcome.promoted else self.style.WARNING
            self.stdout.write(style(f"Promotion gate: {outcome.gate_note}"))
        if not outcome.skipped and outcome.version is not None:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Registered NLU {outcome.version.version} ({outcome.version.status}) at {outcome.version.path} "
                    f"in {outcome.manifest.get('train_seconds', 0):.1f}s"
                )
            )

    def _context(self, options: dict) -> None:
        """--context: the re-ranker for the serving NLU version, here (or queued with --background)."""
        from assistant.nlu import NLU_MODELS
        from assistant.nlu.context import active_for

        active = NLU_MODELS.active_artifact()
        if active is None:
            raise CommandError("No NLU version serves: train one first (`manage.py train_nlu`).")
        if options["if_missing"] and (ranker := active_for(active.version)) is not None:
            self.stdout.write(f"Context re-ranker {ranker.version} serves NLU {active.version}; nothing to do.")
            return
        if options["background"]:
            self._queue_context(active.version)
            return
        from learning.nlu.context import train_and_register

        result = train_and_register(force=options["force"])
        if "skipped" in result:
            self.stdout.write(self.style.WARNING(f"Skipped: {result['skipped']}."))
            return
        m = result["metrics"]
        self.stdout.write(
            f"Held-out context examples: {m['context'].get('accuracy')} (NLU alone {m['context'].get('nlu_accuracy')}); "
            f"held-out ordinary requests: {m['ordinary'].get('accuracy')} (NLU alone "
            f"{m['ordinary'].get('nlu_accuracy')}); right reading among the candidates: {m['reachable']}"
        )
        style = self.style.SUCCESS if result["status"] == "active" else self.style.WARNING
        self.stdout.write(style(f"Context re-ranker {result['version']} ({result['status']}): {result['note']}"))

    def _queue_context(self, nlu_version: str, if_missing: bool = False) -> None:
        """A learning job for the worker: the context re-ranker for `nlu_version` (unless one serves it)."""
        from django.db import transaction

        from assistant.nlu.context import active_for
        from learning.models import Job

        if if_missing and active_for(nlu_version) is not None:
            return
        with transaction.atomic():
            job = Job.enqueue("train_context", {})
        self.stdout.write(f"Queued learning job {job.pk}: the worker trains the context re-ranker for {nlu_version}.")

    def _queue(self, recipe: str, options: dict) -> None:
        """A learning job for the worker (learning.train_nlu), unless one for this recipe is on its way."""
        from django.db import transaction

        from learning.models import Job

        waiting = Job.objects.filter(
            kind="train_nlu", status__in=(Job.Status.QUEUED, Job.Status.RUNNING), params__recipe=recipe
        ).first()
        if options["if_missing"] and waiting is not None:
            self.stdout.write(f"The {recipe} NLU is already {waiting.status} as learning job {waiting.pk}.")
            return
        params = {"recipe": recipe, "force": options["force"], "force_promote": options["force_promote"]}
        if options["architecture"]:
            params["architecture"] = options["architecture"]
        with transaction.atomic():
            job = Job.enqueue("train_nlu", params)
        self.stdout.write(
            f"Queued learning job {job.pk}: the worker trains the {recipe} NLU; the gate decides whether it serves."
        )

    def _imported_examples(self, options: dict) -> list:
        from assistant.intents import OUT_OF_SCOPE
        from assistant.nlu.datasets import DatasetError
        from learning.nlu.service import training_examples

        try:
            examples, report = training_examples(
                options["data"], fmt=options["format"], split=options["split"], with_seed=not options["no_seed"]
            )
        except DatasetError as exc:
            raise CommandError(str(exc)) from exc
        for f in report.files:
            split = f", {f['split']}" if f["split"] else ""
            self.stdout.write(f"Read {f['examples']} examples from {f['path']} ({f['format']}{split})")
        self._print_report(report, len(examples))
        if not any(e.intent == OUT_OF_SCOPE for e in examples):
            self.stdout.write(
                self.style.WARNING(
                    "No out_of_scope examples: out of scope will be decided by the confidence threshold alone."
                )
            )
        return examples

    def _print_report(self, report, n_total: int) -> None:
        from collections import Counter

        if report.seed_examples:
            self.stdout.write(f"Seed examples: {report.seed_examples}")
        if report.mapped_intents:
            self.stdout.write("Intents mapped:")
            for what, count in sorted(report.mapped_intents.items()):
                self.stdout.write(f"  {what:40s} {count:6d}")
        if report.mapped_slots:
            self.stdout.write("Slot types mapped:")
            for what, count in sorted(report.mapped_slots.items()):
                self.stdout.write(f"  {what:40s} {count:6d}")
        dropped = Counter(report.dropped)
        self.stdout.write(f"Dropped: {sum(dropped.values())}")
        for reason, count in sorted(dropped.items()):
            self.stdout.write(f"  {reason:50s} {count:6d}")
        self.stdout.write(
            f"Duplicates removed (same normalised text): {report.duplicates}, "
            f"of which with different intents: {len(report.conflicts)} (the first source's label kept)"
        )
        for text, intents in report.conflicts[:10]:
            self.stdout.write(f"  {text!r}: {' / '.join(intents)}")
        self.stdout.write(f"Training examples after merging: {n_total}")
