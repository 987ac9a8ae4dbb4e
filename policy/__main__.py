"""Pulumi policy pack entry point (``pulumi preview --policy-pack policy/``): the rules of ``infra.review.rules``."""

from pulumi_policy import EnforcementLevel, PolicyPack

from mlops_guardrails import PACK_NAME, policies  # this directory is on sys.path when Pulumi runs the pack

PolicyPack(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=policies())
