"""A discrete-event simulation of a fleet of hosts refreshing assumed-role credentials.

Each host runs a real refresh policy (this project's engine, or botocore's own refreshable
credentials) on a simulated clock against a simulated STS that throttles and can brown out.
``benchmarks/fleet_sim.py`` runs the scenarios and writes the figures; the model and its
assumptions are stated in docs/performance.md.
"""
