"""Ground truth for the mutual descriptors in the concept world.

Every concept-world descriptor names one attribute value of one family ("a red object", "a
striped background"), and every image's true attributes are in its manifest. A mutual
descriptor is right when it names one of the image's own values. Precision is pooled over
images (right descriptors / all descriptors), overall and per family, for D_v and for the
descriptors shared with the class side; the baseline is the precision of descriptors drawn
uniformly from the bank for the same images (overall, and within each family's descriptors).
"""

from __future__ import annotations

import polars as pl

from clipconcepts.mutual.schemas import TRUTH_SCHEMA


def descriptor_precision(
    images: pl.DataFrame, bank: pl.DataFrame, manifest: pl.DataFrame
) -> pl.DataFrame:
    """Precision of D_v (`mutual`) and of D_v ∩ D_y (`shared`) per method and family.

    `images`: the mutual step's rows; `bank`: `descriptor_id, family, value`; `manifest`:
    `image_id` and one column per family with the image's value.
    """
    families = sorted(
        f for f in bank["family"].drop_nulls().unique().to_list() if f in manifest.columns
    )
    if not families:
        raise ValueError(
            "the descriptor bank names no family of the manifest (not a concept-world bank?)"
        )
    attrs = manifest.select(["image_id", *families]).unpivot(
        index="image_id", variable_name="family", value_name="true_value"
    )
    rows = []
    for method in images["method"].unique(maintain_order=True).to_list():
        sub = images.filter(pl.col("method") == method)
        n_images = sub.height
        # baseline: the share of the bank (of each family's part) naming the image's own value
        pairs = sub.select("image_id").join(attrs, on="image_id")
        bank_hits = pairs.join(bank, on="family").with_columns(
            right=pl.col("value") == pl.col("true_value")
        )
        per_family = bank_hits.group_by("family").agg(pl.col("right").mean().alias("baseline"))
        overall = bank_hits.group_by("image_id").agg(pl.col("right").sum()).get_column("right")
        overall_baseline = float(overall.mean() / bank.height) if bank.height else 0.0
        for what, column in (("mutual", "dv_ids"), ("shared", "shared_ids")):
            picked = (
                sub.select("image_id", pl.col(column).alias("descriptor_id"))
                .explode("descriptor_id")
                .drop_nulls("descriptor_id")
                .join(bank.select("descriptor_id", "family", "value"), on="descriptor_id")
                .join(attrs, on=["image_id", "family"], how="left")
                .with_columns(right=pl.col("value") == pl.col("true_value"))
            )
            rows.append(
                {
                    "method": method,
                    "descriptors": what,
                    "family": "all",
                    "precision": float(picked["right"].mean()) if picked.height else None,
                    "baseline": overall_baseline,
                    "n_descriptors": picked.height,
                    "n_images": n_images,
                }
            )
            for family in families:
                fam = picked.filter(pl.col("family") == family)
                base = per_family.filter(pl.col("family") == family)["baseline"]
                rows.append(
                    {
                        "method": method,
                        "descriptors": what,
                        "family": family,
                        "precision": float(fam["right"].mean()) if fam.height else None,
                        "baseline": float(base[0]) if len(base) else None,
                        "n_descriptors": fam.height,
                        "n_images": n_images,
                    }
                )
    return pl.DataFrame(rows, schema=TRUTH_SCHEMA)
