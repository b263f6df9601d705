"""The explanations evaluated inside the mutual step: faithfulness (Table 1), descriptor-augmented
zero-shot (Table 2) and, in the concept world, blurring the true attribute's region vs a random
one.

Why inside the mutual step: Table 1 needs each image's concept regions and per-concept scores,
which `explain_class` has just computed for the class it holds in memory (images, concept
grids, prompt embeddings, Sinkhorn picks), and a separate job would reload the model and every
image for work that takes a fraction of the mutual step's; on the demo the process start alone
would cost more than all of the evaluation. Per class, `per_class` writes its parts next to the
mutual step's (`images.parquet.parts/`) before the class's own part, so a resumed run skips a
class only when all of its parts are there; `finish` assembles the files once every class is
done (Table 2 needs the explanations of every class).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import torch

from clipconcepts.io import atomic_path
from clipconcepts.mutual.augmented import (
    AugmentedSettings,
    PromptBank,
    augmented_table,
    augmented_zeroshot,
)
from clipconcepts.mutual.faithfulness import (
    FaithfulnessSettings,
    class_faithfulness,
    summarise_faithfulness,
)
from clipconcepts.mutual.faithfulness_truth import class_truth, summarise_truth
from clipconcepts.mutual.schemas import FAITHFULNESS_SCHEMA, REGION_SCHEMA
from clipconcepts.mutual.schemas import REGION_TRUTH_SCHEMA as TRUTH_SCHEMA

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    """Settings and output paths of the three evaluations of one mutual step."""

    faithfulness_out: Path
    faithfulness_summary_out: Path
    augmented_out: Path
    truth_out: Path
    own_descriptors: list[list[str]]  # per class: its descriptors (Table 2's Base)
    faithfulness: FaithfulnessSettings = field(default_factory=FaithfulnessSettings)
    augmented: AugmentedSettings = field(default_factory=AugmentedSettings)
    family: str | None = None  # concept world: the set's family (the region check runs)
    colors: dict[str, str] | None = None  # concept world: image id -> object colour

    def stamp(self) -> dict:
        """What changes the results (for the resume stamp and the files' metadata)."""
        return {
            "faithfulness": asdict(self.faithfulness),
            "augmented": asdict(self.augmented),
            "region_check": self.family,
        }

    @property
    def checks_regions(self) -> bool:
        return self.family is not None and self.colors is not None

    # ---------------------------------------------------------------------------- per class
    @torch.no_grad()
    def per_class(
        self,
        tower,
        classifier: torch.Tensor,
        images: np.ndarray,
        ids: Sequence[str],
        rows: Sequence[dict],
        parts: Path,
        class_id: int,
    ) -> None:
        """Table 1's rows, the image embeddings (for Table 2) and the region check of one
        class, written to `parts`."""
        index = {image_id: k for k, image_id in enumerate(ids)}
        indexed = [{**r, "index": index[r["image_id"]]} for r in rows]
        rng = np.random.default_rng([self.faithfulness.seed, class_id])
        originals: dict = {}
        faith = class_faithfulness(
            tower, classifier, images, indexed, self.faithfulness, rng, originals
        )
        with atomic_path(parts / f"faithfulness-{class_id:05d}.parquet") as tmp:
            pl.DataFrame(faith, schema=FAITHFULNESS_SCHEMA).write_parquet(tmp)
        emb = torch.stack([originals[k][0] for k in range(len(ids))]).numpy()
        with atomic_path(parts / f"embeddings-{class_id:05d}.parquet") as tmp:
            pl.DataFrame(
                {
                    "class_id": [class_id] * len(ids),
                    "image_id": list(ids),
                    "embedding": emb.astype(np.float32).tolist(),
                },
                schema={
                    "class_id": pl.Int32,
                    "image_id": pl.String,
                    "embedding": pl.List(pl.Float32),
                },
            ).write_parquet(tmp)
        if self.checks_regions:
            first = {}
            for r in indexed:  # one row per image (the methods share the prediction)
                first.setdefault(r["image_id"], {**r, "color": self.colors.get(r["image_id"])})
            rng = np.random.default_rng([self.faithfulness.seed, class_id, 1])
            truth = class_truth(
                tower,
                classifier,
                images,
                list(first.values()),
                self.family,
                self.faithfulness,
                rng,
                originals,
            )
            with atomic_path(parts / f"regions-{class_id:05d}.parquet") as tmp:
                pl.DataFrame(truth, schema=REGION_SCHEMA).write_parquet(tmp)

    # ---------------------------------------------------------------------------- the end
    def finish(
        self,
        tower,
        classifier: torch.Tensor,
        table: pl.DataFrame,
        parts: Path,
        classnames: Sequence[str],
        meta: dict,
    ) -> None:
        """Assemble the three files from the parts and the whole images table."""
        from clipconcepts.mutual.run import write_with_metadata

        meta = {**meta, **self.stamp()}
        faith = _concat(parts, "faithfulness", FAITHFULNESS_SCHEMA)
        summary = summarise_faithfulness(faith, self.faithfulness.steps)
        write_with_metadata(faith, self.faithfulness_out, meta)
        write_with_metadata(summary, self.faithfulness_summary_out, meta)
        log.info("faithfulness (Table 1):\n%s", summary.select(pl.exclude("^.*_curve$")))

        augmented = self._augmented(tower, classifier, table, parts, classnames)
        write_with_metadata(augmented, self.augmented_out, meta)
        log.info("descriptor zero-shot (Table 2):\n%s", augmented)

        if self.checks_regions:
            per_image = _concat(parts, "regions", REGION_SCHEMA).to_dicts()
            truth = summarise_truth(per_image, self.family, classnames)
            log.info("true vs random region:\n%s", truth.filter(pl.col("level") == "dataset"))
        else:
            truth = pl.DataFrame(schema=TRUTH_SCHEMA)
        write_with_metadata(truth, self.truth_out, {**meta, "applies": self.checks_regions})

    def _augmented(self, tower, classifier, table, parts, classnames) -> pl.DataFrame:
        methods = table["method"].unique(maintain_order=True).to_list()
        if not methods:
            return augmented_table({"base": {"predicted": []}}, [], [])
        first = table.filter(pl.col("method") == methods[0])
        embeddings = _concat(parts, "embeddings", None)
        keys = ["class_id", "image_id"]  # ids alone may repeat across classes (torchvision sets)
        first = first.join(embeddings, on=keys, how="left", maintain_order="left")
        labels = first["class_id"].to_list()
        image_emb = torch.tensor(np.asarray(first["embedding"].to_list(), dtype=np.float32))
        explanations = {}
        for method in methods:
            sub = table.filter(pl.col("method") == method)
            texts = {(c, i): t for c, i, t in sub.select(*keys, "dv_texts").rows()}
            explanations[method] = [texts.get(k, []) for k in first.select(keys).rows()]
        prompts = PromptBank(
            lambda texts: tower.encode_text(texts, batch_size=self.augmented.batch_size),
            classnames,
            self.augmented.prompt,
        )
        result = augmented_zeroshot(
            image_emb.to(classifier.device),
            labels,
            explanations,
            self.own_descriptors,
            prompts,
            classifier,
            self.augmented,
        )
        return augmented_table(result, labels, first["correct"].to_list())


def _concat(parts: Path, prefix: str, schema) -> pl.DataFrame:
    files = sorted(parts.glob(f"{prefix}-*.parquet"))
    if files:
        return pl.concat([pl.read_parquet(p) for p in files])
    return pl.DataFrame(schema=schema) if schema is not None else pl.DataFrame()
