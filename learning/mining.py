"""Rewrite mining: rules "what people say that fails" -> "what they say instead that works",
from their rephrase chains, by an absorbing Markov chain (Ponnusamy et al., AAAI 2020).

The graph. Every normalised utterance (a turn's ASR text) is a transient state. Each
stored occurrence of an utterance u, with P(defect) d from the defect model
(learning/defects.py), contributes one unit of weight out of u:

  followed by a rephrase (a Rephrase row) saying v:  d to u -> v, and 1 - d to "served at u"
  the end of its chain:                               1 - d to "served at u", d to "failed"

"served at v" (one absorbing state per utterance) and "failed" absorb. With Q the
transient-to-transient probabilities and r_v = P(served at v | at v), the probability
that a person who says u is eventually served by saying v is N[u, v] * r_v, with
N = (I - Q)^-1 the fundamental matrix. Row u of N is one sparse solve of
(I - Q)^T x = e_u, factorised once per connected component (scipy.sparse.linalg.splu):
mining works component by component.

A turn the rewrite stage rewrote counts as an occurrence of its rule's target, weighted
by REWRITE_EVIDENCE_WEIGHT: a rule's own successes must neither make its source look like
it succeeds by itself (and so retire the rule) nor count as fresh evidence for it.

Rules. For a source u the best target v != u is emitted as a rule when
  - u mostly fails by itself: r_u < MINE_MAX_SOURCE_SUCCESS (never rewrite what works),
  - v mostly works: r_v >= MINE_MIN_TARGET_SUCCESS, and N[u, v] r_v >= MINE_MIN_PROBABILITY,
  - v means something else than u (another intent or other slots, by the NLU's reading of
    their turns): a rewrite to the same interpretation changes nothing,
  - global: chains of at least MINE_MIN_USERS distinct people ended well at v; personal: the
    user's own chains did at least MINE_PERSONAL_MIN_SUPPORT times,
  - no chains or cycles: v is not itself the source of a rule.
A rule is active when its probability reaches MINE_ACTIVE_PROBABILITY, else proposed (staff
decide). A global rule stores no user id; its evidence lists chains by an anonymous hash of
their session. Rules are reconciled with the stored ones: a rule whose evidence has gone
(people deleted, fewer than k users left) retires, a better target supersedes an old one; a rule a
person approved in review stays as they decided (only its outcomes can retire it).

Shards. Every rephrase links two utterances of one connected component of the graph, so every
chain, absorption, rule and guardrail above stays within one component: the rules mined from a
set of whole components are exactly the rules of all the evidence that start there. Past
MINE_ROWS_PER_SHARD occurrences, the components are dealt into up to MINE_SHARDS shards of about
equal size, each mined as a job of its own by whichever worker takes it (learning.jobs.fan_out);
the shards' rules are stored together. Utterances no rephrase touches start and end no rule and
are left out of every shard.

Outcomes. update_outcomes() adds up every fired rule's wins and losses (1 - P(defect) and
P(defect) of the turns it rewrote) and retires a rule whose Beta posterior's 5% quantile
falls below REWRITE_RETIRE_BELOW once it has REWRITE_MIN_OUTCOMES outcomes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import shutil
import socket
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction

from feedback.models import Rephrase, RewriteRule, Session, Turn
from feedback.rule_review import approved_by_a_person
from learning.defects import defect_or_guess
from learning.jobs import JobOutcome, Progress, fan_out
from learning.models import Job
from learning.readings import reading
from teaching.privacy import erasures

log = logging.getLogger(__name__)

EVIDENCE_CHAINS = 10  # chains kept as a rule's evidence
PRIOR_STRENGTH = 4.0  # pseudo-outcomes of a rule's Beta prior, centred on its mined probability


# --- the evidence ---------------------------------------------------------------------


@dataclass
class Occurrences:
    """Every stored turn as one occurrence of its utterance, in arrays (index = row)."""

    node: np.ndarray  # utterance index per occurrence
    user: np.ndarray
    session: np.ndarray
    defect: np.ndarray  # P(defect)
    weight: np.ndarray  # 1, or REWRITE_EVIDENCE_WEIGHT for a rewritten turn
    next_row: np.ndarray  # row of the rephrase that followed, or -1
    rewritten_from: np.ndarray  # for a rewritten turn the utterance said (its node is the target), else -1
    texts: list[str]  # utterance per node index
    meaning: list[str | None]  # the NLU's usual reading of each utterance (None: unknown)
    node_of: dict[str, int] = field(default_factory=dict)  # utterance -> node index
    ends: tuple | None = None  # chain_ends(), once computed
    # Sessions of people who had everything learned about them forgotten since: no personal rules.
    forgotten_sessions: set[int] = field(default_factory=set)

    @property
    def nodes(self) -> int:
        return len(self.texts)


def collect(turns: Iterable[tuple] | None = None, links: Iterable[tuple[int, int]] | None = None) -> Occurrences:
    """Read occurrences from the store (or from given rows, for tests and benchmarks).

    `turns`: (id, user_id, session_id, text, intent, slots, defect_probability, status,
    rewritten_to, rephrased) rows; `links`: (first turn id, second turn id).
    """
    if links is None:
        links = Rephrase.objects.values_list("first_id", "second_id").iterator(chunk_size=20_000)
    successor = dict(links)
    stored = turns is None
    if turns is None:
        turns = _stored_turns(set(successor))
    node_of: dict[str, int] = {}
    texts: list[str] = []
    readings: list[Counter] = []
    rows: dict[int, int] = {}
    cols: dict[str, list] = defaultdict(list)

    def node_for(text: str) -> int:
        node = node_of.get(text)
        if node is None:
            node = node_of[text] = len(texts)
            texts.append(text)
            readings.append(Counter())
        return node

    for tid, user, session, text, intent, slots, defect, status, rewritten_to, rephrased in turns:
        said = (text or "").strip()
        if not said:
            continue
        node = node_for((rewritten_to or "").strip() or said)
        cols["rewritten_from"].append(node_for(said) if rewritten_to else -1)
        if not rewritten_to and intent:
            readings[node][reading(intent, slots)] += 1
        defect = defect_or_guess(defect, status, rephrased=rephrased)
        rows[tid] = len(cols["node"])
        cols["id"].append(tid)
        cols["node"].append(node)
        cols["user"].append(user)
        cols["session"].append(session)
        cols["defect"].append(float(defect))
        cols["weight"].append(float(settings.REWRITE_EVIDENCE_WEIGHT) if rewritten_to else 1.0)
    next_row = np.array([rows.get(successor.get(tid, -1), -1) for tid in cols["id"]], dtype=np.int64)
    meaning = [c.most_common(1)[0][0] if c else None for c in readings]
    return Occurrences(
        node=np.array(cols["node"], dtype=np.int64),
        user=np.array(cols["user"], dtype=np.int64),
        session=np.array(cols["session"], dtype=np.int64),
        # Never exactly 0 or 1: every utterance then leaks some probability out of the chain,
        # so I - Q is invertible.
        defect=np.clip(np.array(cols["defect"], dtype=np.float64), 0.001, 0.999),
        weight=np.array(cols["weight"], dtype=np.float64),
        next_row=next_row,
        rewritten_from=np.array(cols["rewritten_from"], dtype=np.int64),
        node_of=node_of,
        texts=texts,
        meaning=meaning,
        forgotten_sessions=_forgotten_sessions() if stored else set(),
    )


def _forgotten_sessions() -> set[int]:
    """Sessions started before their person had everything learned about them forgotten."""
    forgotten: set[int] = set()
    for user_id, erased in erasures().items():
        forgotten.update(Session.objects.filter(user_id=user_id, started_at__lt=erased).values_list("pk", flat=True))
    return forgotten


def _stored_turns(first_ids: set[int]) -> Iterable[tuple]:
    query = Turn.objects.order_by("id").values_list(
        "id", "user_id", "session_id", "asr_text", "intent", "slots", "defect_probability", "status",
        "rewrite__to", "rewrite__kept",
    )  # fmt: skip
    for tid, user, session, text, intent, slots, defect, status, rewritten_to, kept in query.iterator(
        chunk_size=20_000
    ):
        yield (
            tid,
            user,
            session,
            text,
            intent,
            slots,
            defect,
            status,
            rewritten_to if kept else None,
            tid in first_ids,
        )


# --- the absorbing chain --------------------------------------------------------------


@dataclass
class Chain:
    """Transition and absorption probabilities of the utterance graph, over its own node numbers."""

    q: Any  # scipy.sparse csr (n, n): P(next utterance v | utterance u)
    served: np.ndarray  # (n,) P(served at u | at u)
    occurrences: np.ndarray  # (n,) weighted occurrences per utterance
    nodes: np.ndarray  # (n,) the utterance (Occurrences node) of each chain node


def build_chain(occ: Occurrences, rows: np.ndarray | None = None) -> Chain:
    """The chain over all occurrences (node i is utterance i), or only over `rows` (one user's, for
    personal rules: then only the utterances those rows reach are nodes, numbered from 0)."""
    from scipy import sparse

    if rows is None:
        rows = np.arange(len(occ.node))
        nodes = np.arange(occ.nodes)
    else:
        reached = occ.next_row[rows]
        nodes = np.unique(np.concatenate([occ.node[rows], occ.node[reached[reached >= 0]]]))
    n = len(nodes)
    w, d = occ.weight[rows], occ.defect[rows]
    nxt = occ.next_row[rows]
    has_next = nxt >= 0
    here = np.searchsorted(nodes, occ.node[rows])  # chain node of each row
    total = np.bincount(here, weights=w, minlength=n)
    served = np.bincount(here, weights=w * (1 - d), minlength=n)
    src = here[has_next]
    dst = np.searchsorted(nodes, occ.node[nxt[has_next]])
    moved = sparse.coo_matrix((w[has_next] * d[has_next], (src, dst)), shape=(n, n)).tocsr()
    moved.sum_duplicates()
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(total > 0, 1.0 / total, 0.0)
    q = sparse.diags(scale) @ moved
    return Chain(q=q.tocsr(), served=np.where(total > 0, served * scale, 0.0), occurrences=total, nodes=nodes)


def absorption(chain: Chain, sources: list[int]) -> dict[int, np.ndarray]:
    """{u: P(served at v | start at u) for every v}, solved component by component."""
    from scipy import sparse
    from scipy.sparse import csgraph
    from scipy.sparse.linalg import splu

    if not sources:
        return {}
    n = chain.q.shape[0]
    _, labels = csgraph.connected_components(chain.q, directed=True, connection="weak")
    out: dict[int, np.ndarray] = {}
    by_component: dict[int, list[int]] = defaultdict(list)
    for u in sources:
        by_component[int(labels[u])].append(u)
    for component, members in by_component.items():
        nodes = np.flatnonzero(labels == component)
        local = {int(g): i for i, g in enumerate(nodes)}
        q = chain.q[nodes][:, nodes]
        # (I - Q)^T x = e_u gives row u of the fundamental matrix N = (I - Q)^-1.
        system = splu((sparse.identity(len(nodes), format="csc") - q).T.tocsc())
        for u in members:
            rhs = np.zeros(len(nodes))
            rhs[local[u]] = 1.0
            visits = system.solve(rhs)
            full = np.zeros(n)
            full[nodes] = visits * chain.served[nodes]
            out[u] = full
    return out


# --- rules from the chain -------------------------------------------------------------


@dataclass
class Candidate:
    source: str
    target: str
    probability: float
    source_success: float
    support: float  # occurrences of the source whose chain ended well at the target
    users: int
    user_id: int | None = None  # personal rules
    evidence: dict = field(default_factory=dict)

    @property
    def scope(self) -> str:
        return RewriteRule.Scope.GLOBAL if self.user_id is None else RewriteRule.Scope.PERSONAL


def chain_ends(occ: Occurrences) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """For every occurrence: the row its rephrase chain ended at, whether that end went well
    (P(defect) < 0.5), and the chain's rows (for evidence)."""
    n = len(occ.node)
    end = np.arange(n)
    paths: list[list[int]] = [[]] * n
    for start in range(n):
        path = [start]
        row = start
        while occ.next_row[row] >= 0 and len(path) < 20:  # a chain of 20 retries is not a request any more
            row = int(occ.next_row[row])
            path.append(row)
        end[start] = row
        paths[start] = path
    ended_well = occ.defect[end] < 0.5
    return end, ended_well, paths


