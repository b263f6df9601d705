"""Visual concepts: the prominent patches of a class grouped into L concepts.

Two methods, both fitted on all prominent patches of one class:
- `pca`: PCA(L) of the raw (un-normalised) patch features, each component min-max scaled over
  the class (clipped to [0, 1]), each patch assigned its arg-max component. The solver is fixed
  (`PCA_SOLVER`, exact LAPACK SVD) and seeded: sklearn's default `auto` picks a randomized
  solver for ViT-B-sized inputs (the authors' case), whose components, and so the labels,
  follow the global random state;
- `kmeans`: K-means(L), Euclidean, on L2-normalised features (seeded: the authors' is not, so
  theirs varies from run to run).
Fewer patches than L give fewer concepts; an image keeps the concepts its own patches got.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import MinMaxScaler

CONCEPT_METHODS = ("pca", "kmeans")
PCA_SOLVER = "full"


def pca_concepts(features: np.ndarray, n_concepts: int = 5, seed: int = 0) -> np.ndarray:
    """Concept id per row of `features` `[n, C]` (PCA, min-max, arg-max)."""
    n = features.shape[0]
    k = min(n_concepts, n, features.shape[1])
    if k < 2:
        return np.zeros(n, dtype=np.int64)
    pca = PCA(n_components=k, svd_solver=PCA_SOLVER, random_state=seed)
    scores = pca.fit_transform(features.astype(np.float64))
    scaled = MinMaxScaler(clip=True).fit_transform(scores)
    return scaled.argmax(axis=1)


def kmeans_concepts(
    features: np.ndarray, n_concepts: int = 5, seed: int = 0, iterations: int = 500
) -> np.ndarray:
    """Concept id per row of `features` `[n, C]` (K-means on L2-normalised rows, seeded)."""
    x = features.astype(np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-12)
    distinct = len(np.unique(x.round(decimals=12), axis=0))
    k = min(n_concepts, distinct)
    if k < 2:
        return np.zeros(len(x), dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        km = KMeans(n_clusters=k, init="random", n_init=1, max_iter=iterations, random_state=seed)
        return km.fit_predict(x)


def assign_concepts(
    method: str, features: np.ndarray, n_concepts: int, seed: int = 0, iterations: int = 500
) -> np.ndarray:
    if method == "pca":
        return pca_concepts(features, n_concepts, seed)
    if method == "kmeans":
        return kmeans_concepts(features, n_concepts, seed, iterations)
    raise ValueError(f"unknown concept method {method!r}; use {CONCEPT_METHODS} (mutual.methods)")
