"""Benchmarks: each ``bench/bench_<area>.py`` exposes ``run(quick: bool) -> dict``; ``scripts/bench`` runs them."""
