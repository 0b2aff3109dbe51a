"""Paraphrase requests -> generation jobs -> judged candidates, for one task, in rounds.

Round 1 asks each class for exactly the rows it needs. Rejected paraphrases leave a gap, so
later rounds (up to `max_rounds`) ask for more, scaled by the class's acceptance rate so far,
never beyond `max_requests_factor` x needed generations in total. Requests are numbered per
class (see `augment.requests`), so every round continues where the last one stopped and a rerun
(or a higher ratio) meets the same keys in the generation cache.

Each candidate ends with a status: accepted, rejected (with a reason, `augment.filters`) or
surplus (valid, but the class was already full, or held back to keep the classes balanced when
another class ended short: `hold_balance`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from augment.cache import GenerationCache, generation_key
from augment.consistency import EmbedFn, LabelChecks
from augment.engine import Backend
from augment.filters import parse_completion, rule_reason, similarity_reasons, text_key
from augment.generate import GenerationJob, GenerationStats, generate_missing
from augment.params import AugmentParams
from augment.prompts import (
    TaskTemplate,
    build_messages,
    few_shot_examples,
    messages_hash,
    template_hash,
)
from augment.requests import paraphrase_requests, rows_needed, source_order, stable_seed
from minbert.tasks import TASKS, class_of

HELD_BACK = "held_back"  # the reason of a surplus paraphrase held back by `hold_balance`
SimilarityFn = Callable[[Sequence[str], Sequence[str]], np.ndarray]  # cosine per pair


@dataclass
class ClassState:
    real: pd.DataFrame  # the class's real rows
    order: list[str]  # seeded source order (row ids)
    examples: list[str]  # few-shot pool: first text column in source order
    need: int
    issued: int = 0
    accepted: int = 0


@dataclass
class TaskAugmentation:
    candidates: pd.DataFrame  # one row per generation used, with status/reason/similarity
    needed: dict[str, int]
    stats: GenerationStats = field(default_factory=GenerationStats)


def class_states(task: str, real: pd.DataFrame, plan_task: dict, params: AugmentParams,
                 ) -> dict[str, ClassState]:
    needed = rows_needed(plan_task, params.ratio, where=f"data/balanced/plan.json: {task}")
    classes = class_of(task, real["label"])
    first = TASKS[task].text_columns[0]
    states = {}
    for cls, need in needed.items():
        rows = real[classes == cls]
        order = source_order(rows["id"], params.seed, task, cls)
        texts = rows.assign(id=rows["id"].astype(str)).set_index("id")[first]
        states[cls] = ClassState(rows, order, [texts[i] for i in order], need)
    return states


def next_requests(task: str, states: dict[str, ClassState], params: AugmentParams,
                  first_round: bool) -> pd.DataFrame:
    """The requests of one round, all classes together (grouped by class)."""
    parts = []
    for cls, st in states.items():
        budget = math.ceil(params.max_requests_factor * st.need)
        want = st.need - st.accepted
        if want <= 0 or st.issued >= budget or not st.order:
            continue
        rate = st.accepted / st.issued if st.issued else 1.0
        n = want if first_round else math.ceil(want / max(rate, 0.2))
        n = min(n, budget - st.issued)
        part = paraphrase_requests(task, st.real, st.order, st.issued, st.issued + n)
        st.issued += n
        parts.append(part.assign(cls=cls))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def make_jobs(task: str, requests: pd.DataFrame, states: dict[str, ClassState],
              template: TaskTemplate, backend: Backend, params: AugmentParams
              ) -> list[GenerationJob]:
    t_hash = template_hash(template, params.prompts.n_shots)
    jobs = []
    for r in requests.itertuples(index=False):
        shots = few_shot_examples(states[r.cls].examples, r.source_text, params.prompts.n_shots,
                                  params.prompts.max_example_chars)
        messages = build_messages(template, r.cls, shots, r.source_text)
        m_sha = messages_hash(messages)
        key = generation_key(backend=backend.name, model=backend.model, template_hash=t_hash,
                             messages_sha=m_sha, sample=int(r.sample),
                             sampling=params.sampling, seed=params.seed)
        meta = {"task": task, "class": r.cls, "source_id": r.source_id, "side": r.side,
                "sample": int(r.sample), "prompt_hash": t_hash, "source_text": r.source_text}
        jobs.append(GenerationJob(key, messages, stable_seed(params.seed, m_sha, r.sample), meta))
    return jobs


def _screen(candidates: pd.DataFrame, real_keys: set[str], params: AugmentParams,
            similarity: SimilarityFn, checks: LabelChecks | None,
            ) -> tuple[pd.DataFrame, list[str | None]]:
    """Parse every candidate and apply the rules that do not depend on acceptance order:
    form (`rule_reason`), similarity to the source, label consistency (`LabelChecks`).
    Returns the candidates with their paraphrase and measures, and the reasons so far."""
    parsed = [parse_completion(t, source=src)
              for t, src in zip(candidates["raw"], candidates["source_text"], strict=True)]
    paraphrases = [p for p, _ in parsed]
    questions = checks is not None and checks.spec.is_pair  # the not_question rule
    reasons = [
        rule_reason(p, src, cut=(fin == "length" and not complete), seen=real_keys,
                    params=params.filters, questions=questions)
        for (p, complete), src, fin in zip(parsed, candidates["source_text"],
                                           candidates["finish_reason"], strict=True)
    ]
    sims = np.full(len(candidates), np.nan)
    todo = [i for i, r in enumerate(reasons) if r is None]
    if todo:
        sims[todo] = similarity([candidates["source_text"].iat[i] for i in todo],
                                [paraphrases[i] for i in todo])
    reasons = [r or s for r, s in zip(reasons, similarity_reasons(sims, params.filters),
                                      strict=True)]
    shifts = np.full(len(candidates), np.nan)
    todo = [i for i, r in enumerate(reasons) if r is None]
    if checks is not None and todo:
        shifts[todo] = checks.label_shift([candidates["source_id"].iat[i] for i in todo],
                                          [candidates["side"].iat[i] for i in todo],
                                          [paraphrases[i] for i in todo])
        reasons = [r or checks.shift_reason(x) for r, x in zip(reasons, shifts, strict=True)]
    return candidates.assign(paraphrase=paraphrases, similarity=sims,
                             label_shift=shifts), reasons


def judge(candidates: pd.DataFrame, real_keys: set[str], accepted_keys: set[str],
          states: dict[str, ClassState], params: AugmentParams, similarity: SimilarityFn,
          checks: LabelChecks | None = None) -> pd.DataFrame:
    """Screen, then accept candidates in order (class, j); updates accepted_keys/states/checks.
    The rules that depend on what was accepted before come last: duplicate, near_duplicate."""
    screened, reasons = _screen(candidates, real_keys, params, similarity, checks)
    status = []
    siblings = np.full(len(screened), np.nan)
    for i, c in enumerate(screened.itertuples(index=False)):
        key = text_key(c.paraphrase)
        if reasons[i] is None and key in accepted_keys:
            reasons[i] = "duplicate"
        if reasons[i] is None and checks is not None:
            siblings[i] = checks.sibling_similarity(c.source_id, c.side, c.paraphrase)
            reasons[i] = checks.sibling_reason(siblings[i])
        if reasons[i] is not None:
            status.append("rejected")
        elif states[c.cls].accepted >= states[c.cls].need:
            status.append("surplus")
        else:
            status.append("accepted")
            states[c.cls].accepted += 1
            accepted_keys.add(key)
            if checks is not None:
                checks.accept(c.source_id, c.side, c.paraphrase)
    return screened.assign(sibling_similarity=siblings, reason=reasons, status=status)


def _candidates(requests: pd.DataFrame, jobs: list[GenerationJob], cached: list[bool],
                cache: GenerationCache) -> pd.DataFrame:
    records = [cache.get(j.key) for j in jobs]
    return requests.assign(
        key=[j.key for j in jobs], seed=[j.seed for j in jobs], cached=cached,
        prompt_hash=[j.meta["prompt_hash"] for j in jobs],
        raw=[r["text"] for r in records], n_tokens=[r["n_tokens"] for r in records],
        finish_reason=[r["finish_reason"] for r in records],
    )


def augment_task(task: str, real: pd.DataFrame, plan_task: dict, params: AugmentParams,
                 template: TaskTemplate, backend: Backend, cache: GenerationCache,
                 similarity: SimilarityFn, embed: EmbedFn | None = None) -> TaskAugmentation:
    """Generate, judge and accept paraphrases for every class of `task`. The label rules
    (`augment.consistency`) run when `filters.label_consistency` is on; they need `embed`."""
    states = class_states(task, real, plan_task, params)
    checks = None
    if params.filters.label_consistency and sum(s.need for s in states.values()) > 0:
        if embed is None:
            raise ValueError("filters.label_consistency needs an embedding function")
        checks = LabelChecks(task, real, embed, params.filters, params.seed)
    result = TaskAugmentation(pd.DataFrame(), {c: s.need for c, s in states.items()})
    real_keys = {text_key(t) for col in TASKS[task].text_columns for t in real[col]}
    accepted_keys: set[str] = set()
    rounds = []
    for round_no in range(params.max_rounds):
        requests = next_requests(task, states, params, first_round=round_no == 0)
        if requests.empty:
            break
        jobs = make_jobs(task, requests, states, template, backend, params)
        cached = [j.key in cache for j in jobs]
        result.stats.add(generate_missing(jobs, backend, cache, params.sampling,
                                          desc=f"{task} round {round_no + 1}"))
        candidates = _candidates(requests, jobs, cached, cache).assign(round=round_no + 1)
        rounds.append(judge(candidates, real_keys, accepted_keys, states, params, similarity,
                            checks))
    if rounds:
        result.candidates = hold_balance(pd.concat(rounds, ignore_index=True), states,
                                         params.max_class_ratio)
    return result


def hold_balance(candidates: pd.DataFrame, states: dict[str, ClassState],
                 max_ratio: float) -> pd.DataFrame:
    """Keep every class within `max_ratio` x the rows of the smallest one.

    A class can end short of its goal when the generator cannot fill it within its budget (the
    embedded model passes few of its Quora duplicate paraphrases; at high ratios each source
    must yield many distinct paraphrases). Then the other classes' last accepted paraphrases
    (latest round, latest request first) become surplus with reason `held_back`: valid,
    counted in the funnel, not trained on. Real rows are never held back. Updates
    `states[cls].accepted`."""
    if candidates.empty or max_ratio <= 0:
        return candidates
    rows = {cls: len(st.real) + st.accepted for cls, st in states.items()}
    cap = math.floor(max_ratio * min(rows.values()))
    status, reason = candidates["status"].copy(), candidates["reason"].copy()
    for cls, n in rows.items():
        accepted = candidates.index[(candidates["cls"] == cls) & (status == "accepted")]
        held = accepted[len(accepted) - min(max(n - cap, 0), len(accepted)):]
        status.loc[held], reason.loc[held] = "surplus", HELD_BACK
        states[cls].accepted -= len(held)
    return candidates.assign(status=status, reason=reason)