def session_hash(session_id: int) -> str:
    """An anonymous, stable name for a session in a global rule's evidence."""
    return hmac.new(settings.SECRET_KEY.encode(), f"session:{session_id}".encode(), hashlib.sha256).hexdigest()[:12]


def _candidates_for(occ: Occurrences, chain: Chain, rows: np.ndarray, ends, *, user_id: int | None) -> list[Candidate]:
    end, ended_well, paths = ends
    min_support = settings.MINE_PERSONAL_MIN_SUPPORT if user_id is not None else 1
    sources = [
        u
        for u in np.flatnonzero(chain.occurrences >= min_support).tolist()
        if chain.served[u] < settings.MINE_MAX_SOURCE_SUCCESS and chain.q[u].nnz
    ]
    solved = absorption(chain, sources)
    # Per source, the occurrences (in `rows`) and where their chains ended well.
    by_source: dict[int, list[int]] = defaultdict(list)
    for row in rows.tolist():
        by_source[int(occ.node[row])].append(row)
    found = []
    eligible = chain.served >= settings.MINE_MIN_TARGET_SUCCESS
    glob = chain.nodes  # chain node -> utterance
    for u_local, through in solved.items():
        u = int(glob[u_local])
        # People who failed with u go on to many phrasings of the same request: what they were
        # served is a reading (intent and slots), so the probabilities of its phrasings add up.
        reached = [int(glob[v]) for v in np.flatnonzero((through > 0) & eligible).tolist() if v != u_local]
        weight = {int(glob[v]): float(through[v]) for v in np.flatnonzero(through > 0).tolist()}
        by_meaning: dict[Any, float] = defaultdict(float)
        for v in reached:
            by_meaning[_reading(occ, v)] += weight[v]
        by_meaning.pop(_reading(occ, u), None)  # the same reading: rewriting would change nothing
        if not by_meaning:
            continue
        meaning, probability = max(by_meaning.items(), key=lambda item: (item[1], str(item[0])))
        if probability < settings.MINE_MIN_PROBABILITY:
            continue
        # The target: the phrasing of that reading the source's chains reached most.
        v = max((v for v in reached if _reading(occ, v) == meaning), key=lambda node: (weight[node], -node))
        good = [r for r in by_source[u] if ended_well[r] and _reading(occ, int(occ.node[end[r]])) == meaning]
        users = len({int(occ.user[r]) for r in good})
        support = float(sum(occ.weight[r] for r in good))
        if user_id is None and users < settings.MINE_MIN_USERS:
            continue
        if user_id is not None and support < settings.MINE_PERSONAL_MIN_SUPPORT:
            continue
        chains = [
            {
                "session": session_hash(int(occ.session[r])),
                "path": [occ.texts[int(occ.node[p])] for p in paths[r]],
            }
            for r in good[:EVIDENCE_CHAINS]
        ]
        found.append(
            Candidate(
                source=occ.texts[u],
                target=occ.texts[v],
                probability=round(probability, 4),
                source_success=round(float(chain.served[u_local]), 4),
                support=round(support, 3),
                users=users,
                user_id=user_id,
                evidence={"chains": chains, "occurrences_of_source": round(float(chain.occurrences[u_local]), 3)},
            )
        )
    return found


