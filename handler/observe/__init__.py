"""Observation: one JSON log line per request and its CloudWatch metrics.

`telemetry` writes them (Powertools' Logger and the embedded metric format);
`observation` is the pure part, what a request's line and metric sets say.
Other wings add facts to the current request with `telemetry.note(...)`.
Imports protocol only, so metering and the pipeline can report into it.
"""
