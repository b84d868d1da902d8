"""Benchmarks: latency, memory and fidelity per backend; style-fidelity evaluation."""
