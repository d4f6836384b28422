"""Importers for the NLU training/evaluation formats people have, into seed.Example.

    slurp   JSONL: `sentence` + `annotation` (or `sentence_annotation`) with inline
            `[type : value]` slots, `intent`; optional `split` (devel/test)
    hwu     JSONL: `text` + `annotation` (same inline style), `intent`
    rasa    YAML: `nlu:` / `- intent: x` / `examples: |` lines with `[value](entity)`
            or `[value]{"entity": "x"}`
    clinc   CLINC150 data_full.json: sections of [text, intent] rows; the `oos_*`
            sections (intent "oos") become out_of_scope

Every text goes through assistant.text.normalise, as the pipeline's does,
and each slot span is found again in the normalised text ("five am" -> "5 am"); an
example whose span cannot be found is dropped and counted. Intent and slot names
pass through the explicit tables below; what is dropped is counted per reason in
an ImportReport, never silently.

Reading files only: no database, no torch.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from assistant.intents import OUT_OF_SCOPE
from assistant.nlu.labels import HWU_DROPPED_INTENTS, our_slot_type, trained_intent
from assistant.nlu.seed import Example
from assistant.text import normalise
from assistant.turns import SlotSpan

FORMATS = ("slurp", "hwu", "rasa", "clinc")

# -- label names (assistant/nlu/labels.py) ---------------------------------------------------
# SLURP names pass through unchanged; HWU's extra dialogue acts are dropped; CLINC's and
# Rasa's out-of-scope classes become ours. A value of None drops the example (reason
# "intent dropped: <name>"). Slot types go through labels.our_slot_type.
INTENT_MAPS: dict[str, dict[str, str | None]] = {
    "slurp": {},
    "hwu": dict.fromkeys(HWU_DROPPED_INTENTS),
    "clinc": {"oos": OUT_OF_SCOPE},
    "rasa": {"out_of_scope": OUT_OF_SCOPE, "nlu_fallback": OUT_OF_SCOPE},
}

_LABEL = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_INLINE = re.compile(r"\[\s*([^\[\]:]+?)\s*:\s*([^\[\]]*?)\s*\]")
_RASA = re.compile(r"\[([^\[\]]+)\](?:\(([^()]+)\)|(\{[^{}]*\}))")

MAX_TEXT_CHARS = 500  # longer "utterances" are not requests; they would only slow training


class DatasetError(ValueError):
    """A file cannot be read as the given format (the message names the file and line)."""


@dataclass
class ImportReport:
    """What one or more imports kept and dropped (counts per reason)."""

    kept: Counter = field(default_factory=Counter)  # per intent
    dropped: Counter = field(default_factory=Counter)  # per reason
    mapped_intents: Counter = field(default_factory=Counter)  # "raw -> ours"
    mapped_slots: Counter = field(default_factory=Counter)
    duplicates: int = 0
    conflicts: list[tuple[str, list[str]]] = field(default_factory=list)  # (text, intents)
    files: list[dict] = field(default_factory=list)  # per file read: path, format, split, examples
    seed_examples: int = 0  # merged in before the files

    def merge(self, other: ImportReport) -> None:
        self.kept.update(other.kept)
        self.dropped.update(other.dropped)
        self.mapped_intents.update(other.mapped_intents)
        self.mapped_slots.update(other.mapped_slots)
        self.duplicates += other.duplicates
        self.conflicts.extend(other.conflicts)
        self.files.extend(other.files)
        self.seed_examples += other.seed_examples

    def as_dict(self) -> dict:
        return {
            "kept": sum(self.kept.values()),
            "dropped": dict(sorted(self.dropped.items())),
            "mapped_intents": dict(sorted(self.mapped_intents.items())),
            "mapped_slots": dict(sorted(self.mapped_slots.items())),
            "duplicates": self.duplicates,
            "conflicts": len(self.conflicts),
            "files": list(self.files),
            "seed_examples": self.seed_examples,
        }


@dataclass(frozen=True)
class Labelled:
    """One imported row before normalisation: raw text, raw intent, raw spans."""

    text: str
    intent: str
    spans: tuple[tuple[str, int, int], ...]  # (raw type, start, end) in `text`
    line: int


# -- parsing the inline annotation styles --------------------------------------------------
def parse_inline(annotation: str) -> tuple[str, list[tuple[str, int, int]]]:
    """`wake me at [time : five am]` -> ("wake me at five am", [("time", 11, 18)])."""
    text, spans, pos = "", [], 0
    for m in _INLINE.finditer(annotation):
        text += annotation[pos : m.start()]
        value = m.group(2)
        start = len(text)
        text += value
        if value.strip():
            spans.append((m.group(1).strip(), start, len(text)))
        pos = m.end()
    text += annotation[pos:]
    if "[" in text or "]" in text:
        raise ValueError("unbalanced [ ] in the annotation")
    return text, spans


def parse_rasa(line: str) -> tuple[str, list[tuple[str, int, int]]]:
    """`turn on the [kitchen](room) light` / `[kitchen]{"entity": "room"}` -> text + spans."""
    text, spans, pos = "", [], 0
    for m in _RASA.finditer(line):
        text += line[pos : m.start()]
        value = m.group(1)
        if m.group(2) is not None:
            entity = m.group(2).split(":", 1)[0].strip()  # legacy [value](entity:synonym)
        else:
            try:
                meta = json.loads(m.group(3))
            except json.JSONDecodeError as exc:
                raise ValueError(f"bad entity JSON {m.group(3)!r}: {exc.msg}") from exc
            if not isinstance(meta, dict) or not isinstance(meta.get("entity"), str):
                raise ValueError(f'entity JSON without an "entity" name: {m.group(3)!r}')
            entity = meta["entity"].strip()
        start = len(text)
        text += value
        spans.append((entity, start, len(text)))
        pos = m.end()
    text += line[pos:]
    return text, spans


# -- normalising and mapping ----------------------------------------------------------------
def _find_word_span(text: str, value: str, start_at: int, taken: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The first whole-word occurrence of `value` in `text` from `start_at` not overlapping `taken`."""
    for origin in (start_at, 0):
        pos = origin
        while True:
            i = text.find(value, pos)
            if i < 0:
                break
            j = i + len(value)
            whole = (i == 0 or text[i - 1] == " ") and (j == len(text) or text[j] == " ")
            if whole and not any(i < e and s < j for s, e in taken):
                return i, j
            pos = i + 1
    return None


