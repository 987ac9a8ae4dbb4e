"""boto3 clients for a stack, from its typed config (LocalStack wiring included)."""

from __future__ import annotations

from functools import cached_property

import boto3
from botocore.config import Config

from components.naming import bucket_name
from infra.config import StackConfig


class StackSession:
    """Clients and physical names of one deployed stack, computed from the config and the caller's account."""

    def __init__(self, cfg: StackConfig, stack: str):
        self.cfg = cfg
        self.stack = stack
        kwargs: dict = {"region_name": cfg.region}
        if cfg.aws_profile:
            kwargs["profile_name"] = cfg.aws_profile
        if cfg.localstack is not None:
            kwargs.update(aws_access_key_id="test", aws_secret_access_key="test")
        self.session = boto3.Session(**kwargs)

    def client(self, service: str):
        extra: dict = {}
        if self.cfg.localstack is not None:
            extra["endpoint_url"] = self.cfg.localstack.endpoint
            if service == "s3":
                extra["config"] = Config(s3={"addressing_style": "path"}, retries={"mode": "standard"})
        return self.session.client(service, **extra)

    @cached_property
    def account_id(self) -> str:
        return self.client("sts").get_caller_identity()["Account"]

    def bucket(self, role: str) -> str:
        return bucket_name(self.cfg.name_prefix, self.stack, role, self.account_id, self.cfg.region)
