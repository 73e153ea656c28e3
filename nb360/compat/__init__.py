"""The vocabularies of other NAS libraries over nb360 tables (NATS-Bench's API). Nothing in the core imports it."""
