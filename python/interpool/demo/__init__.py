"""The Advent of Code 2024 day 6 study: interpool's reference workload."""
