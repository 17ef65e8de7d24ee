"""Families of near-identical exhibits: series, variants and copies of one work.

Classes are grouped into families; the first member of a family is an original design
and every other member is a :func:`~artid.data.synth.artworks.vary` of it (a copy, a
variant or another work of the series). This is what makes neighbouring classes hard to
tell apart, as on the real Met (editions of prints, coin types, sets of plates...).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from artid.data.synth.artworks import RELATIONS, Design, make_design, vary
from artid.data.synth.seeding import rng_for

#: Probability of each relation for a non-first member of a family.
RELATION_WEIGHTS = {"copy": 0.3, "variant": 0.35, "series": 0.35}


@dataclass(frozen=True)
class Member:
    """Where a class sits in its family: family id, and its relation to the family's
    original (None for the original itself)."""

    family: int
    relation: str | None


def plan_families(
    n_classes: int, rng: np.random.Generator, singleton_share: float = 0.85, max_size: int = 8
) -> list[Member]:
    """Assign classes 0..n-1 to families.

    Args:
        n_classes: number of classes.
        rng: random source.
        singleton_share: probability that a family has a single member; the default leaves
            about a third of the classes with a near-identical relative (the paper stresses
            such classes, but most of the Met's exhibits are unique works).
        max_size: largest family.

    Returns:
        One :class:`Member` per class (class ids are shuffled so that a family is not a run of ids).
    """
    members: list[Member] = []
    family = 0
    sizes = np.arange(2, max_size + 1)
    weights = 0.5 ** (sizes - 2)
    weights /= weights.sum()
    relations = list(RELATION_WEIGHTS)
    rel_p = np.asarray([RELATION_WEIGHTS[r] for r in relations])
    while len(members) < n_classes:
        size = 1 if rng.random() < singleton_share else int(rng.choice(sizes, p=weights))
        size = min(size, n_classes - len(members))
        members.append(Member(family, None))
        for _ in range(size - 1):
            members.append(Member(family, str(rng.choice(relations, p=rel_p))))
        family += 1
    order = rng.permutation(n_classes)
    return [members[i] for i in order]


def design_of(seed: int, namespace: str, index: int, member: Member) -> Design:
    """The design of class ``index`` (a pure function of its arguments).

    Args:
        seed: benchmark seed.
        namespace: ``"met"`` for the collection, ``"other"`` for other-art distractors.
        index: class (or distractor) index within the namespace.
        member: its family and relation.
    """
    base = make_design(rng_for(seed, namespace, "family", member.family))
    if member.relation is None:
        return base
    if member.relation not in RELATIONS:
        raise ValueError(f"unknown relation {member.relation!r}")
    return vary(base, rng_for(seed, namespace, "member", index), member.relation)
