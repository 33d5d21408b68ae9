"""Registry and governance: model versions, stages, policy gates, sign-offs, audit log."""
