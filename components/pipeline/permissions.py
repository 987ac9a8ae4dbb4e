"""The CT flow state machine's least-privilege policy."""

from __future__ import annotations

from components.security import iam

from components.pipeline.definition import PENDING_KEY, TRAINED_METRIC, snapshot_prefix
from components.pipeline.spec import PipelineSpec, TRAINING_ALIAS
from components.pipeline.triggers import start_execution_statement

# =================================================================================================================
# IAM: what the state machine's role may do


def state_machine_statements(spec: PipelineSpec) -> list[iam.Statement]:
    """What the definition calls, scoped to this model's jobs, registry group, endpoint, topic and runs.

    S3 reads (the data listing, the versions it copies, evaluation.json) come from the buckets' ``grant_read``.
    """
    p = spec.job_prefix
    events = f"arn:{spec.partition}:events:{spec.region}:{spec.account_id}:rule"
    statements: list[iam.Statement] = [
        {
            "Sid": "RunOwnJobs",
            "Effect": "Allow",
            "Action": [
                "sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob", "sagemaker:StopProcessingJob",
                "sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob",
                "sagemaker:AddTags", "sagemaker:ListTags",
            ],
            "Resource": [spec.sagemaker_arn("processing-job", f"{p}-*"), spec.sagemaker_arn("training-job", f"{p}-*")],
        },
        {
            "Sid": "PassOnlyTheModelRoleToSageMaker",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": spec.role_arn,
            "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        },
        {
            # The .sync integrations watch jobs through these managed rules, and touch nothing else in EventBridge.
            "Sid": "SyncJobEventRules",
            "Effect": "Allow",
            "Action": ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            "Resource": [
                f"{events}/StepFunctionsGetEventsForSageMakerProcessingJobsRule",
                f"{events}/StepFunctionsGetEventsForSageMakerTrainingJobsRule",
            ],
        },
        {
            "Sid": "RegisterInOwnGroup",
            "Effect": "Allow",
            "Action": [
                "sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages", "sagemaker:AddTags",
            ],
            "Resource": [
                spec.sagemaker_arn("model-package-group", spec.model_package_group),
                spec.sagemaker_arn("model-package", f"{spec.model_package_group}/*"),
            ],
        },
        {
            "Sid": "SeeOwnRuns",
            "Effect": "Allow",
            "Action": "states:ListExecutions",
            "Resource": spec.state_machine_arn,  # versions and aliases authorize against the unqualified ARN
        },
        {
            # The marker of a new-data trigger dropped while another run trained (queued once, cleared by the run
            # that starts it). Reads of <model>/runs/ come from the models bucket's grant_read.
            "Sid": "QueueDroppedNewData",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:DeleteObject"],
            "Resource": f"arn:{spec.partition}:s3:::{spec.models_bucket}/{spec.model}/runs/{PENDING_KEY}",
        },
        {
            # The training-data snapshot: CopyObject reads the listed version (the data bucket's grant_read) and
            # writes the copy and the manifest here, with the stack key.
            "Sid": "WriteDataSnapshots",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:PutObjectTagging"],
            "Resource": f"arn:{spec.partition}:s3:::{spec.models_bucket}/{snapshot_prefix(spec)}*",
        },
        {
            # The queued-trigger marker, the data snapshot and its manifest are written with the stack key.
            "Sid": "EncryptQueuedTrigger",
            "Effect": "Allow",
            "Action": "kms:GenerateDataKey",
            "Resource": spec.kms_key_arn,
            "Condition": {"StringEquals": {"kms:ViaService": f"s3.{spec.region}.amazonaws.com"}},
        },
        start_execution_statement(spec, (TRAINING_ALIAS,)) | {"Sid": "StartQueuedRun"},
        {
            # PutMetricData has no resource-level permissions: the namespace condition scopes it.
            "Sid": "PublishTrainedHeartbeat",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": TRAINED_METRIC[0]}},
        },
        {"Sid": "NotifyStackTopic", "Effect": "Allow", "Action": "sns:Publish", "Resource": spec.topic_arn},
        {
            "Sid": "EncryptNotifications",
            "Effect": "Allow",
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
            "Resource": spec.kms_key_arn,
            "Condition": {"StringEquals": {"kms:ViaService": f"sns.{spec.region}.amazonaws.com"}},
        },
        {
            # CloudWatch Logs delivery and X-Ray have no resource-level permissions.
            "Sid": "ExecutionLogsAndTraces",
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
                "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
                "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
            ],
            "Resource": "*",
        },
    ]
    if spec.deploy_enabled:
        statements += [
            {
                "Sid": "DeployOwnModels",
                "Effect": "Allow",
                "Action": ["sagemaker:CreateModel", "sagemaker:CreateEndpointConfig", "sagemaker:AddTags"],
                "Resource": [spec.sagemaker_arn("model", f"{p}-*"), spec.sagemaker_arn("endpoint-config", f"{p}-*")],
            },
            {
                "Sid": "UpdateOwnEndpoint",
                "Effect": "Allow",
                "Action": ["sagemaker:UpdateEndpoint", "sagemaker:DescribeEndpoint"],
                # IAM authorizes UpdateEndpoint on the endpoint and on the configuration it moves to.
                "Resource": [
                    spec.sagemaker_arn("endpoint", spec.endpoint_name),
                    spec.sagemaker_arn("endpoint-config", f"{spec.job_prefix}-*"),
                ],
            },
            {
                # UpdateEndpoint hands the configuration's key to SageMaker for the new instances' volumes.
                "Sid": "GrantStackKeyToEndpointVolumes",
                "Effect": "Allow",
                "Action": "kms:CreateGrant",
                "Resource": spec.kms_key_arn,
                "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            },
            {
                # DescribeKey never carries kms:GrantIsForAWSResource, so it cannot share that condition.
                "Sid": "DescribeStackKey",
                "Effect": "Allow",
                "Action": "kms:DescribeKey",
                "Resource": spec.kms_key_arn,
            },
        ]
    return statements
