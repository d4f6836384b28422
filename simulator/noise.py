"""The speech channel: real recognitions replayed, or a noise model learned from ASR pairs.

Learning aligns each (reference, hypothesis) pair word by word with an
edit-distance alignment (rapidfuzz's Levenshtein opcodes over word lists) and
counts, per reference word, how often it was recognised as another word, dropped,
or followed by an inserted word. Corrupting a sentence walks its words and applies
those per-word rates (smoothed towards the global rate for rare words), drawing
the replacement or inserted word from what the ASR really produced in that
context. Rates are scaled by the user's `noise_level`.

A user speaks with one voice: of a sentence's real recordings, a user's come from one
speaker (chosen by the user's voice and the sentence, as an accent would make the same
words go wrong the same way), and the noise model's corruption of a sentence is, most of
the time (VOICE_CONSISTENCY), the one that user's voice gives it.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from rapidfuzz.distance import Levenshtein

from simulator.data import AsrPair

START = "<s>"
SMOOTHING = 2.0  # pseudo-counts pulling a rare word's rates towards the global rate
VOICE_CONSISTENCY = 0.8  # how often a sentence the model corrupts comes out as the user's voice makes it


def _stable_index(key: str, n: int) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % n


def _words(text: str) -> list[str]:
    return text.lower().split()


@dataclass
class NoiseModel:
    seen: Counter = field(default_factory=Counter)  # reference word -> occurrences
    subs: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))  # ref word -> hyp words
    dels: Counter = field(default_factory=Counter)  # ref word -> times dropped
    ins: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))  # previous ref word -> inserted
    # reference -> speaker -> that speaker's real hypotheses (file order)
    replays: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    pairs: int = 0

    # -- learning ---------------------------------------------------------
    @classmethod
    def learn(cls, pairs: Iterable[AsrPair]) -> NoiseModel:
        model = cls()
        for pair in pairs:
            model.add(pair.reference, pair.hypothesis, pair.speaker)
        return model

    def add(self, reference: str, hypothesis: str, speaker: str = "") -> None:
        self.pairs += 1
        self.replays.setdefault(reference, {}).setdefault(speaker, []).append(hypothesis)
        ref, hyp = _words(reference), _words(hypothesis)
        self.seen.update(ref)
        self.seen[START] += 1
        for tag, i1, i2, j1, j2 in Levenshtein.opcodes(ref, hyp):
            if tag == "equal":
                continue
            if tag == "delete":
                self.dels.update(ref[i1:i2])
            elif tag == "insert":
                self.ins[ref[i1 - 1] if i1 > 0 else START].update(hyp[j1:j2])
            else:  # replace: pair words up; the surplus is a deletion or an insertion
                n = min(i2 - i1, j2 - j1)
                for k in range(n):
                    self.subs[ref[i1 + k]][hyp[j1 + k]] += 1
                self.dels.update(ref[i1 + n : i2])
                if j2 - j1 > n:
                    self.ins[ref[i1 + n - 1]].update(hyp[j1 + n : j2])

    # -- rates --------------------------------------------------------------
    def _global(self) -> tuple[float, float, float]:
        words = max(1, sum(c for w, c in self.seen.items() if w != START))
        subs = sum(sum(c.values()) for c in self.subs.values())
        ins = sum(sum(c.values()) for c in self.ins.values())
        return subs / words, sum(self.dels.values()) / words, ins / max(1, sum(self.seen.values()))

    def rates(self, word: str) -> tuple[float, float, float]:
        """(substitution, deletion, insertion-after) probabilities for a reference word."""
        g_sub, g_del, g_ins = self._global_cache()
        n = self.seen.get(word, 0)
        sub = (sum(self.subs[word].values()) if word in self.subs else 0) + SMOOTHING * g_sub
        dele = self.dels.get(word, 0) + SMOOTHING * g_del
        ins = (sum(self.ins[word].values()) if word in self.ins else 0) + SMOOTHING * g_ins
        return sub / (n + SMOOTHING), dele / (n + SMOOTHING), ins / (n + SMOOTHING)

    def _global_cache(self) -> tuple[float, float, float]:
        key = (self.pairs, len(self.seen))
        if getattr(self, "_gkey", None) != key:
            self._gkey, self._gval = key, self._global()
        return self._gval

    # -- sampling -----------------------------------------------------------
    @staticmethod
    def _draw(counter: Counter, rng: random.Random) -> str | None:
        if not counter:
            return None
        items = sorted(counter.items())  # sorted: the draw must not depend on insertion order
        total = sum(c for _, c in items)
        point = rng.random() * total
        for word, count in items:
            point -= count
            if point < 0:
                return word
        return items[-1][0]

    def _fallback_sub(self, word: str, rng: random.Random) -> str | None:
        """A substitute for a word the pairs never saw: what ASR made of a known word with the same start."""
        pool: Counter = Counter()
        for ref in sorted(self.subs):
            if ref[:2] == word[:2] and ref != word:
                pool.update(self.subs[ref])
        return self._draw(pool, rng)

    def corrupt(self, text: str, rng: random.Random, noise_level: float = 1.0) -> str:
        """`text` as a noisy recogniser might hear it (may come back unchanged)."""
        words = _words(text)
        out: list[str] = []
        g_ins = self.rates(START)[2] * noise_level
        if rng.random() < g_ins:
            extra = self._draw(self.ins.get(START, Counter()), rng)
            if extra:
                out.append(extra)
        for word in words:
            p_sub, p_del, p_ins = (min(0.95, r * noise_level) for r in self.rates(word))
            r = rng.random()
            if r < p_del:
                pass
            elif r < p_del + p_sub:
                replacement = self._draw(self.subs.get(word, Counter()), rng) or self._fallback_sub(word, rng)
                out.append(replacement or word)
            else:
                out.append(word)
            if rng.random() < p_ins:
                extra = self._draw(self.ins.get(word, Counter()), rng)
                if extra:
                    out.append(extra)
        return " ".join(out) if out else text

    def real_recognitions(self, sentence: str, voice: str = "") -> list[str]:
        """Real recognitions of `sentence`: all of them, or with a `voice` those of its one speaker."""
        by_speaker = self.replays.get(sentence, {})
        if not voice or not by_speaker:
            return [h for hyps in by_speaker.values() for h in hyps]
        speakers = sorted(by_speaker)
        return by_speaker[speakers[_stable_index(f"{voice}|{sentence}", len(speakers))]]


@dataclass(frozen=True)
class Heard:
    text: str  # what the assistant receives
    source: str  # "clean", "replay" (a real recognition) or "model" (the learned noise model)


def transmit(
    sentence: str, model: NoiseModel, rng: random.Random, *, noisy: bool, noise_level: float, voice: str = ""
) -> Heard:
    """Pass one spoken sentence through a user's channel (`voice`: the user's, see the module doc)."""
    if not noisy:
        return Heard(sentence, "clean")
    real = [h for h in model.real_recognitions(sentence, voice) if h.strip()]  # an empty recognition is no turn
    if real:
        return Heard(real[rng.randrange(len(real))], "replay")
    consistent = bool(voice) and rng.random() < VOICE_CONSISTENCY
    text = model.corrupt(sentence, random.Random(f"voice|{voice}|{sentence}") if consistent else rng, noise_level)
    return Heard(text if text.strip() else sentence, "model")
