"""Wire-level fakes of the cloud services headseg talks to, for tests and benchmarks."""
