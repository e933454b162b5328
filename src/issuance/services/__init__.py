"""Use cases: functions that take their collaborators (unit of work, clock, ids) explicitly."""
