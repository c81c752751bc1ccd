"""The audit log. `services.record` is the one way an event gets written."""
