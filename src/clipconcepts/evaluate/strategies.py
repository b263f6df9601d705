"""Pruning strategies: which heads each evaluation zeroes (CCS paper, sections 5.2-5.5).

`resolve_prune_sets` turns the config's strategy names into concrete `PruneSet`s:

- `original`: no heads;
- `high`: heads in group 'high' (CCS = 5); `low`: group 'low' (CCS <= 1);
- `random`: one set per seed, as many heads as `high`, drawn uniformly without replacement
  from the analysed layers minus the high heads (`numpy.random.default_rng(seed)`);
- `concept`: for every `(target, unrelated)` pair, the heads whose label falls in the target's
  concept group and those in the unrelated group, truncated to the same size (the larger group
  keeps its highest-CCS heads). Named `concept:{pruned}:vs:{other}` (`concept_strategy_names`).
  Beside them, one set per random seed of as many heads as the target's set, drawn from the
  analysed heads outside the target's concept group: `concept-random:{target}:vs:{unrelated}`,
  the chance baseline of the pair (`concept_random_name`);
- `manual`: every list in `manual` (`{name: ["L11.H5", ...]}`) as `manual:{name}`;
- `published`: the CCS authors' published high and low lists of the model (`arch`,
  `pretrained`; `clipconcepts.published_heads`) as `published:high` and `published:low`, run
  beside ours; a model without published lists gets no such sets (a log line says so).

Concept groups. A head's label belongs to a group when one of the group's keywords occurs in it
at the start of a word, case-insensitively (`location` matches "Locations", `geograph` matches
"geography"). A head is in at most one group: the group whose keyword occurs earliest in the
label; at the same position, the group listed first in the config. By default only high-CCS heads
take part (`concept_heads="high"`), as in the paper ("we prune heads with high CCS scores for a
target concept") and the authors' published lists, which are all subsets of their high lists.

Empty groups are not errors: they give an empty set, evaluated and reported with `n_heads = 0`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from clipconcepts.published_heads import (
    PUBLISHED_KINDS,
    find_published,
    published_models,
    published_strategy,
)
from clipconcepts.published_heads import published_head_lists as published_head_lists

log = logging.getLogger(__name__)

Head = tuple[int, int]
STRATEGIES = ("original", "high", "low", "random", "concept", "manual", "published")
_HEAD_NAME = re.compile(r"^L(\d+)\.H(\d+)$")


@dataclass(frozen=True)
class PruneSet:
    """One evaluation: a strategy name, its seed (0 unless random) and the heads it zeroes."""

    strategy: str
    seed: int
    heads: tuple[Head, ...]

    @property
    def head_names(self) -> list[str]:
        return [head_name(h) for h in self.heads]

    @property
    def n_heads(self) -> int:
        return len(self.heads)


def head_name(head: Head) -> str:
    return f"L{head[0]}.H{head[1]}"


def parse_head(name: str, where: str = "head") -> Head:
    """`"L11.H5"` -> `(11, 5)`; anything else raises a ValueError naming `where`."""
    match = _HEAD_NAME.match(str(name).strip())
    if not match:
        raise ValueError(f"{where}: {name!r} is not a head name of the form 'L<layer>.H<head>'")
    return int(match.group(1)), int(match.group(2))


def _sorted_unique(heads: Iterable[Head]) -> tuple[Head, ...]:
    return tuple(sorted({(int(layer), int(head)) for layer, head in heads}))


def concept_strategy_names(target: str, unrelated: str) -> tuple[str, str]:
    """Strategy names of a concept pair: (target heads pruned, unrelated heads pruned)."""
    return f"concept:{target}:vs:{unrelated}", f"concept:{unrelated}:vs:{target}"


def concept_random_name(target: str, unrelated: str) -> str:
    """Strategy name of a concept pair's random sets (as many heads as the target's set)."""
    return f"concept-random:{target}:vs:{unrelated}"


# ---------------------------------------------------------------------------- frames
def _heads_of_group(head_groups: pl.DataFrame, group: str) -> tuple[Head, ...]:
    missing = {"group", "layer", "head"} - set(head_groups.columns)
    if missing:
        raise ValueError(f"head_groups table lacks columns {sorted(missing)}")
    rows = head_groups.filter(pl.col("group") == group).select("layer", "head").rows()
    return _sorted_unique(rows)


def _ccs_lookup(*frames: pl.DataFrame | None) -> dict[Head, float]:
    """CCS per head from the first frames that carry a `ccs` column (later ones fill gaps)."""
    out: dict[Head, float] = {}
    for frame in frames:
        if frame is None or "ccs" not in frame.columns:
            continue
        for layer, head, ccs in frame.select("layer", "head", "ccs").rows():
            if ccs is not None:
                out.setdefault((int(layer), int(head)), float(ccs))
    return out


def _keyword_pattern(keyword: str) -> re.Pattern:
    return re.compile(r"(?<![0-9a-z])" + re.escape(keyword.strip().lower()))


def concept_of_label(label: str | None, concept_groups: dict[str, Sequence[str]]) -> str | None:
    """The concept group a label falls in (earliest keyword match; ties by group order)."""
    if not label:
        return None
    text = label.lower()
    best: tuple[int, int, str] | None = None
    for order, (group, keywords) in enumerate(concept_groups.items()):
        for keyword in keywords:
            if not keyword.strip():
                continue
            match = _keyword_pattern(keyword).search(text)
            if match and (best is None or (match.start(), order) < best[:2]):
                best = (match.start(), order, group)
    return best[2] if best else None


def assign_concepts(
    labels: pl.DataFrame, concept_groups: dict[str, Sequence[str]]
) -> dict[str, list[Head]]:
    """Heads per concept group from a `[layer, head, label]` table (unmatched heads dropped)."""
    missing = {"layer", "head", "label"} - set(labels.columns)
    if missing:
        raise ValueError(f"labels table lacks columns {sorted(missing)}")
    out: dict[str, list[Head]] = {group: [] for group in concept_groups}
    for layer, head, label in labels.select("layer", "head", "label").rows():
        group = concept_of_label(label, concept_groups)
        if group is not None:
            out[group].append((int(layer), int(head)))
    return out


def _top_by_ccs(heads: Sequence[Head], n: int, ccs: dict[Head, float]) -> tuple[Head, ...]:
    """The `n` heads with the highest CCS (ties: lower layer, then lower head index)."""
    ranked = sorted(heads, key=lambda h: (-ccs.get(h, -1.0), h))
    return _sorted_unique(ranked[:n])


# ---------------------------------------------------------------------------- resolution
def resolve_prune_sets(
    strategies: Sequence[str],
    head_groups_df: pl.DataFrame | None,
    labels_df: pl.DataFrame | None,
    *,
    layers: Sequence[int],
    n_heads: int,
    random_seeds: Sequence[int] = (0, 1, 2),
    concept_groups: dict[str, Sequence[str]] | None = None,
    concept_pairs: Sequence[Sequence[str]] = (),
    manual: dict[str, Sequence[str]] | None = None,
    ccs_df: pl.DataFrame | None = None,
    concept_heads: str = "high",
    arch: str | None = None,
    pretrained: str | None = None,
) -> list[PruneSet]:
    """The prune sets for `strategies` (names from `STRATEGIES`), in the order given.

    `layers` are the analysed (non-negative) layers; `head_groups_df` is `[group, layer, head]`
    (`ccs.head_groups`); `labels_df` is `[layer, head, label]`; CCS for ranking comes from
    `ccs_df`, else a `ccs` column of the other two frames. `concept_heads` is `high` (only
    high-CCS heads form concept groups) or `all` (every labelled head). `arch` and
    `pretrained` (the open_clip model) pick the lists of `published`.
    """
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown prune strategies {unknown}; choose from {', '.join(STRATEGIES)}")
    layers = sorted({int(layer) for layer in layers})
    if any(layer < 0 for layer in layers):
        raise ValueError(f"layers must be non-negative indices, got {layers}")
    if n_heads < 1:
        raise ValueError(f"n_heads must be positive, got {n_heads}")
    needs_groups = {"high", "low", "random", "concept"} & set(strategies)
    if needs_groups and head_groups_df is None:
        raise ValueError(f"strategies {sorted(needs_groups)} need the head_groups table")

    sets: list[PruneSet] = []
    for strategy in dict.fromkeys(strategies):  # de-duplicated, order kept
        if strategy == "original":
            sets.append(PruneSet("original", 0, ()))
        elif strategy in ("high", "low"):
            sets.append(PruneSet(strategy, 0, _heads_of_group(head_groups_df, strategy)))
        elif strategy == "random":
            high = _heads_of_group(head_groups_df, "high")
            sets.extend(random_sets(high, layers, n_heads, random_seeds))
        elif strategy == "concept":
            sets.extend(
                concept_sets(
                    head_groups_df,
                    labels_df,
                    concept_groups or {},
                    concept_pairs,
                    ccs=_ccs_lookup(ccs_df, head_groups_df, labels_df),
                    layers=layers,
                    concept_heads=concept_heads,
                    n_heads=n_heads,
                    random_seeds=random_seeds,
                )
            )
        elif strategy == "manual":
            sets.extend(manual_sets(manual or {}, n_heads))
        elif strategy == "published":
            sets.extend(published_sets(arch, pretrained, n_heads, layers))
    for s in sets:
        if not s.heads and s.strategy != "original":
            log.warning(
                "prune set %s (seed %d) is empty: it is evaluated as unpruned", s.strategy, s.seed
            )
    return sets


def random_sets(
    high: Sequence[Head], layers: Sequence[int], n_heads: int, seeds: Sequence[int]
) -> list[PruneSet]:
    """One set per seed: `len(high)` heads from `layers` x `range(n_heads)` minus `high`."""
    return _random_draws("random", high, len(high), layers, n_heads, seeds, "non-high")


def _random_draws(
    name: str,
    exclude: Sequence[Head],
    size: int,
    layers: Sequence[int],
    n_heads: int,
    seeds: Sequence[int],
    pool_name: str,
) -> list[PruneSet]:
    """One set `name` per seed: `size` heads of `layers` x `range(n_heads)` minus `exclude`,
    drawn uniformly without replacement by `numpy.random.default_rng(seed)`."""
    if not seeds:
        raise ValueError("random pruning needs at least one seed (prune.random_seeds)")
    excluded = set(exclude)
    pool = [
        (layer, head)
        for layer in layers
        for head in range(n_heads)
        if (layer, head) not in excluded
    ]
    if size > len(pool):
        raise ValueError(
            f"{name} pruning needs {size} heads but only {len(pool)} {pool_name} heads exist "
            f"in layers {list(layers)}"
        )
    out = []
    for seed in dict.fromkeys(int(s) for s in seeds):
        rng = np.random.default_rng(seed)
        picks = rng.choice(len(pool), size=size, replace=False)
        out.append(PruneSet(name, seed, _sorted_unique(pool[i] for i in picks)))
    return out


def concept_sets(
    head_groups_df: pl.DataFrame,
    labels_df: pl.DataFrame | None,
    concept_groups: dict[str, Sequence[str]],
    concept_pairs: Sequence[Sequence[str]],
    *,
    ccs: dict[Head, float],
    layers: Sequence[int],
    concept_heads: str = "high",
    n_heads: int | None = None,
    random_seeds: Sequence[int] = (),
) -> list[PruneSet]:
    """Two equal-size sets per (target, unrelated) pair and, given `n_heads` and
    `random_seeds`, the pair's random sets (see the module docstring)."""
    if not concept_pairs:
        log.warning("strategy 'concept' without concept pairs: no concept sets")
        return []
    if labels_df is None:
        raise ValueError("strategy 'concept' needs the head labels table")
    if concept_heads not in ("high", "all"):
        raise ValueError(f"concept_heads must be 'high' or 'all', got {concept_heads!r}")
    for pair in concept_pairs:
        if len(pair) != 2:
            raise ValueError(f"concept pair {list(pair)} must be [target, unrelated]")
        for group in pair:
            if group not in concept_groups:
                raise ValueError(
                    f"concept pair {list(pair)}: group {group!r} is not in concept_groups "
                    f"({', '.join(concept_groups) or 'none defined'})"
                )
    labels = labels_df.filter(pl.col("layer").is_in(list(layers)))
    if concept_heads == "high":
        high = set(_heads_of_group(head_groups_df, "high"))
        keep = [
            (int(layer), int(head)) in high for layer, head in labels.select("layer", "head").rows()
        ]
        labels = labels.filter(pl.Series(keep, dtype=pl.Boolean))
    by_group = assign_concepts(labels, concept_groups)
    if ccs == {} and any(len(v) > 1 for v in by_group.values()):
        log.warning("no CCS values given: concept groups are truncated in (layer, head) order")
    sets: list[PruneSet] = []
    seen: set[str] = set()
    for target, unrelated in concept_pairs:
        size = min(len(by_group[target]), len(by_group[unrelated]))
        names = concept_strategy_names(target, unrelated)
        for name, group in zip(names, (target, unrelated), strict=True):
            if name in seen:
                continue
            seen.add(name)
            sets.append(PruneSet(name, 0, _top_by_ccs(by_group[group], size, ccs)))
        chance = concept_random_name(target, unrelated)
        if n_heads is not None and random_seeds and chance not in seen:
            seen.add(chance)
            sets.extend(
                _random_draws(
                    chance, by_group[target], size, layers, n_heads, random_seeds, "non-target"
                )
            )
        log.info(
            "concept pair %s vs %s: %d vs %d heads, %d each after equalising",
            target,
            unrelated,
            len(by_group[target]),
            len(by_group[unrelated]),
            size,
        )
    return sets


