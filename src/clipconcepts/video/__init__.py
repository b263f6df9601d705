"""Zero-shot text-video retrieval under head pruning (CCS paper, section 5.6, Figure 5).

Modules, one job each: `datasets` (MSR-VTT 1k-A, MSVD, DiDeMo test sets and manifests from
local folders), `decode` (PyAV: N uniformly sampled frames), `encode` (one decode per video, the
residual stream before the first pruned layer shared by every prune set, mean-pooled frames),
`metrics` (R@K, median and mean rank, ties), `evaluate` (the result tables), `conceptworld`
(moving-object clips written as mp4) and `cli` (the workflow steps). Nothing heavy is imported
here, so the command line stays fast.
"""