def to_example(row: Labelled, fmt: str, report: ImportReport, source: str = "") -> Example | None:
    """Normalise, map names and re-locate spans; None (and a counted reason) when dropped."""
    table = INTENT_MAPS[fmt]
    raw_intent = row.intent.strip()
    intent = table.get(raw_intent, raw_intent)
    if intent is None:
        report.dropped[f"intent dropped: {raw_intent}"] += 1
        return None
    if intent != raw_intent:
        report.mapped_intents[f"{raw_intent} -> {intent}"] += 1
    if not _LABEL.match(intent):
        report.dropped["intent name not usable as a label"] += 1
        return None
    if len(row.text) > MAX_TEXT_CHARS:
        report.dropped["text too long"] += 1
        return None
    text = normalise(row.text)
    if not text:
        report.dropped["empty text"] += 1
        return None
    spans: list[SlotSpan] = []
    taken: list[tuple[int, int]] = []
    cursor = 0
    for raw_type, start, end in sorted(row.spans, key=lambda s: s[1]):
        kind = our_slot_type(raw_type)
        if kind != raw_type:
            report.mapped_slots[f"{raw_type} -> {kind}"] += 1
        if not _LABEL.match(kind):
            report.dropped["slot type not usable as a label"] += 1
            return None
        value = normalise(row.text[start:end])
        where = _find_word_span(text, value, cursor, taken) if value else None
        if where is None:
            report.dropped["slot span not found after normalisation"] += 1
            return None
        taken.append(where)
        cursor = where[1]
        spans.append(SlotSpan(type=kind, value=value, start=where[0], end=where[1]))
    ours = trained_intent(intent, {span.type for span in spans})
    if ours != intent:
        report.mapped_intents[f"{raw_intent} -> {ours}"] += 1
        intent = ours
    report.kept[intent] += 1
    return Example(text=text, intent=intent, spans=tuple(sorted(spans, key=lambda s: s.start)), group=source)


