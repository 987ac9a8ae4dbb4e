"""A model: its registry, role and (composed) CT flow, endpoint and monitoring."""