def manual_sets(manual: dict[str, Sequence[str]], n_heads: int) -> list[PruneSet]:
    """`manual:{name}` sets from head-name lists; a bad entry names the list and position."""
    return [
        PruneSet(f"manual:{name}", 0, _head_list(f"manual[{name!r}]", heads, n_heads))
        for name, heads in manual.items()
    ]


def _head_list(where: str, heads: Sequence[str], n_heads: int) -> tuple[Head, ...]:
    """Parsed, checked, sorted heads of a list of head names (errors name `where[i]`)."""
    if isinstance(heads, str):
        raise ValueError(f"{where} must be a list of head names, got a string")
    parsed = []
    for i, entry in enumerate(heads):
        layer, head = parse_head(entry, where=f"{where}[{i}]")
        if head >= n_heads:
            raise ValueError(
                f"{where}[{i}]: {entry!r} names head {head}, but the model has "
                f"{n_heads} heads per layer"
            )
        parsed.append((layer, head))
    return _sorted_unique(parsed)


# ---------------------------------------------------------------------------- published lists
def published_sets(
    arch: str | None, pretrained: str | None, n_heads: int, layers: Sequence[int] = ()
) -> list[PruneSet]:
    """The authors' published high and low lists of a model as `published:high` and
    `published:low` (`published_heads`); none, with a log line, for a model without lists."""
    lists = find_published(arch, pretrained)
    if lists is None:
        log.warning(
            "strategy 'published': no published CCS head lists for %s/%s (the authors published "
            "lists for %s): no published sets for this model",
            arch,
            pretrained,
            ", ".join(published_models()),
        )
        return []
    out = []
    for kind in PUBLISHED_KINDS:
        name = published_strategy(kind)
        heads = _head_list(name, lists[kind], n_heads)
        outside = sorted({layer for layer, _ in heads} - set(layers))
        if layers and outside:
            log.warning("%s: heads in layers %s, outside the analysed layers", name, outside)
        out.append(PruneSet(name, 0, heads))
    return out