def _reading(occ: Occurrences, node: int) -> Any:
    """The NLU's usual reading of an utterance; an utterance of unknown reading is its own."""
    return occ.meaning[node] if occ.meaning[node] is not None else ("utterance", node)


def _without_chains(candidates: list[Candidate], sources: set[str]) -> list[Candidate]:
    """No rule may rewrite into the source of another (no chains, no cycles)."""
    return [c for c in candidates if c.target not in sources]


def mine(occ: Occurrences, progress: Callable[[float, str], None] | None = None) -> list[Candidate]:
    """Global rules from everyone's chains, then personal rules from each user's own."""
    report = progress or (lambda fraction, message: None)
    ends = occ.ends = occ.ends or chain_ends(occ)
    report(0.2, "global chain")
    all_rows = np.arange(len(occ.node))
    global_rules = _candidates_for(occ, build_chain(occ), all_rows, ends, user_id=None)
    global_rules = _without_chains(global_rules, {c.source for c in global_rules})
    by_source = {c.source: c for c in global_rules}
    report(0.5, "personal chains")
    personal: list[Candidate] = []
    order = np.argsort(occ.user, kind="stable")
    users, starts = np.unique(occ.user[order], return_index=True)
    bounds = [*starts.tolist(), len(order)]
    for k, user in enumerate(users.tolist()):
        rows = order[bounds[k] : bounds[k + 1]]
        if occ.forgotten_sessions:
            # Chains from before the person had everything learned about them forgotten: not theirs to mine.
            rows = rows[~np.isin(occ.session[rows], list(occ.forgotten_sessions))]
        if len(rows) < settings.MINE_PERSONAL_MIN_SUPPORT or not (occ.next_row[rows] >= 0).any():
            continue
        for c in _candidates_for(occ, build_chain(occ, rows), rows, ends, user_id=int(user)):
            known = by_source.get(c.source)
            if known is None or known.target != c.target:  # the global rule already says the same
                personal.append(c)
    sources = {c.source for c in global_rules}
    kept = []
    for user_id in {c.user_id for c in personal}:
        mine_ = [c for c in personal if c.user_id == user_id]
        kept += _without_chains(mine_, sources | {c.source for c in mine_})
    return global_rules + kept


