"""The node agent: reads each GPU (NVML, or a fake for tests and demos), turns the readings
into `neocloud.telemetry.v1` events and delivers them to the ingest API or the bus, keeping
on disk whatever could not be delivered yet.

Modules, bottom up: `gpus` (readings and the backend protocol), `fake` and `nvml` (the two
backends), `backends` (choosing one), `telemetry` (events of a round of readings), `buffer`
(the durable on-disk queue), `sinks` (API and bus), `loop` (the sampling loop). See
docs/agent.md.
"""
