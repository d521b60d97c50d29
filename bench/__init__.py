"""Benchmarks anyone can run, and the fake S3 endpoint they run against."""