# --- the store ------------------------------------------------------------------------


def policy_status(c: Candidate) -> str:
    return (
        RewriteRule.Status.ACTIVE if c.probability >= settings.MINE_ACTIVE_PROBABILITY else RewriteRule.Status.PROPOSED
    )


def store(candidates: list[Candidate], occ: Occurrences) -> dict[str, int]:
    """Reconcile the mined candidates with the stored mined rules; counts of what changed."""
    counts: Counter = Counter()
    live = (RewriteRule.Status.ACTIVE, RewriteRule.Status.PROPOSED)
    with transaction.atomic():
        stored = {
            (r.scope, r.user_id, r.source_text): r
            for r in RewriteRule.objects.select_for_update()
            .filter(origin=RewriteRule.Origin.MINED)
            # The newest rule per (scope, user, source) speaks for it.
            .order_by("created_at", "id")
        }
        # Rules a person approved: their decision stands against the mining (superseding, too little evidence).
        approved = approved_by_a_person([r.pk for r in stored.values() if r.status == RewriteRule.Status.ACTIVE])
        seen = set()
        for c in candidates:
            key = (c.scope, c.user_id, c.source)
            seen.add(key)
            stats = {
                "confidence": c.probability,
                "support": c.support,
                "distinct_users": c.users,
                "source_success": c.source_success,
                "evidence": c.evidence,
            }
            rule = stored.get(key)
            if rule is not None and rule.target_text == c.target:
                for name, value in stats.items():
                    setattr(rule, name, value)
                if rule.status == RewriteRule.Status.PROPOSED and policy_status(c) == RewriteRule.Status.ACTIVE:
                    rule.status = RewriteRule.Status.ACTIVE
                    rule.status_reason = f"active: mined probability {c.probability} reached the policy's bar"
                    counts["activated"] += 1
                rule.save()
                counts["updated"] += 1
                continue
            if rule is not None and rule.pk in approved:
                continue  # a person approved this target for the source
            if rule is not None and rule.status in live:
                rule.status = RewriteRule.Status.RETIRED
                rule.status_reason = f"superseded by a better target: {c.target!r} ({c.probability})"
                rule.save(update_fields=["status", "status_reason", "updated_at"])
                counts["superseded"] += 1
            elif rule is not None:
                continue  # retired or rejected for this source: a person or the outcomes decided
            status = policy_status(c)
            RewriteRule.objects.create(
                source_text=c.source,
                target_text=c.target,
                scope=c.scope,
                user_id=c.user_id,
                origin=RewriteRule.Origin.MINED,
                status=status,
                status_reason=(
                    f"{status}: mined from {c.users} user(s), P(served) {c.probability}, "
                    f"the source succeeds {c.source_success} of the time by itself"
                ),
                **stats,
            )
            counts[f"created_{status}"] += 1
        # Stored rules the evidence no longer supports (people deleted, their chains gone).
        for key, rule in stored.items():
            if key in seen or rule.status not in live or rule.pk in approved:
                continue
            users, support = _support_now(occ, rule)
            if rule.scope == RewriteRule.Scope.GLOBAL and users < settings.MINE_MIN_USERS:
                reason = f"retired: its chains now come from {users} user(s), fewer than {settings.MINE_MIN_USERS}"
            elif rule.scope == RewriteRule.Scope.PERSONAL and support < settings.MINE_PERSONAL_MIN_SUPPORT:
                reason = "retired: the user's own chains no longer support it"
            else:
                continue
            rule.status, rule.status_reason = RewriteRule.Status.RETIRED, reason
            rule.save(update_fields=["status", "status_reason", "updated_at"])
            counts["retired_no_evidence"] += 1
    return dict(counts)


