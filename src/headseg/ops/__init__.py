"""What a person runs against a deployment: backfill, replay, the invokers (FC 3.0, fc2), FC API reads, status
and its report, doctor, the package builder. Never in the FC code package."""
