"""The CT flow: spec, state-machine definition, permissions and triggers."""