def _support_now(occ: Occurrences, rule: RewriteRule) -> tuple[int, float]:
    """Distinct users and weight of the occurrences whose chain from the rule's source ended well at its
    target, the turns the rule itself rewrote (and that went well) included."""
    u, v = occ.node_of.get(rule.source_text), occ.node_of.get(rule.target_text)
    if u is None or v is None:
        return 0, 0.0
    end, ended_well, _ = occ.ends = occ.ends or chain_ends(occ)
    chained = (occ.node == u) & ended_well & (occ.node[end] == v)
    rewritten = (occ.rewritten_from == u) & (occ.node == v) & (occ.defect < 0.5)
    rows = np.flatnonzero(chained | rewritten)
    if rule.user_id is not None:
        rows = rows[occ.user[rows] == rule.user_id]
    return len(set(occ.user[rows].tolist())), float(occ.weight[rows].sum())


def _fired_outcomes() -> tuple[dict[int, list[float]], dict[str, list[float]]]:
    """Expected [wins, losses] of every fired rewrite, by rule id and by layer (read only)."""
    rules: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])
    layers: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    fired = Turn.objects.filter(rewrite__kept=True, defect_probability__isnull=False).values_list(
        "rewrite__rule_id", "rewrite__scope", "rewrite__layer", "defect_probability"
    )
    for rule_id, scope, layer, p in fired.iterator(chunk_size=20_000):
        name = layer or f"rule-{scope or 'global'}"
        layers[name][0] += 1 - p
        layers[name][1] += p
        if rule_id is not None:
            rules[rule_id][0] += 1 - p
            rules[rule_id][1] += p
    return rules, layers


