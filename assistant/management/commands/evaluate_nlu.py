"""Evaluate an NLU model on a labelled file (SLURP/HWU/CLINC/Rasa) and/or real ASR hypotheses."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Intent accuracy, span-level slot P/R/F1, exact match, latency and per-intent figures of the active "
        "NLU model (or --model PATH) on a labelled file; --asr-pairs scores ASR hypotheses against their "
        "reference's gold labels."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--data", type=Path, default=None, metavar="FILE", help="Labelled evaluation file.")
        parser.add_argument("--format", default="auto", choices=("auto", "slurp", "hwu", "rasa", "clinc"))
        parser.add_argument(
            "--split", default=None, help="Rows of this split (SLURP: test/devel; CLINC: test by default)."
        )
        parser.add_argument(
            "--asr-pairs", type=Path, default=None, metavar="FILE", help="ASR pairs JSONL (slurp/asr_pairs.jsonl)."
        )
        parser.add_argument("--limit", type=int, default=None, help="Only the first N examples (and N pairs).")
        parser.add_argument("--model", type=Path, default=None, help="An artifact folder instead of the active model.")
        parser.add_argument(
            "--threshold", type=float, default=None, help="OOS confidence threshold (default NLU_OOS_THRESHOLD)."
        )
        parser.add_argument(
            "--exit-thresholds",
            default=None,
            metavar="T1,T2,...",
            help="Joint models: also report accuracy, layers run and ms per early-exit intent-entropy threshold on --data.",
        )
        parser.add_argument(
            "--slot-exit-thresholds",
            default=None,
            metavar="S1,S2,...",
            help="Slot-tag entropy thresholds to pair with each --exit-thresholds value (default: the model's; 1 = off).",
        )
        parser.add_argument(
            "--typos",
            type=int,
            default=0,
            metavar="N",
            help="Also score --data with N mistyped words per sentence (keyboard noise, a fixed seed), and the "
            "noisy accuracy as a fraction of the clean one.",
        )
        parser.add_argument(
            "--context",
            action="store_true",
            help="Also read --data with the serving context re-ranker, each request in a situation drawn from the "
            "context scenarios: accuracy with and without it (words that say all should mean the same anywhere).",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object (the only output).")

    def handle(self, *args, **options) -> None:
        if options["data"] is None and options["asr_pairs"] is None:
            raise CommandError("give --data FILE and/or --asr-pairs FILE")
        if options["limit"] is not None and options["limit"] < 1:
            raise CommandError("--limit must be at least 1")
        if options["typos"] < 0 or (options["typos"] and options["data"] is None):
            raise CommandError("--typos N needs N >= 0 and a --data file to make noisy")
        if options["context"] and (options["data"] is None or options["model"] is not None):
            raise CommandError("--context reads a --data file with the serving NLU and its re-ranker (no --model)")
        from assistant.artifacts import ArtifactError
        from assistant.nlu import NLU_MODELS
        from assistant.nlu.datasets import DatasetError, ImportReport, detect_format
        from assistant.nlu.evaluate import asr_pair_items, early_exit_table, file_items, in_situations, score
        from assistant.nlu.loading import load_model
        from assistant.registry import ModelUnavailable

        thresholds = self._floats(options, "exit_thresholds")
        slot_thresholds = self._floats(options, "slot_exit_thresholds")
        import time

        started = time.perf_counter()
        try:
            model = load_model(options["model"]) if options["model"] is not None else NLU_MODELS.model()
        except (ArtifactError, ModelUnavailable) as exc:
            raise CommandError(str(exc)) from exc

        load_seconds = round(time.perf_counter() - started, 3)
        result: dict = {}
        try:
            if options["data"] is not None:
                fmt = options["format"] if options["format"] != "auto" else detect_format(options["data"])
                report = ImportReport()
                items = file_items(options["data"], fmt, options["split"], options["limit"], report)
                if not items:
                    raise CommandError(f"no examples to evaluate in {options['data']} (split {options['split']})")
                result = score(model, items, threshold=options["threshold"], clinc=fmt == "clinc")
                result.update(
                    data=str(options["data"]), format=fmt, split=options["split"], import_report=report.as_dict()
                )
                if options["typos"] > 0:
                    noisy = file_items(options["data"], fmt, options["split"], options["limit"], typos=options["typos"])
                    typos = score(model, noisy, threshold=options["threshold"], clinc=fmt == "clinc")
                    clean = result.get("intent_accuracy_argmax") or 0.0
                    typos["relative_intent_accuracy"] = (
                        round(typos["intent_accuracy_argmax"] / clean, 4) if clean else None
                    )
                    result["typos"] = {"per_sentence": options["typos"], **typos}
                if options["context"]:
                    result["context"] = in_situations(model, self._ranker(model), items, threshold=options["threshold"])
                if thresholds and hasattr(model, "n_layers"):
                    pairs = [(t, s) for t in thresholds for s in slot_thresholds or [model.slot_threshold]]
                    result["early_exit"] = early_exit_table(model, items, pairs)
                    result["early_exit_default"] = {
                        "threshold": model.threshold,
                        "slot_threshold": model.slot_threshold,
                    }
            if options["asr_pairs"] is not None:
                report = ImportReport()
                items, baseline = asr_pair_items(options["asr_pairs"], options["limit"], report)
                if not items:
                    raise CommandError(f"no usable ASR pairs in {options['asr_pairs']}")
                pairs = score(model, items, threshold=options["threshold"])
                pairs.update(baseline, data=str(options["asr_pairs"]), import_report=report.as_dict())
                if result:
                    result["asr_pairs"] = pairs
                else:
                    result = pairs
        except DatasetError as exc:
            raise CommandError(str(exc)) from exc

        result["model_load_seconds"] = load_seconds
        if options["json"]:
            self.stdout.write(json.dumps(result, sort_keys=True))
            return
        self._print(result)

    @staticmethod
    def _ranker(model):
        from assistant.nlu.context import CONTEXT_MODELS, serving_ranker

        ranker = serving_ranker(model.version)
        if ranker is None:
            active = CONTEXT_MODELS.active_artifact()
            why = f"it serves {active.manifest.get('nlu_version')}" if active is not None else "none is registered"
            raise CommandError(
                f"No context re-ranker serves NLU {model.version} ({why}); run `manage.py train_nlu --context`."
            )
        return ranker

    @staticmethod
    def _floats(options: dict, name: str) -> list[float]:
        if not options[name]:
            return []
        try:
            return [float(t) for t in options[name].split(",") if t.strip()]
        except ValueError as exc:
            raise CommandError(f"--{name.replace('_', '-')}: {exc}") from exc

    def _print(self, result: dict) -> None:
        self.stdout.write(f"model loaded in {result['model_load_seconds']:.2f}s")
        for row in result.get("early_exit", []):
            self.stdout.write(
                "early exit thresholds {threshold}/{slot_threshold}: accuracy {intent_accuracy:.4f}, layers {mean_layers:.2f} "
                "(saves {compute_saving:.0%}), slot F1 {slot_f1:.4f}, p50 {p50_ms} ms, mean {mean_ms} ms".format(**row)
            )
        for label, part in (("", result), ("ASR pairs: ", result.get("asr_pairs")), ("Typos: ", result.get("typos"))):
            if not part:
                continue
            self.stdout.write(
                f"{label}n={part['n']} intent accuracy {part['intent_accuracy']:.4f} "
                f"(argmax {part['intent_accuracy_argmax']:.4f}), slot P/R/F1 {part['slot_precision']:.4f}/"
                f"{part['slot_recall']:.4f}/{part['slot_f1']:.4f}, exact match {part['exact_match']:.4f}, "
                f"latency p50 {part['latency_ms']['p50']} ms p95 {part['latency_ms']['p95']} ms"
            )
            if part.get("relative_intent_accuracy") is not None:
                self.stdout.write(f"{label}{part['relative_intent_accuracy']:.4f} of the clean accuracy (argmax)")
            if "baseline_intent_accuracy" in part:
                self.stdout.write(
                    f"{label}baseline (pred_intent_on_hyp) accuracy {part['baseline_intent_accuracy']:.4f}"
                )
            if "in_scope_accuracy" in part:
                self.stdout.write(
                    f"in-scope accuracy {part['in_scope_accuracy']:.4f}, OOS precision {part['oos_precision']:.4f} "
                    f"recall {part['oos_recall']:.4f}"
                )
        if context := result.get("context"):
            self.stdout.write(
                f"In drawn situations, with re-ranker {context['context_version']}: intent accuracy "
                f"{context['intent_accuracy']:.4f} (NLU alone {context['intent_accuracy_alone']:.4f}); "
                f"the situation changed {context['changed']:.2%} of the readings"
            )