# -- readers --------------------------------------------------------------------------------
def jsonl_rows(path: Path) -> Iterator[tuple[int, dict]]:
    try:
        with Path(path).open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DatasetError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
                if not isinstance(row, dict):
                    raise DatasetError(f"{path}:{number}: expected a JSON object")
                yield number, row
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def _str_field(path: Path, number: int, row: dict, *names: str) -> str:
    for name in names:
        value = row.get(name)
        if isinstance(value, str):
            return value
    raise DatasetError(f"{path}:{number}: missing text field {' or '.join(repr(n) for n in names)}")


def read_inline_jsonl(path: Path, fmt: str, split: str | None = None) -> Iterator[Labelled]:
    """SLURP or HWU rows; with `split`, rows whose `split` field differs are skipped
    (rows without a `split` field, like train_labeled.jsonl's, are all kept)."""
    text_fields = ("sentence",) if fmt == "slurp" else ("text",)
    for number, row in jsonl_rows(path):
        if split is not None and "split" in row and row["split"] != split:
            continue
        intent = row.get("intent")
        if not isinstance(intent, str) or not intent.strip():
            raise DatasetError(f"{path}:{number}: missing 'intent'")
        annotation = row.get("annotation", row.get("sentence_annotation"))
        if annotation is None:
            text, spans = _str_field(path, number, row, *text_fields), []
        elif not isinstance(annotation, str):
            raise DatasetError(f"{path}:{number}: 'annotation' must be a string")
        else:
            try:
                text, spans = parse_inline(annotation)
            except ValueError as exc:
                raise DatasetError(f"{path}:{number}: {exc}") from exc
        yield Labelled(text=text, intent=intent, spans=tuple(spans), line=number)


def read_rasa(path: Path) -> Iterator[Labelled]:
    try:
        raw = Path(path).read_text(encoding="utf-8")
        doc = yaml.safe_load(raw)
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise DatasetError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("nlu"), list):
        raise DatasetError(f"{path}: a Rasa NLU file needs a top-level 'nlu:' list")
    lines = raw.splitlines()
    for k, item in enumerate(doc["nlu"], 1):
        if not isinstance(item, dict):
            raise DatasetError(f"{path}: nlu item {k} is not a mapping")
        if "intent" not in item:
            continue  # synonym / regex / lookup entries carry no labelled utterance
        intent = item["intent"]
        if not isinstance(intent, str) or not intent.strip():
            raise DatasetError(f"{path}: nlu item {k} has no intent name")
        # The line of "- intent: x" in the file, so errors point somewhere useful.
        line_of_item = next(
            (i for i, line in enumerate(lines, 1) if re.match(rf"\s*-\s*intent:\s*{re.escape(intent)}\s*$", line)), 0
        )
        examples = item.get("examples", "")
        if isinstance(examples, str):
            entries = [e for e in examples.splitlines() if e.strip()]
        elif isinstance(examples, list):
            entries = [e.get("text", "") if isinstance(e, dict) else str(e or "") for e in examples]
        else:
            raise DatasetError(f"{path}:{line_of_item}: intent {intent!r}: 'examples' must be a block or a list")
        for n, entry in enumerate(entries, 1):
            entry = str(entry).strip()
            if entry.startswith("- "):
                entry = entry[2:]
            elif entry == "-":
                continue
            try:
                text, spans = parse_rasa(entry)
            except ValueError as exc:
                raise DatasetError(f"{path}:{line_of_item + n}: intent {intent!r}: {exc}") from exc
            yield Labelled(text=text, intent=intent, spans=tuple(spans), line=line_of_item + n)


CLINC_SECTIONS = {"train": ("train", "oos_train"), "val": ("val", "oos_val"), "test": ("test", "oos_test")}