def layer_outcomes(layers: dict[str, list[float]] | None = None) -> dict[str, dict[str, float]]:
    """Each rewrite layer's wins, losses and the 5% bound of its win rate (read only)."""
    from scipy.stats import beta

    if layers is None:
        layers = _fired_outcomes()[1]
    return {
        name: {
            "wins": round(w, 2),
            "losses": round(lo, 2),
            "win_rate_5pct": round(float(beta.ppf(0.05, 1 + w, 1 + lo)), 4),
        }
        for name, (w, lo) in sorted(layers.items())
    }


def update_outcomes() -> dict[str, Any]:
    """Add up every fired rule's outcomes; retire the rules whose win rate is now doubtful."""
    from scipy.stats import beta

    by_rule, layers = _fired_outcomes()
    retired = 0
    with transaction.atomic():
        for rule in RewriteRule.objects.select_for_update().filter(pk__in=by_rule):
            rule.wins, rule.losses = (round(x, 3) for x in by_rule[rule.pk])
            fields = ["wins", "losses", "updated_at"]
            low = beta.ppf(
                0.05,
                1 + PRIOR_STRENGTH * rule.confidence + rule.wins,
                1 + PRIOR_STRENGTH * (1 - rule.confidence) + rule.losses,
            )
            enough = rule.wins + rule.losses >= settings.REWRITE_MIN_OUTCOMES
            if rule.status == RewriteRule.Status.ACTIVE and enough and low < settings.REWRITE_RETIRE_BELOW:
                rule.status = RewriteRule.Status.RETIRED
                rule.status_reason = (
                    f"retired by its outcomes: {rule.wins:.1f} wins, {rule.losses:.1f} losses; the win rate's "
                    f"5% bound {low:.2f} is below {settings.REWRITE_RETIRE_BELOW}"
                )
                fields += ["status", "status_reason"]
                retired += 1
            rule.save(update_fields=fields)
    return {"rules_with_outcomes": len(by_rule), "retired_by_outcomes": retired, "layers": layer_outcomes(layers)}


# --- shards ---------------------------------------------------------------------------

ARRAYS = ("node", "user", "session", "defect", "weight", "next_row", "rewritten_from")


def plan_shards(occ: Occurrences, most: int) -> list[np.ndarray]:
    """The occurrences (rows) of each shard: whole components of the utterance graph, dealt largest first
    to the shard with the fewest rows; at most `most` shards, one per MINE_ROWS_PER_SHARD rows. Rows of
    utterances no rephrase touches are in none (no rule starts or ends there)."""
    from scipy import sparse
    from scipy.sparse import csgraph

    moved = occ.next_row >= 0
    src, dst = occ.node[moved], occ.node[occ.next_row[moved]]
    graph = sparse.coo_matrix((np.ones(len(src)), (src, dst)), shape=(occ.nodes, occ.nodes))
    _, labels = csgraph.connected_components(graph.tocsr(), directed=True, connection="weak")
    linked = np.zeros(occ.nodes, dtype=bool)
    linked[src] = linked[dst] = True
    kept = np.flatnonzero(linked[occ.node])
    if not len(kept):
        return []
    component = labels[occ.node[kept]]
    sizes = np.bincount(component)
    count = max(1, min(most, -(-len(kept) // settings.MINE_ROWS_PER_SHARD)))
    shard_of = np.zeros(len(sizes), dtype=np.int64)
    load = np.zeros(count)
    for c in np.argsort(-sizes, kind="stable").tolist():
        if sizes[c] == 0:
            break
        k = int(np.argmin(load))
        shard_of[c] = k
        load[k] += sizes[c]
    row_shard = shard_of[component]
    return [kept[row_shard == k] for k in range(count)]


def subset(occ: Occurrences, rows: np.ndarray) -> Occurrences:
    """The occurrences `rows` (whole components, ascending) with their own row numbers; the utterances
    keep theirs, so rules and their tie-breaks come out as from all the evidence."""
    position = np.full(len(occ.node), -1, dtype=np.int64)
    position[rows] = np.arange(len(rows))
    following = occ.next_row[rows]
    next_row = np.where(following >= 0, position[np.maximum(following, 0)], -1)
    if ((following >= 0) & (next_row < 0)).any():
        raise ValueError("a shard's rephrases must stay within its rows (whole components)")
    return Occurrences(
        **{name: getattr(occ, name)[rows] for name in ARRAYS if name != "next_row"},
        next_row=next_row,
        texts=occ.texts,
        meaning=occ.meaning,
        forgotten_sessions=occ.forgotten_sessions,
    )


def _write_shards(occ: Occurrences, shards: list[np.ndarray], folder: Path) -> None:
    """Each shard's occurrences for the worker that mines it (MODEL_DIR: every worker reads it)."""
    folder.mkdir(parents=True)
    shared = {"texts": occ.texts, "meaning": occ.meaning, "forgotten_sessions": sorted(occ.forgotten_sessions)}
    (folder / "utterances.json").write_text(json.dumps(shared), encoding="utf-8")
    for k, rows in enumerate(shards):
        part = subset(occ, rows)
        np.savez(folder / f"shard-{k}.npz", **{name: getattr(part, name) for name in ARRAYS})


def _read_shard(folder: Path, k: int) -> Occurrences:
    shared = json.loads((folder / "utterances.json").read_text(encoding="utf-8"))
    with np.load(folder / f"shard-{k}.npz") as arrays:
        return Occurrences(
            **{name: arrays[name] for name in ARRAYS},
            texts=shared["texts"],
            meaning=shared["meaning"],
            forgotten_sessions=set(shared["forgotten_sessions"]),
        )


def mine_shard(job: Job, progress: Progress) -> JobOutcome:
    """One shard's rules (the learning task "mine_shard"), written next to its occurrences.
    params: folder (what the mining job wrote), shard (its number)."""
    folder, k = Path(str(job.params["folder"])), int(job.params["shard"])
    occ = _read_shard(folder, k)
    candidates = mine(occ, progress)
    (folder / f"rules-{k}.json").write_text(json.dumps([asdict(c) for c in candidates]), encoding="utf-8")
    return JobOutcome(
        f"shard {k}: {len(candidates)} candidate rules from {len(occ.node)} turns",
        {
            "shard": k,
            "occurrences": len(occ.node),
            "candidates": len(candidates),
            "worker": f"{socket.gethostname()}:{os.getpid()}",  # who mined it
        },
    )


def mine_in_shards(occ: Occurrences, shards: list[np.ndarray], progress: Progress) -> list[Candidate]:
    """mine() over the shards, each a job for any worker (this one included); their rules together."""
    folder = Path(settings.MODEL_DIR) / "mining" / uuid.uuid4().hex
    try:
        _write_shards(occ, shards, folder)
        progress(0.25, f"mining {len(shards)} shards")
        fan_out("mine_shard", [{"folder": str(folder), "shard": k} for k in range(len(shards))], mine_shard)
        found = []
        for k in range(len(shards)):
            found += [Candidate(**c) for c in json.loads((folder / f"rules-{k}.json").read_text(encoding="utf-8"))]
        return found
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def mine_and_store(progress: Progress, *, most_shards: int | None = None) -> dict[str, Any]:
    """The learning step: outcomes first (they may retire rules), then mining, in shards past a size."""
    outcomes = update_outcomes()
    progress(0.05, "reading the evidence")
    occ = collect()
    progress(0.15, f"{len(occ.node)} occurrences of {occ.nodes} utterances")
    shards = plan_shards(occ, settings.MINE_SHARDS if most_shards is None else most_shards)
    candidates = mine_in_shards(occ, shards, progress) if len(shards) > 1 else mine(occ, progress)
    progress(0.9, f"{len(candidates)} candidate rules")
    changes = store(candidates, occ)
    return {
        "occurrences": len(occ.node),
        "utterances": occ.nodes,
        "shards": max(1, len(shards)),
        "candidates": {
            "global": sum(1 for c in candidates if c.user_id is None),
            "personal": sum(1 for c in candidates if c.user_id is not None),
        },
        "changes": changes,
        "outcomes": outcomes,
    }