def read_clinc(path: Path, split: str | None = None) -> Iterator[Labelled]:
    """CLINC150 rows of `split` (train/val/test, with its oos_ section; devel = val); all when None."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from exc
    if not isinstance(doc, dict):
        raise DatasetError(f"{path}: CLINC data must be an object of sections")
    if split == "devel":
        split = "val"
    if split is not None and split not in CLINC_SECTIONS:
        raise DatasetError(f"{path}: unknown CLINC split {split!r} (train, val, test)")
    sections = CLINC_SECTIONS[split] if split else tuple(s for pair in CLINC_SECTIONS.values() for s in pair)
    for section in sections:
        rows = doc.get(section, [])
        if not isinstance(rows, list):
            raise DatasetError(f"{path}: section {section!r} is not a list")
        for i, row in enumerate(rows):
            if not (isinstance(row, list) and len(row) == 2 and all(isinstance(x, str) for x in row)):
                raise DatasetError(f"{path}: {section}[{i}] is not a [text, intent] pair")
            yield Labelled(text=row[0], intent=row[1], spans=(), line=i)


def detect_format(path: Path) -> str:
    """rasa for .yml/.yaml, clinc for .json, slurp/hwu for JSONL by their text field."""
    suffix = Path(path).suffix.lower()
    if suffix in (".yml", ".yaml"):
        return "rasa"
    if suffix == ".json":
        return "clinc"
    for _number, row in jsonl_rows(path):
        if "sentence" in row:
            return "slurp"
        if "text" in row:
            return "hwu"
        break
    raise DatasetError(f"{path}: cannot tell the format; pass --format slurp|hwu|rasa|clinc")


def read_labelled(path: Path, fmt: str = "auto", split: str | None = None) -> tuple[str, Iterable[Labelled]]:
    """(format, rows) of one file before normalisation."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt not in FORMATS:
        raise DatasetError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    if fmt in ("slurp", "hwu"):
        return fmt, read_inline_jsonl(path, fmt, split)
    if fmt == "rasa":
        return fmt, read_rasa(path)
    return fmt, read_clinc(path, split)


def load_examples(
    path: Path, fmt: str = "auto", split: str | None = None, report: ImportReport | None = None
) -> list[Example]:
    """Examples of one file (normalised, mapped); drops are counted in `report`."""
    report = report if report is not None else ImportReport()
    fmt, rows = read_labelled(path, fmt, split)
    out = []
    for row in rows:
        example = to_example(row, fmt, report)
        if example is not None:
            out.append(example)
    return out


def dedupe(examples: Iterable[Example], report: ImportReport | None = None) -> list[Example]:
    """One example per normalised text: the first one wins (seed first, then files in
    order); texts seen with different intents are recorded as conflicts."""
    report = report if report is not None else ImportReport()
    first: dict[str, Example] = {}
    intents: dict[str, list[str]] = {}
    for e in examples:
        if e.text in first:
            report.duplicates += 1
            if e.intent not in intents[e.text]:
                intents[e.text].append(e.intent)
            continue
        first[e.text] = e
        intents[e.text] = [e.intent]
    report.conflicts.extend((text, names) for text, names in intents.items() if len(names) > 1)
    return list(first.values())


def merge_sources(
    paths: Iterable[Path], *, fmt: str = "auto", split: str | None = None, seed: list[Example] | None = None
) -> tuple[list[Example], ImportReport]:
    """Seed (if given, first: on a duplicate text its label wins) + every file, normalised,
    mapped and de-duplicated. `fmt` "auto" guesses each file's format; a CLINC file without
    `split` gives its train section only (the file holds val and test too)."""
    report = ImportReport(seed_examples=len(seed or []))
    merged: list[Example] = list(seed or [])
    for path in map(Path, paths):
        if not path.is_file():
            raise DatasetError(f"{path}: no such file")
        file_fmt = detect_format(path) if fmt == "auto" else fmt
        file_split = split or ("train" if file_fmt == "clinc" else None)
        found = load_examples(path, file_fmt, file_split, report)
        report.files.append({"path": str(path), "format": file_fmt, "split": file_split, "examples": len(found)})
        merged.extend(found)
    # `kept` counts every imported example; recount after de-duplication so the
    # per-intent table shows what is trained on.
    unique = dedupe(merged, report)
    report.kept = Counter(e.intent for e in unique)
    return unique, report
