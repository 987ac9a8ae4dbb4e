"""The Amazon States Language definition of a model's CT flow (a pure function of its spec)."""

from __future__ import annotations

from typing import Any, Mapping

from training.container_contract import SERVING_ENVIRONMENT, TRAINING_ENTRYPOINT
from training.code_check import CODE_SHA_ENV, verify_code
from training.contract import DataVersion, LineageMetadata

from components.pipeline.spec import ALREADY_RUNNING, CAPACITY_ERRORS, CODE_DIR, CONTRACT_DIR, DATA_DIR, DEPLOY, ENDPOINT_BROKEN, ENDPOINT_MOVING, EVALUATE, EVALUATION_SPLIT, EXIT_MESSAGE, FAILURE_KIND, GATE, GATE_PASS, HOLDOUT_DIR, MODEL_DIR, NOTIFICATION_FAILED, NOTIFY_FAILURE, NOTIFY_SUCCESS, OUTPUT_DIR, PRODUCTION_DIR, PipelineSpec, REGISTER, RUN_FAILED, SERVICE_ERRORS, STEP_FAILED, TRAIN, VALIDATE

# =================================================================================================================
# Definition


def _name(spec: PipelineSpec, step: str) -> str:
    """``<job prefix>-<step>-<run id>-<retry>``: at most 32+1+5+1+20+1+1 = 61 of the 63 characters allowed."""
    return f"States.Format('{spec.job_prefix}-{step}-{{}}-{{}}', $.run.id, $$.State.RetryCount)"


def _run_uri(spec: PipelineSpec, leaf: str) -> str:
    return f"States.Format('s3://{spec.models_bucket}/{spec.model}/runs/{{}}/{leaf}', $.run.id)"


def _catch() -> list[dict[str, Any]]:
    return [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": NOTIFY_FAILURE}]


def _task(resource: str, parameters: dict[str, Any], *, retry: list[dict[str, Any]], next_state: str | None,
          result_path: str | None, result_selector: dict[str, Any] | None = None, catch: bool = True) -> dict[str, Any]:
    state: dict[str, Any] = {"Type": "Task", "Resource": resource, "Parameters": parameters}
    if result_selector is not None:
        state["ResultSelector"] = result_selector
    state["ResultPath"] = result_path
    state["Retry"] = retry
    if catch:
        state["Catch"] = _catch()
    if next_state is None:
        state["End"] = True
    else:
        state["Next"] = next_state
    return state


def _choice(choices: list[dict[str, Any]], default: str) -> dict[str, Any]:
    return {"Type": "Choice", "Choices": choices, "Default": default}


def _pass(parameters: dict[str, Any], result_path: str, next_state: str, comment: str | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {"Type": "Pass", "Parameters": parameters, "ResultPath": result_path, "Next": next_state}
    if comment:
        state["Comment"] = comment
    return state


def _sagemaker_retry(spec: PipelineSpec) -> list[dict[str, Any]]:
    return [spec.capacity_retry.asl(CAPACITY_ERRORS), spec.service_retry.asl(SERVICE_ERRORS)]


def _aux_retry(spec: PipelineSpec) -> list[dict[str, Any]]:
    return [spec.aux_retry.asl(("States.TaskFailed",))]


def _s3_input(name: str, local_path: str, uri: str | None = None, *, uri_path: str | None = None) -> dict[str, Any]:
    s3: dict[str, Any] = {"LocalPath": local_path, "S3DataType": "S3Prefix", "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated"}
    if uri_path is not None:
        s3["S3Uri.$"] = uri_path
    else:
        s3["S3Uri"] = uri
    return {"InputName": name, "S3Input": s3}


def _contract_file(spec: PipelineSpec, directory: str) -> str:
    return f"{directory}/{spec.contract_key.rsplit('/', 1)[-1]}"


def _entrypoint(module: str, prepare: str = "") -> list[str]:
    """Processing jobs do not unpack a source dir as script-mode training does: check the code package, extract
    it (the ``training`` package and the wheels of its pinned dependencies, installed offline by the package
    itself), then run the module with the job's ``ContainerArguments`` as ``"$@"``."""
    script = f"cd {CODE_DIR} && tar xzf sourcedir.tar.gz && {prepare}exec python -m training.{module} \"$@\""
    check = verify_code(f"{CODE_DIR}/sourcedir.tar.gz", "/opt/ml/output/message")
    for item in (script, check):
        if len(item) > 256:  # CreateProcessingJob's limit per ContainerEntrypoint item
            raise ValueError(f"the {module} entry point script is {len(item)} characters; SageMaker takes 256")
    # bash -c CHECK: $0 is bash and $@ the run script with its own $0 (the module) and the job's arguments.
    return ["/bin/bash", "-c", check, "/bin/bash", "-c", script, module]


def _model_entrypoint(script: str, prepare: str = "") -> list[str]:
    """Like :func:`_entrypoint` for a model's own code: its package (files at the root) is checked and unpacked,
    then its ``script`` runs with ``python3`` and the job's arguments (the image must have bash, tar, sha256sum, python3)."""
    run = f"cd {CODE_DIR} && tar xzf sourcedir.tar.gz && {prepare}exec python3 {script} \"$@\""
    check = verify_code(f"{CODE_DIR}/sourcedir.tar.gz", "/opt/ml/output/message")
    if len(run) > 256:
        raise ValueError(f"the {script} entry point script is {len(run)} characters; SageMaker takes 256")
    return ["/bin/bash", "-c", check, "/bin/bash", "-c", run, script]


def _processing_job(spec: PipelineSpec, step: str, module: str, output_leaf: str, *, inputs: list[dict[str, Any]] | None = None,
                    arguments: list[str] | None = None, dynamic: str | None = None, prepare: str = "",
                    kind: str = "platform", instance_step: str | None = None,
                    outputs: list[tuple[str, str, str]] | None = None) -> dict[str, Any]:
    """A processing job; ``dynamic`` names a state path holding ``inputs`` and ``arguments``.

    ``kind``: ``platform`` runs ``training.<module>`` of the platform's package in the platform's image;
    ``model`` runs the model's own script ``module`` from its package in its training image.
    ``outputs``: (name, local path, leaf under the run) of each output; default one ``output`` at ``output_leaf``."""
    p = spec.processing
    if kind == "model":
        assert spec.model_code is not None
        image, sha, entrypoint = spec.training_image, spec.model_code.code_sha256, _model_entrypoint(module, prepare)
    else:
        image, sha, entrypoint = spec.platform_training_image, spec.code_sha256, _entrypoint(module, prepare)
    app: dict[str, Any] = {"ImageUri": image, "ContainerEntrypoint": entrypoint}
    params: dict[str, Any] = {"ProcessingJobName.$": _name(spec, step), "RoleArn": spec.role_arn, "AppSpecification": app}
    if dynamic is None:
        app["ContainerArguments"] = arguments
        params["ProcessingInputs"] = inputs
    else:
        app["ContainerArguments.$"] = f"{dynamic}.arguments"
        params["ProcessingInputs.$"] = f"{dynamic}.inputs"
    params.update(
        {
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": name,
                        "S3Output": {"S3Uri.$": _run_uri(spec, leaf), "LocalPath": local, "S3UploadMode": "EndOfJob"},
                    }
                    for name, local, leaf in (outputs or [("output", OUTPUT_DIR, output_leaf)])
                ],
                "KmsKeyId": spec.kms_key_arn,
            },
            "ProcessingResources": {
                "ClusterConfig": {
                    "InstanceCount": p.instance_count,
                    "InstanceType": spec.processing_type(instance_step or step),
                    "VolumeSizeInGB": p.volume_size_gb,
                    "VolumeKmsKeyId": spec.kms_key_arn,
                }
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": p.max_runtime_seconds},
            "Environment": {"MLOPS_MODEL": spec.model, "MLOPS_RUN_ID.$": "$.run.id", CODE_SHA_ENV: sha},
            "Tags": spec.tag_list(),
        }
    )
    # Isolated always: the code package vendors its wheels, inputs and outputs go through SageMaker's own S3 access.
    network: dict[str, Any] = {"EnableNetworkIsolation": True}
    if spec.vpc is not None:
        network.update({"EnableInterContainerTrafficEncryption": True, "VpcConfig": spec.vpc})
    params["NetworkConfig"] = network
    return params


BASELINE_FILE = "baseline.json"
"""training.baseline's file name (that module imports pandas; components do not)."""
PREPROCESS = "Preprocess"
BASELINE = "ComputeBaseline"
PREPROCESS_OUTPUTS = (("train", f"{OUTPUT_DIR}/train"), ("validation", f"{OUTPUT_DIR}/validation"))
"""The model's preprocess writes the train and validation channels here (its defaults in the processing job)."""

# The platform's baseline statistics of a channel, for a model whose own code writes none: training.baseline on the
# contract-typed frame (no prediction section: the model's scores are not the platform's to compute). $0 of the run
# script; arguments: data directory, contract file, output directory.
BASELINE_SCRIPT = (
    "import sys;from training import validate as v,baseline as b,data as d;P=d.Path;"
    "a=sys.argv[1:];c=d.resolve_contract(a[1]);r=v.validate_dataset(P(a[0]),c)[1];"
    "d.write_json(P(a[2])/'baseline.json',b.compute_baseline(r.frame,c,b.np.empty(0)))"
)


# The platform's gate for a model's own code without an evaluate entry point: its train wrote evaluation.json (the
# metrics of its validation split) to the job's output data; the platform judges those metrics with the gate's rule
# and the production model's, and writes the report GateVerdict reads. Three items ($0$1$2 of the run script, each within
# SageMaker's 256 characters); arguments: the unpacked output, the output directory, the production report or -,
# then the rule's options.
JUDGE_SCRIPT = (
    "from training._deps import ensure_dependencies as e;e();import sys,json,glob;"
    "from training.contract import EvaluationRule as R;a=sys.argv[1:];r=R.from_cli_args(a[3:])[0];",
    "m=json.load(open(glob.glob(a[0]+'/**/evaluation.json',recursive=True)[0]))['metrics'];"
    "p=json.load(open(a[2]))['metrics'] if a[2]!='-' else None;k,w=r.judge(m,p);",
    "json.dump({'format':'mlops-evaluation/1','metrics':m,'production_metrics':p,'rule':r.model_dump(),"
    "'verdict':['fail','pass'][k],'reasons':w},open(a[1]+'/evaluation.json','w'))",
)
REPORT_DIR = "/opt/ml/processing/input/report"


def _judge_entrypoint() -> list[str]:
    unpack = f'for a in {REPORT_DIR}/*.tar.gz; do [ -f "$a" ] && tar xzf "$a" -C "${{a%/*}}"; done; '
    run = f'cd {CODE_DIR} && tar xzf sourcedir.tar.gz && {unpack}exec python -c "$0$1$2" "${{@:3}}"'
    check = verify_code(f"{CODE_DIR}/sourcedir.tar.gz", "/opt/ml/output/message")
    for item in (run, check, *JUDGE_SCRIPT):
        if len(item) > 256:
            raise ValueError(f"the judge entry point item is {len(item)} characters; SageMaker takes 256")
    return ["/bin/bash", "-c", check, "/bin/bash", "-c", run, *JUDGE_SCRIPT]


def _baseline_entrypoint() -> list[str]:
    run = f'cd {CODE_DIR} && tar xzf sourcedir.tar.gz && exec python -c "$0" "$@"'
    check = verify_code(f"{CODE_DIR}/sourcedir.tar.gz", "/opt/ml/output/message")
    for item in (run, check, BASELINE_SCRIPT):
        if len(item) > 256:
            raise ValueError(f"the baseline entry point item is {len(item)} characters; SageMaker takes 256")
    return ["/bin/bash", "-c", check, "/bin/bash", "-c", run, BASELINE_SCRIPT]


def _model_states(spec: PipelineSpec, next_state: str) -> dict[str, dict[str, Any]]:
    """A model's own code, after ValidateData: its Preprocess (when it has one) writes the train and validation
    channels under the run, then the platform computes the baseline statistics drift needs from the training channel."""
    code = spec.model_code
    assert code is not None
    states: dict[str, dict[str, Any]] = {}
    if code.preprocess:
        states[PREPROCESS] = _task(
            "arn:aws:states:::sagemaker:createProcessingJob.sync",
            _processing_job(
                spec, "prep", code.preprocess, "preprocess", kind="model", instance_step="preprocess",
                inputs=[
                    _s3_input("code", CODE_DIR, code.code_uri),
                    _s3_input("contract", CONTRACT_DIR, f"s3://{spec.models_bucket}/{spec.contract_key}"),
                    _s3_input("data", DATA_DIR, uri_path="$.data.s3_uri"),
                ],
                arguments=["--input", DATA_DIR, "--train-output", PREPROCESS_OUTPUTS[0][1], "--validation-output", PREPROCESS_OUTPUTS[1][1]],
                outputs=[(name, local, f"preprocess/{name}") for name, local in PREPROCESS_OUTPUTS],
            ),
            retry=_sagemaker_retry(spec), next_state="PreprocessedChannels", result_path="$.preprocessing",
            result_selector={"job_name.$": "$.ProcessingJobName"},
        )
        states["PreprocessedChannels"] = _pass(
            {"train.$": _run_uri(spec, "preprocess/train/"), "validation.$": _run_uri(spec, "preprocess/validation/")},
            "$.channels", BASELINE, comment="Train reads what Preprocess wrote, versioned under the run.",
        )
    else:
        states["SnapshotChannels"] = _pass({"train.$": "$.data.s3_uri"}, "$.channels", BASELINE)
    states[BASELINE] = _task(
        "arn:aws:states:::sagemaker:createProcessingJob.sync",
        _processing_job(
            spec, "base", "baseline", "baseline", instance_step="baseline",
            inputs=[
                _s3_input("code", CODE_DIR, spec.code_uri),
                _s3_input("contract", CONTRACT_DIR, f"s3://{spec.models_bucket}/{spec.contract_key}"),
                _s3_input("data", DATA_DIR, uri_path="$.channels.train"),
            ],
            arguments=[DATA_DIR, _contract_file(spec, CONTRACT_DIR), OUTPUT_DIR],
        ),
        retry=_sagemaker_retry(spec), next_state=next_state, result_path="$.baseline",
        result_selector={"job_name.$": "$.ProcessingJobName"},
    )
    states[BASELINE]["Parameters"]["AppSpecification"]["ContainerEntrypoint"] = _baseline_entrypoint()
    return states


TRAINING_CODE = "/opt/ml/input/data/code/sourcedir.tar.gz"
"""Where the training job's code channel puts the package (script mode reads its submit directory from there)."""


def _channel(name: str, uri: str, content_type: str) -> dict[str, Any]:
    """A File-mode channel; ``uri`` starting with ``$.`` is a state path (filled at run time)."""
    source: dict[str, Any] = {"S3DataType": "S3Prefix", "S3DataDistributionType": "FullyReplicated"}
    source["S3Uri.$" if uri.startswith("$.") else "S3Uri"] = uri
    return {"ChannelName": name, "ContentType": content_type, "DataSource": {"S3DataSource": source}}


MODEL_CODE_ROOT = "/opt/ml/code"
"""Where script mode unpacks the submit directory (a model's requirements.txt and wheels/ are there)."""
OFFLINE_PIP = {"PIP_FIND_LINKS": f"{MODEL_CODE_ROOT}/wheels", "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "false"}
"""A model's own code: the toolkit's ``pip install . -r requirements.txt`` takes the vendored wheels, never the network
(without build isolation, which would fetch setuptools)."""


def _training_job(spec: PipelineSpec) -> dict[str, Any]:
    t = spec.training
    code = spec.model_code
    if code is None:
        program, hyperparameters, code_uri, code_sha = "training/train.py", spec.hyperparameters.to_hyperparameters(), spec.code_uri, spec.code_sha256
    else:
        program, hyperparameters, code_uri, code_sha = code.train, dict(code.hyperparameters), code.code_uri, code.code_sha256
    algorithm: dict[str, Any] = {
        "TrainingImage": spec.training_image,
        "TrainingInputMode": "File",
        "MetricDefinitions": [dict(m) for m in spec.metric_definitions],
    }
    if code is None:
        # The code channel's package is checked, then sagemaker-training's `train` runs (not the image's
        # ambiguous `train`, see training._deps) and unpacks it as the submit directory.
        algorithm["ContainerEntrypoint"] = ["/bin/sh", "-c", verify_code(TRAINING_CODE, "/opt/ml/output/failure"), *TRAINING_ENTRYPOINT]
    elif not code.own_image:
        # A model's own code in a framework image: checked, then the image's own `train` (what SageMaker runs
        # without an entry point; the XGBoost image has sagemaker-containers' only). An own container keeps its own.
        algorithm["ContainerEntrypoint"] = ["/bin/sh", "-c", verify_code(TRAINING_CODE, "/opt/ml/output/failure"), "train"]
    channels = [_channel("train", "$.channels.train" if code is not None and code.preprocess else "$.data.s3_uri", "text/csv")]
    if code is not None and code.preprocess:
        channels.append(_channel("validation", "$.channels.validation", "text/csv"))
    environment = {"MLOPS_CONTRACT": _contract_file(spec, "/opt/ml/input/data/contract"), "MLOPS_MODEL": spec.model, CODE_SHA_ENV: code_sha}
    if code is not None:
        environment.update(OFFLINE_PIP)
    params: dict[str, Any] = {
        "TrainingJobName.$": _name(spec, "train"),
        "RoleArn": spec.role_arn,
        "AlgorithmSpecification": algorithm,
        "HyperParameters": {
            **hyperparameters,
            # SageMaker's FailureReason: why the data was refused (the built-in recipe's option; a model's own
            # code gets only its hyperparameters).
            **({"failure_file": "/opt/ml/output/failure"} if code is None else {}),
            "sagemaker_program": program,
            # Script mode reads the code from its channel rather than fetching it from S3: that works under
            # network isolation too, and the job's inputs record exactly which code package it ran.
            "sagemaker_submit_directory": TRAINING_CODE,
            "sagemaker_region": spec.region,
        },
        "InputDataConfig": [
            *channels,  # the run's snapshot (ListTrainingData … WriteDataManifest), or what Preprocess made of it
            _channel("contract", f"s3://{spec.models_bucket}/{spec.contract_key}", "application/json"),
            _channel("code", code_uri, "application/gzip"),
        ],
        "OutputDataConfig": {"S3OutputPath.$": _run_uri(spec, "training"), "KmsKeyId": spec.kms_key_arn},
        "ResourceConfig": {
            "InstanceType": t.instance_type,
            "InstanceCount": t.instance_count,
            "VolumeSizeInGB": t.volume_size_gb,
            "VolumeKmsKeyId": spec.kms_key_arn,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": t.max_runtime_seconds},
        "Environment": environment,
        "Tags": spec.tag_list(),
        # Isolated always: no egress from the container; SageMaker itself fetches the channels and the image.
        "EnableNetworkIsolation": True,
    }
    if spec.spot:
        params["EnableManagedSpotTraining"] = True
        params["StoppingCondition"]["MaxWaitTimeInSeconds"] = spec.max_wait_seconds
        # An interrupted spot job resumes from its last checkpoint instead of starting over.
        params["CheckpointConfig"] = {"S3Uri.$": _run_uri(spec, "checkpoints"), "LocalPath": "/opt/ml/checkpoints"}
    if spec.vpc is not None:
        params["VpcConfig"] = spec.vpc
        params["EnableInterContainerTrafficEncryption"] = True
    return params


LISTING_PAGE = 100
TRAINED_METRIC = ("MLOps/ContinuousTraining", "TrainingRunsSucceeded")
"""(namespace, metric) a run publishes when it has trained and registered a model: the staleness alarm watches it."""
PENDING_KEY = "pending/new_data.json"
"""Under ``<model>/runs/``: the new-data trigger a training run dropped because another one was in progress."""


def _guard_states(spec: PipelineSpec, kind: str, alias_arn: str, verdicts: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Who else of this kind is running: classify every RUNNING execution on every page of the listing.

    Runs of the kind are those started through ``alias_arn`` (training and deploy-only runs are kept apart).
    Each one is this run (``self``), ``older`` (listed after it: the listing is newest first) or ``newer``. ListExecutions is eventually consistent: a run that does not see itself yet waits and looks
    again, so it never goes ahead beside an older run it cannot see yet.

    ``verdicts`` maps ``older`` / ``newer`` / ``proceed`` / ``unlisted`` to the states they lead to.
    """
    begin, listing, more_page, scan = f"Check{kind}", f"List{kind}", f"List{kind}More", f"Scan{kind}"
    seen, newer, older, more = f"Seen{kind}", f"Newer{kind}", f"Older{kind}", f"MorePages{kind}"
    has_self, has_newer, has_older = f"HasSelf{kind}", f"HasNewer{kind}", f"HasOlder{kind}"
    verdict, unlisted, wait, count = f"Another{kind}", f"NotListedYet{kind}", f"Wait{kind}", f"CountPoll{kind}"
    flag = lambda path, nxt: {"Type": "Pass", "Result": True, "ResultPath": path, "Next": nxt}  # noqa: E731
    label = lambda value: {"Type": "Pass", "Result": value, "End": True}  # noqa: E731
    contains = lambda value, nxt: _choice(  # noqa: E731
        [{"Variable": f"$.guard_scan.{value}", "BooleanEquals": True, "Next": nxt}], {"self": has_newer, "newer": has_older, "older": more}[value]
    )
    list_params = {"StateMachineArn": spec.state_machine_arn, "StatusFilter": "RUNNING", "MaxResults": LISTING_PAGE}
    item = "$.item"
    classify = {
        "StartAt": f"OfKind{kind}",
        "States": {
            f"OfKind{kind}": _choice(
                [{"And": [{"Variable": f"{item}.StateMachineAliasArn", "IsPresent": True},
                          {"Variable": f"{item}.StateMachineAliasArn", "StringEquals": alias_arn}],
                  "Next": f"Which{kind}"}],
                f"OtherKind{kind}",
            ),
            # The listing is newest first: an item is older than this run if this run comes before it.
            f"Which{kind}": _choice(
                [
                    {"Variable": "$.arn", "StringEqualsPath": "$.me", "Next": f"IsSelf{kind}"},
                    {"Variable": "$.index", "NumericEquals": 0, "Next": f"IsNewer{kind}"},
                ],
                f"Before{kind}",
            ),
            f"Before{kind}": _pass(
                {"self.$": "States.ArrayContains(States.ArrayGetItem(States.ArrayPartition($.arns, $.index), 0), $.me)"},
                "$.before", f"SelfBefore{kind}",
            ),
            f"SelfBefore{kind}": _choice([{"Variable": "$.before.self", "BooleanEquals": True, "Next": f"IsOlder{kind}"}], f"IsNewer{kind}"),
            f"OtherKind{kind}": label("other"),
            f"IsSelf{kind}": label("self"),
            f"IsOlder{kind}": label("older"),
            f"IsNewer{kind}": label("newer"),
        },
    }
    return {
        begin: _pass({"seen": False, "newer": False, "older": False}, "$.guard", listing),
        listing: _task("arn:aws:states:::aws-sdk:sfn:listExecutions", list_params, retry=_aux_retry(spec), next_state=scan,
                       result_path="$.guard_page"),
        more_page: _task("arn:aws:states:::aws-sdk:sfn:listExecutions", {**list_params, "NextToken.$": "$.guard_page.NextToken"},
                         retry=_aux_retry(spec), next_state=scan, result_path="$.guard_page"),
        scan: {
            "Type": "Map",
            "ItemsPath": "$.guard_page.Executions",
            "ItemSelector": {
                "item.$": "$$.Map.Item.Value",
                "arn.$": "$$.Map.Item.Value.ExecutionArn",
                "index.$": "$$.Map.Item.Index",
                "arns.$": "$.guard_page.Executions[*].ExecutionArn",
                "me.$": "$.run.execution_arn",
            },
            "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, **classify},
            "MaxConcurrency": 1,  # cheap Choice/Pass iterations; one at a time keeps LocalStack from mixing their inputs
            "ResultSelector": {
                "self.$": "States.ArrayContains($, 'self')",
                "newer.$": "States.ArrayContains($, 'newer')",
                "older.$": "States.ArrayContains($, 'older')",
            },
            "ResultPath": "$.guard_scan",
            "Next": f"Place{kind}",
        },
        # On a page after the one this run is on, every run of the kind is older.
        f"Place{kind}": _choice(
            [
                {"And": [{"Variable": "$.guard.seen", "BooleanEquals": True},
                         {"Or": [{"Variable": "$.guard_scan.newer", "BooleanEquals": True},
                                 {"Variable": "$.guard_scan.older", "BooleanEquals": True}]}],
                 "Next": older},
                {"Variable": "$.guard.seen", "BooleanEquals": True, "Next": more},
            ],
            has_self,
        ),
        has_self: contains("self", seen),
        seen: flag("$.guard.seen", has_newer),
        has_newer: contains("newer", newer),
        newer: flag("$.guard.newer", has_older),
        has_older: contains("older", older),
        older: flag("$.guard.older", more),
        more: _choice([{"Variable": "$.guard_page.NextToken", "IsPresent": True, "Next": more_page}], verdict),
        verdict: _choice(
            [
                {"Variable": "$.guard.seen", "BooleanEquals": False, "Next": unlisted},
                *([{"Variable": "$.guard.newer", "BooleanEquals": True, "Next": verdicts["newer"]}] if "newer" in verdicts else []),
                {"Variable": "$.guard.older", "BooleanEquals": True, "Next": verdicts["older"]},
            ],
            verdicts["proceed"],
        ),
        unlisted: _choice([{"Variable": "$.guard_polls.n", "NumericGreaterThanEquals": spec.guard_max_polls, "Next": verdicts["unlisted"]}], wait),
        wait: {"Type": "Wait", "Seconds": spec.guard_poll_seconds, "Next": count},
        count: _pass({"n.$": "States.MathAdd($.guard_polls.n, 1)"}, "$.guard_polls", begin),
    }


def _wait_states(spec: PipelineSpec, name: str, seconds: int, max_polls: int, again: str, gave_up: str) -> dict[str, dict[str, Any]]:
    """Wait ``seconds`` and go to ``again``, at most ``max_polls`` times per run (then ``gave_up``)."""
    return {
        name: _choice([{"Variable": "$.guard_polls.n", "NumericGreaterThanEquals": max_polls, "Next": gave_up}], f"{name}Wait"),
        f"{name}Wait": {"Type": "Wait", "Seconds": seconds, "Next": f"{name}Count"},
        f"{name}Count": _pass({"n.$": "States.MathAdd($.guard_polls.n, 1)"}, "$.guard_polls", again),
    }


def _failure(error: str, cause: str, state: str, next_state: str = "NotifyFailure", comment: str | None = None) -> dict[str, Any]:
    """A failure the flow decides itself: the same shape a Catch records (``Error``, ``Cause``) plus the state."""
    params: dict[str, Any] = {"Error": error, "State": state}
    params["Cause.$" if cause.startswith("States.") else "Cause"] = cause
    return _pass(params, "$.failure", next_state, comment)


def _pending_states(spec: PipelineSpec, suffix: str, next_state: str) -> dict[str, dict[str, Any]]:
    """After a training run: start the one run a new-data trigger dropped meanwhile queued, then go on.

    The queued run waits for this one to end (its guard sees it as older), then trains on the data as it is then.
    Errors here never change the outcome of the run: they are caught and the run ends as it would have.
    """
    check, has, delete, start = f"CheckPending{suffix}", f"HasPending{suffix}", f"ClearPending{suffix}", f"StartPending{suffix}"
    queue = f"QueuePending{suffix}"
    key = f"{spec.model}/runs/{PENDING_KEY}"
    caught = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.pending_error", "Next": next_state}]
    states = {
        check: _task("arn:aws:states:::aws-sdk:s3:listObjectsV2", {"Bucket": spec.models_bucket, "Prefix": key, "MaxKeys": 1},
                     retry=_aux_retry(spec), next_state=has, result_path="$.pending", catch=False),
        has: _choice([{"And": [{"Variable": "$.pending.KeyCount", "IsPresent": True},
                               {"Variable": "$.pending.KeyCount", "NumericGreaterThan": 0}], "Next": delete}], next_state),
        delete: _task("arn:aws:states:::aws-sdk:s3:deleteObject", {"Bucket": spec.models_bucket, "Key": key},
                      retry=_aux_retry(spec), next_state=queue, result_path=None, catch=False),
        queue: _pass({"trigger": "new_data", "queued_by.$": "$.run.execution_arn"}, "$.queued", start),
        start: _task(
            "arn:aws:states:::aws-sdk:sfn:startExecution",
            {"StateMachineArn": spec.alias_arn, "Input.$": "States.JsonToString($.queued)"},
            retry=_aux_retry(spec), next_state=next_state, result_path=None, catch=False,
        ),
    }
    for name in (check, delete, start):
        states[name]["Catch"] = caught
    return states


SNAPSHOT_MAX_OBJECTS = 100
"""Objects a dataset may have: one ListObjectsV2 page, and the state (which holds the listing, then the manifest,
never both) stays within the 256 KB a state's input and output may hold even with keys of S3's maximum length
(1,024 bytes): about 120 KB for the manifest then."""
SNAPSHOT_COPY_CONCURRENCY = 10
COPY_MAX_BYTES = 5 * 1024**3
"""CopyObject copies at most 5 GB in one call (larger objects need a multipart copy, which the flow does not do)."""


def snapshot_prefix(spec: PipelineSpec) -> str:
    """``<model>/snapshots/`` in the models bucket: ``<run id>/manifest.json`` and ``<run id>/data/<data key>``.

    Not under ``<model>/runs/``: only the model's SageMaker role may write there (the bucket policy).
    """
    return f"{spec.model}/snapshots/"


def _data_states(spec: PipelineSpec, next_state: str) -> dict[str, dict[str, Any]]:
    """Snapshot the training data: the jobs read a run-scoped copy of exactly the versions the manifest lists.

    SageMaker's S3 inputs cannot pin object versions and the jobs are network-isolated, so the flow lists the
    prefix, copies each object (``CopySourceIfMatch``: the listed ETag, so the copy is the listed object, and
    S3 reports which version it copied) under ``<model>/snapshots/<run id>/data/`` and writes the manifest
    (key, version id, size, ETag of each) with its SHA-256 next to it. An object uploaded after the listing is
    in neither; the new-data trigger it raises trains it in a later run.
    """
    prefix = spec.prefix("train")
    snapshot = snapshot_prefix(spec)
    run_key = lambda leaf: f"States.Format('{snapshot}{{}}/{leaf}', $.run.id)"  # noqa: E731
    present = lambda path: {"Variable": path, "IsPresent": True}  # noqa: E731
    obj = "$.object"
    copy_states = {
        "CanCopyObject": _choice(
            [
                {"And": [present(f"{obj}.Key"), present(f"{obj}.ETag"), present(f"{obj}.Size"),
                         {"Variable": f"{obj}.Size", "NumericLessThanEquals": COPY_MAX_BYTES}],
                 "Next": "CopyTrainingObject"},
                {"And": [present(f"{obj}.Key"), present(f"{obj}.Size"), {"Variable": f"{obj}.Size", "NumericGreaterThan": COPY_MAX_BYTES}],
                 "Next": "DataObjectTooLarge"},
            ],
            "DataObjectUnlisted",
        ),
        "CopyTrainingObject": _task(
            "arn:aws:states:::aws-sdk:s3:copyObject",
            {
                "Bucket": spec.models_bucket,
                "Key.$": f"States.Format('{snapshot}{{}}/data/{{}}', $.run_id, {obj}.Key)",
                "CopySource.$": f"States.Format('{spec.data_bucket}/{{}}', {obj}.Key)",
                # The object as listed, or no copy: its size and ETag in the manifest are the copy's.
                "CopySourceIfMatch.$": f"{obj}.ETag",
                "ServerSideEncryption": "aws:kms",
                "SSEKMSKeyId": spec.kms_key_arn,
            },
            retry=_aux_retry(spec), next_state="IsCopyVersioned", result_path="$.copy", catch=False,
        ),
        # CopySourceVersionId is absent when the data bucket is unversioned (the stack's is; a brought one may not be).
        "IsCopyVersioned": _choice([{"Variable": "$.copy.CopySourceVersionId", "IsPresent": True, "Next": "VersionedEntry"}], "UnversionedEntry"),
        "VersionedEntry": {
            "Type": "Pass",
            "Parameters": {"key.$": f"{obj}.Key", "version_id.$": "$.copy.CopySourceVersionId", "size.$": f"{obj}.Size", "etag.$": f"{obj}.ETag"},
            "End": True,
        },
        "UnversionedEntry": {
            "Type": "Pass",
            "Parameters": {"key.$": f"{obj}.Key", "version_id": "null", "size.$": f"{obj}.Size", "etag.$": f"{obj}.ETag"},
            "End": True,
        },
        "DataObjectTooLarge": {
            "Type": "Fail",
            "Error": "DataObjectTooLarge",
            "CausePath": f"States.Format('{{}} is {{}} bytes; the flow copies objects of up to {COPY_MAX_BYTES} bytes (5 GB): split it', "
                         f"{obj}.Key, {obj}.Size)",
        },
        "DataObjectUnlisted": {"Type": "Fail", "Error": "DataObjectUnlisted", "Cause": "a listed object has no key, ETag or size"},
    }
    return {
        "ListTrainingData": _task(
            "arn:aws:states:::aws-sdk:s3:listObjectsV2",
            {"Bucket": spec.data_bucket, "Prefix": prefix, "MaxKeys": SNAPSHOT_MAX_OBJECTS},
            retry=_aux_retry(spec),
            next_state="CountTrainingData",
            result_path="$.snapshot",
        ),
        # KeyCount, IsTruncated and Contents are optional in S3's model: tested for, like every optional member the flow reads.
        "CountTrainingData": _choice(
            [
                {"And": [present("$.snapshot.IsTruncated"), {"Variable": "$.snapshot.IsTruncated", "BooleanEquals": True}],
                 "Next": "TooManyDataObjects"},
                {"Variable": "$.snapshot.Contents[0].Key", "IsPresent": True, "Next": "SnapshotTrainingData"},
            ],
            "NoTrainingData",
        ),
        "NoTrainingData": _failure(
            "NoTrainingData",
            f"no objects under s3://{spec.data_bucket}/{prefix}: upload a dataset with `mlops data push --model {spec.model} FILE`",
            "ListTrainingData",
        ),
        "TooManyDataObjects": _failure(
            "TooManyDataObjects",
            f"more than {SNAPSHOT_MAX_OBJECTS} objects under s3://{spec.data_bucket}/{prefix}: the flow snapshots up to "
            f"{SNAPSHOT_MAX_OBJECTS}; combine files",
            "ListTrainingData",
        ),
        "SnapshotTrainingData": {
            "Type": "Map",
            "Comment": "Copy each listed object under the run's snapshot prefix; each item is its manifest entry.",
            "ItemsPath": "$.snapshot.Contents",
            "ItemSelector": {"object.$": "$$.Map.Item.Value", "run_id.$": "$.run.id"},
            "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "CanCopyObject", "States": copy_states},
            "MaxConcurrency": SNAPSHOT_COPY_CONCURRENCY,
            # One slot, $.snapshot: the listing, then the entries, then the manifest replace each other, so the
            # state holds one copy of the (up to 100) keys, whatever their length.
            "ResultPath": "$.snapshot",
            "Catch": _catch(),
            "Next": "ManifestBody",
        },
        "ManifestBody": _pass(
            {
                "source": f"s3://{spec.data_bucket}/{prefix}",
                "copy.$": f"States.Format('s3://{spec.models_bucket}/{snapshot}{{}}/data/{prefix}', $.run.id)",
                "run_id.$": "$.run.id",
                "execution_arn.$": "$.run.execution_arn",
                "objects.$": "$.snapshot",
            },
            "$.snapshot",
            "WriteDataManifest",
        ),
        "WriteDataManifest": _task(
            "arn:aws:states:::aws-sdk:s3:putObject",
            {
                "Bucket": spec.models_bucket,
                "Key.$": run_key("manifest.json"),
                "Body.$": "$.snapshot",  # an object: the integration stores it as JSON
                "ContentType": "application/json",
                # S3 checks and returns the body's SHA-256: lineage records it.
                "ChecksumAlgorithm": "SHA256",
                "ServerSideEncryption": "aws:kms",
                "SSEKMSKeyId": spec.kms_key_arn,
            },
            retry=_aux_retry(spec),
            next_state="HasManifestChecksum",
            result_path="$.manifest_put",
        ),
        # botocore's model names it ChecksumSHA256; Step Functions' SDK integrations may spell it as the Java SDK
        # does (ChecksumSha256, as LocalStack returns it): either is S3's SHA-256 of the body it stored.
        "HasManifestChecksum": _choice(
            [{"Variable": "$.manifest_put.ChecksumSHA256", "IsPresent": True, "Next": "ManifestChecksum"},
             {"Variable": "$.manifest_put.ChecksumSha256", "IsPresent": True, "Next": "ManifestChecksumJavaCase"}],
            "ManifestUnverified",
        ),
        "ManifestChecksum": _pass({"sha256.$": "$.manifest_put.ChecksumSHA256"}, "$.manifest_hash", "HowManyDataObjects"),
        "ManifestChecksumJavaCase": _pass({"sha256.$": "$.manifest_put.ChecksumSha256"}, "$.manifest_hash", "HowManyDataObjects"),
        "ManifestUnverified": _failure("ManifestUnverified", "S3 returned no SHA-256 for the data manifest", "WriteDataManifest"),
        "HowManyDataObjects": _choice(
            [
                {"Variable": "$.snapshot.objects[1]", "IsPresent": True, "Next": "ManyDataObjects"},
                {"Variable": "$.snapshot.objects[0].version_id", "IsPresent": True, "Next": "OneDataObject"},
            ],
            "ManyDataObjects",
        ),
        # Lineage values allow only [letters digits space _ . : / = + - @] up to 256 characters, and S3 keys do not:
        # the data's URI is the snapshot the jobs read; the manifest names each object (key, version id, size, ETag).
        "OneDataObject": _pass(
            {
                "s3_uri.$": "$.snapshot.copy",
                "version_id.$": "$.snapshot.objects[0].version_id",
                "manifest.$": f"States.Format('s3://{spec.models_bucket}/{snapshot}{{}}/manifest.json', $.run.id)",
                "manifest_sha256.$": "$.manifest_hash.sha256",
            },
            "$.data",
            next_state,
        ),
        "ManyDataObjects": _pass(
            {
                "s3_uri.$": "$.snapshot.copy",
                "version_id.$": "States.Format('{} objects: see the manifest', States.ArrayLength($.snapshot.objects))",
                "manifest.$": f"States.Format('s3://{spec.models_bucket}/{snapshot}{{}}/manifest.json', $.run.id)",
                "manifest_sha256.$": "$.manifest_hash.sha256",
            },
            "$.data",
            next_state,
        ),
    }


def _evaluation_states(spec: PipelineSpec, next_state: str) -> dict[str, dict[str, Any]]:
    """Pick the holdout and the production model to compare with, then build Evaluate's inputs and arguments."""
    test_prefix = spec.prefix("test")
    own = spec.model_code is not None and spec.model_code.evaluate is not None
    common_inputs = [
        _s3_input("code", CODE_DIR, spec.model_code.code_uri if own else spec.code_uri),  # type: ignore[union-attr]
        _s3_input("contract", CONTRACT_DIR, f"s3://{spec.models_bucket}/{spec.contract_key}"),
        _s3_input("model", MODEL_DIR, uri_path="$.training.model_data"),
        _s3_input("holdout", HOLDOUT_DIR, uri_path="$.holdout.s3_uri"),
    ]
    arguments = [
        "--model", f"{MODEL_DIR}/model.tar.gz",
        "--test", HOLDOUT_DIR,
        "--contract", _contract_file(spec, CONTRACT_DIR),
        "--output-dir", OUTPUT_DIR,
        *spec.evaluation_args,
    ]
    production_file = f"{PRODUCTION_DIR}/evaluation.json"
    judge = _judged(spec)
    if judge:
        # The metrics the model's train reported (evaluation.json in its output data), judged by the platform.
        common_inputs = [
            _s3_input("code", CODE_DIR, spec.code_uri),
            _s3_input("report", REPORT_DIR, uri_path="$.holdout.report_uri"),
        ]
        arguments = [REPORT_DIR, OUTPUT_DIR, "-", *spec.evaluation_args]
        with_production = [REPORT_DIR, OUTPUT_DIR, production_file, *spec.evaluation_args]
    else:
        with_production = [*arguments, "--baseline-metrics", production_file]
    output_uri = (f"States.Format('s3://{spec.models_bucket}/{spec.model}/runs/{{}}/training/{{}}/output/output.tar.gz', "
                  "$.run.id, $.training.job_name)")
    if judge:
        return {
            "TrainingReport": _pass({"report_uri.$": output_uri}, "$.holdout", "FindProductionModel",
                                    comment="The model's train reported its metrics (evaluation.json in its output data)."),
            **_production_states(spec, common_inputs, arguments, with_production, production_file, next_state),
        }
    return {
        "ListTestData": _task(
            "arn:aws:states:::aws-sdk:s3:listObjectsV2",
            {"Bucket": spec.data_bucket, "Prefix": test_prefix, "MaxKeys": 1},
            retry=_aux_retry(spec),
            next_state="HasTestData",
            result_path="$.test_listing",
        ),
        "HasTestData": _choice(
            [{"And": [{"Variable": "$.test_listing.KeyCount", "IsPresent": True},
                      {"Variable": "$.test_listing.KeyCount", "NumericGreaterThan": 0}],
              "Next": "HoldoutFromTestData"}],
            "HoldoutFromTraining",
        ),
        "HoldoutFromTestData": _pass({"s3_uri": f"s3://{spec.data_bucket}/{test_prefix}"}, "$.holdout", "FindProductionModel"),
        "HoldoutFromTraining": _pass(
            {"s3_uri.$": "$.channels.validation"},
            "$.holdout",
            "FindProductionModel",
            comment="No holdout under the model's test/ prefix: score the validation channel Preprocess wrote.",
        ) if spec.model_code is not None and spec.model_code.preprocess else _pass(
            # The validation split train.py held out, inside the job's output.tar.gz (Evaluate unpacks it).
            {
                "s3_uri.$": f"States.Format('s3://{spec.models_bucket}/{spec.model}/runs/{{}}/training/{{}}/output/output.tar.gz', "
                "$.run.id, $.training.job_name)"
            },
            "$.holdout",
            "FindProductionModel",
            comment="No holdout under the model's test/ prefix: score the validation split of this run.",
        ),
        **_production_states(spec, common_inputs, arguments, with_production, production_file, next_state),
    }


def _judged(spec: PipelineSpec) -> bool:
    """A model's own code without an evaluate: the platform judges the metrics its train reported."""
    return spec.model_code is not None and spec.model_code.evaluate is None


def _production_states(spec: PipelineSpec, common_inputs: list[dict[str, Any]], arguments: list[str], with_production: list[str],
                       production_file: str, next_state: str) -> dict[str, dict[str, Any]]:
    """Find the newest approved version and build Evaluate's inputs and arguments with or without its metrics."""
    return {
        "FindProductionModel": _task(
            "arn:aws:states:::aws-sdk:sagemaker:listModelPackages",
            {
                "ModelPackageGroupName": spec.model_package_group,
                "ModelApprovalStatus": "Approved",
                "SortBy": "CreationTime",
                "SortOrder": "Descending",
                "MaxResults": 1,
            },
            retry=_sagemaker_retry(spec),
            next_state="HasProductionModel",
            result_path="$.production",
            result_selector={"packages.$": "$.ModelPackageSummaryList", "count.$": "States.ArrayLength($.ModelPackageSummaryList)"},
        ),
        "HasProductionModel": _choice(
            [{"And": [{"Variable": "$.production.count", "NumericGreaterThan": 0},
                      {"Variable": "$.production.packages[0].ModelPackageArn", "IsPresent": True}],
              "Next": "DescribeProductionModel"}],
            "NoProductionModel",
        ),
        "DescribeProductionModel": _task(
            "arn:aws:states:::aws-sdk:sagemaker:describeModelPackage",
            {"ModelPackageName.$": "$.production.packages[0].ModelPackageArn"},
            retry=_sagemaker_retry(spec),
            next_state="HasProductionMetrics",
            # ModelMetrics is optional (a version registered by hand may have none): keep the whole output and
            # test for it, rather than select it (a ResultSelector path that is absent fails the run).
            result_path="$.production_package",
        ),
        "HasProductionMetrics": _choice(
            [{"Variable": "$.production_package.ModelMetrics.ModelQuality.Statistics.S3Uri", "IsPresent": True, "Next": "CompareWithProduction"}],
            "NoProductionModel",
        ),
        "CompareWithProduction": _pass(
            {
                "inputs": [
                    *common_inputs,
                    _s3_input("production", PRODUCTION_DIR, uri_path="$.production_package.ModelMetrics.ModelQuality.Statistics.S3Uri"),
                ],
                "arguments": with_production,
            },
            "$.evaluate",
            next_state,
            comment="Judge the new model against the newest approved version's evaluation.json.",
        ),
        "NoProductionModel": _pass(
            {"inputs": common_inputs, "arguments": arguments},
            "$.evaluate",
            next_state,
            comment="No approved version with metrics yet: only the rule's minimum applies.",
        ),
    }


def _deploy_branch(spec: PipelineSpec) -> dict[str, Any]:
    variant = {k: v for k, v in spec.endpoint_variant.items() if k != "ModelName"}
    variant["ModelName.$"] = "$.model.name"
    capture = dict(spec.data_capture) if spec.data_capture is not None else {
        "EnableCapture": True,
        "InitialSamplingPercentage": 100,
        "DestinationS3Uri": f"s3://{spec.capture_bucket}/{spec.model}/",
        "KmsKeyId": spec.kms_key_arn,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
    }
    model: dict[str, Any] = {
        "ModelName.$": _name(spec, "mdl"),
        "PrimaryContainer": {"ModelPackageName.$": "$.package.arn"},
        "ExecutionRoleArn": spec.role_arn,
        "EnableNetworkIsolation": True,
        "Tags": spec.tag_list(),
    }
    if spec.vpc is not None:
        model["VpcConfig"] = spec.vpc
    endpoint_config: dict[str, Any] = {
        "EndpointConfigName.$": _name(spec, "cfg"),
        "ProductionVariants": [variant],
        "DataCaptureConfig": capture,
        "Tags": spec.tag_list(),
    }
    if "ServerlessConfig" not in variant:  # serverless variants have no storage volume to encrypt
        endpoint_config["KmsKeyId"] = spec.kms_key_arn
    max_polls = max(1, spec.deploy_timeout_seconds // spec.deploy_poll_seconds)
    retry = _sagemaker_retry(spec)
    name_from_arn = "States.ArrayGetItem(States.StringSplit({}, '/'), 1)"
    status = "$.endpoint.EndpointStatus"
    return {
        "StartAt": "CreateModel",
        "States": {
            "CreateModel": _task(
                "arn:aws:states:::sagemaker:createModel", model, retry=retry, next_state="CreateEndpointConfig",
                result_path="$.model", result_selector={"name.$": name_from_arn.format("$.ModelArn")}, catch=False,
            ),
            "CreateEndpointConfig": _task(
                "arn:aws:states:::sagemaker:createEndpointConfig", endpoint_config, retry=retry, next_state="StartEndpointWait",
                result_path="$.endpoint_config", result_selector={"name.$": name_from_arn.format("$.EndpointConfigArn")},
                catch=False,
            ),
            # UpdateEndpoint is refused while the endpoint is Updating (autoscaling, an earlier deployment):
            # wait, bounded by the deploy timeout, until it is InService.
            "StartEndpointWait": _pass({"polls": 0}, "$.wait", "CheckEndpointReady"),
            "CheckEndpointReady": _task(
                "arn:aws:states:::aws-sdk:sagemaker:describeEndpoint", {"EndpointName": spec.endpoint_name},
                retry=retry, next_state="EndpointReady", result_path="$.endpoint", catch=False,
            ),
            "EndpointReady": _choice(
                [
                    *(
                        [{
                            "And": [
                                {"Variable": status, "StringEquals": "InService"},
                                {"Variable": "$.endpoint.EndpointConfigName", "IsPresent": True},
                                {"Variable": "$.endpoint.EndpointConfigName", "StringMatches": f"{spec.bootstrap_config_prefix}*"},
                            ],
                            "Next": "UpdateEndpointFromBootstrap",
                        }]
                        if spec.deployment_configs is not None and spec.bootstrap_config_prefix
                        else []
                    ),
                    {"Variable": status, "StringEquals": "InService", "Next": "UpdateEndpoint"},
                    {
                        "And": [
                            {"Or": [{"Variable": status, "StringEquals": s} for s in ENDPOINT_MOVING]},
                            {"Variable": "$.wait.polls", "NumericLessThan": max_polls},
                        ],
                        "Next": "WaitForEndpointReady",
                    },
                    {"Or": [{"Variable": status, "StringEquals": s} for s in ENDPOINT_MOVING], "Next": "EndpointBusyTimedOut"},
                ],
                "EndpointUnhealthy",
            ),
            "WaitForEndpointReady": {"Type": "Wait", "Seconds": spec.deploy_poll_seconds, "Next": "CountReadyPoll"},
            "CountReadyPoll": _pass({"polls.$": "States.MathAdd($.wait.polls, 1)"}, "$.wait", "CheckEndpointReady"),
            # The blue/green guardrails and rollback alarms Pulumi sets on the endpoint, passed explicitly (the same
            # function builds both); the first deployment away from the placeholder leaves out the 5xx alarm its
            # 503s may have raised.
            **_update_endpoint_states(spec, retry),
            "WaitForEndpoint": {"Type": "Wait", "Seconds": spec.deploy_poll_seconds, "Next": "DescribeEndpoint"},
            "DescribeEndpoint": _task(
                "arn:aws:states:::aws-sdk:sagemaker:describeEndpoint", {"EndpointName": spec.endpoint_name},
                retry=retry, next_state="EndpointStatus", result_path="$.endpoint", catch=False,
            ),
            # The status first, the timeout last: an endpoint that goes live on the last poll is live.
            "EndpointStatus": _choice(
                [
                    {"Variable": status, "StringEquals": "InService", "Next": "CheckLiveConfig"},
                    {
                        "And": [
                            {"Or": [{"Variable": status, "StringEquals": s} for s in ENDPOINT_BROKEN]},
                            {"Variable": "$.endpoint.FailureReason", "IsPresent": True},
                        ],
                        "Next": "DeploymentFailed",
                    },
                    {
                        "And": [
                            {"Or": [{"Variable": status, "StringEquals": s} for s in ENDPOINT_MOVING]},
                            {"Variable": "$.wait.polls", "NumericLessThan": max_polls},
                        ],
                        "Next": "CountPoll",
                    },
                    {"Or": [{"Variable": status, "StringEquals": s} for s in ENDPOINT_MOVING], "Next": "DeploymentTimedOut"},
                ],
                "EndpointUnhealthy",
            ),
            "CountPoll": _pass({"polls.$": "States.MathAdd($.wait.polls, 1)"}, "$.wait", "WaitForEndpoint"),
            # The guardrails roll a bad model back to the previous configuration: in service, but not ours.
            "CheckLiveConfig": _choice(
                [
                    {"And": [{"Variable": "$.endpoint.EndpointConfigName", "IsPresent": True},
                             {"Variable": "$.endpoint.EndpointConfigName", "StringEqualsPath": "$.endpoint_config.name"}],
                     "Next": "DeploymentComplete"},
                    {"Variable": "$.endpoint.EndpointConfigName", "IsPresent": True, "Next": "DeploymentRolledBack"},
                ],
                "EndpointUnhealthy",
            ),
            "DeploymentComplete": {"Type": "Succeed"},
            "DeploymentRolledBack": {
                "Type": "Fail",
                "Error": "DeploymentRolledBack",
                "CausePath": (
                    f"States.Format('{spec.endpoint_name} rolled back to endpoint config {{}}: the previous model is still "
                    "live (a rollback alarm fired during the deployment)', $.endpoint.EndpointConfigName)"
                ),
            },
            "DeploymentFailed": {
                "Type": "Fail",
                "Error": "DeploymentFailed",
                "CausePath": f"States.Format('{spec.endpoint_name} is {{}}: {{}}', {status}, $.endpoint.FailureReason)",
            },
            "EndpointUnhealthy": {
                "Type": "Fail",
                "Error": "DeploymentFailed",
                "CausePath": f"States.Format('{spec.endpoint_name} is {{}}', {status})",
            },
            "EndpointBusyTimedOut": {
                "Type": "Fail",
                "Error": "EndpointBusy",
                "Cause": f"{spec.endpoint_name} was not InService within {spec.deploy_timeout_seconds} seconds; nothing was deployed",
            },
            "DeploymentTimedOut": {
                "Type": "Fail",
                "Error": "DeploymentTimedOut",
                "Cause": f"{spec.endpoint_name} did not settle within {spec.deploy_timeout_seconds} seconds",
            },
        },
    }


SUBJECT_MAX = 99
"""SNS takes a Subject of fewer than 100 characters."""


def subject(spec: PipelineSpec, what: str) -> str:
    """``[<stack>] <model>: <what>``, static and under SNS's limit (stack and model are shortened when they must be)."""
    tail = f": {what}"
    room = SUBJECT_MAX - len(tail)
    if room < 12:
        raise ValueError(f"notification subject {what!r} leaves no room for the stack and model within {SUBJECT_MAX} characters")
    head = f"[{spec.stack}] {spec.model}"
    if len(head) > room:
        head = head[: room - 3] + "..."
    return head + tail


def _notice(spec: PipelineSpec, what: str, message: str, next_state: str = NOTIFY_SUCCESS) -> dict[str, Any]:
    return _pass({"subject": subject(spec, what), "message.$": message}, "$.notice", next_state)


def console_url(spec: PipelineSpec) -> str:
    """Prefix of an execution's page in the Step Functions console (the execution ARN follows)."""
    domain = {"aws-cn": "console.amazonaws.cn", "aws-us-gov": "console.amazonaws-us-gov.com"}.get(spec.partition, "console.aws.amazon.com")
    return f"https://{spec.region}.{domain}/states/home?region={spec.region}#/v2/executions/details/"


def _run_line(spec: PipelineSpec) -> str:
    return f"run {{}} of {spec.model} in {spec.stack} ({{}} trigger) - execution {{}}"


def lineage_properties(spec: PipelineSpec) -> dict[str, str]:
    """``CustomerMetadataProperties`` of the registered version: ``LineageMetadata`` keys, values filled at run time.

    The static part goes through ``LineageMetadata.to_customer_metadata()`` (same keys, same limits); the
    per-run values (training job, data version, metrics) are JSONPath.
    """
    lineage = LineageMetadata(
        stack=spec.stack,
        model_name=spec.model,
        training_job_name="per-run",
        code_sha256=spec.model_code.code_sha256 if spec.model_code is not None else spec.code_sha256,
        data={"train": DataVersion(s3_uri=f"s3://{spec.data_bucket}/{spec.prefix('train')}", version_id="per-run")},
        hyperparameters=spec.hyperparameters,
        metrics={f"{EVALUATION_SPLIT}:{m}": 0.0 for m in spec.metrics},
    )
    dynamic = {
        "training_job": "$.training.job_name",
        "data:train:s3_uri": "$.data.s3_uri",
        "data:train:version_id": "$.data.version_id",
        **{f"metric:{EVALUATION_SPLIT}:{m}": f"States.Format('{{}}', $.evaluation.report.metrics.{m})" for m in spec.metrics},
    }
    entries = lineage.to_customer_metadata()
    if spec.model_code is not None:  # the model's own hyperparameters, not the built-in recipe's
        entries = {k: v for k, v in entries.items() if not k.startswith("hyperparameter:")}
        entries.update({f"hyperparameter:{k}": v for k, v in spec.model_code.hyperparameters.items()})
    props: dict[str, str] = {}
    for key, value in entries.items():
        if key in dynamic:
            props[f"{key}.$"] = dynamic[key]
        else:
            props[key] = value
    # The manifest of the snapshot the jobs read (key, version id, size and ETag of each object) and its SHA-256
    # as S3 computed it (base64: within the characters lineage values allow).
    props["data:train:manifest.$"] = "$.data.manifest"
    props["data:train:manifest_sha256.$"] = "$.data.manifest_sha256"
    return props


def serving_environment(spec: PipelineSpec) -> dict[str, str]:
    """The model container's environment: the built-in recipe's, or the model's own inference entry point."""
    env = dict(SERVING_ENVIRONMENT)
    if spec.model_code is not None and spec.model_code.inference is not None:
        env["SAGEMAKER_PROGRAM"] = spec.model_code.inference
    return env


def _model_package(spec: PipelineSpec) -> dict[str, Any]:
    code_uri, code_sha = (spec.model_code.code_uri, spec.model_code.code_sha256) if spec.model_code is not None else (spec.code_uri, spec.code_sha256)
    package = _model_package_request(spec, code_uri, code_sha)
    if spec.model_code is not None:
        # The platform's baseline statistics of the training channel (ComputeBaseline), for drift monitoring of a
        # model whose own code writes none.
        package["DriftCheckBaselines"] = {
            "ModelDataQuality": {"Statistics": {"ContentType": "application/json", "S3Uri.$": _run_uri(spec, f"baseline/{BASELINE_FILE}")}}
        }
    return package


def _model_package_request(spec: PipelineSpec, code_uri: str, code_sha: str) -> dict[str, Any]:
    return {
        "ModelPackageGroupName": spec.model_package_group,
        "ModelPackageDescription.$": f"States.Format('{_run_line(spec)}', $.run.id, $.input.trigger, $.run.execution_arn)",
        # Idempotent: a retried call with the same token returns the package the first attempt created.
        "ClientToken.$": "$.run.id",
        "ModelApprovalStatus": "PendingManualApproval" if spec.manual_approval else "Approved",
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": spec.inference_image,
                    "ModelDataUrl.$": "$.training.model_data",
                    # Network-isolated models cannot download code: it ships inside the model archive.
                    "Environment": serving_environment(spec),
                }
            ],
            "SupportedContentTypes": ["text/csv", "application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        "ModelMetrics": {
            "ModelQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri.$": _run_uri(spec, "evaluation/evaluation.json")}
            }
        },
        "MetadataProperties": {"GeneratedBy.$": "$.run.execution_arn", "CommitId": code_sha, "Repository": code_uri},
        "CustomerMetadataProperties": lineage_properties(spec),
        "Tags": spec.tag_list(),
    }


def _update_endpoint_states(spec: PipelineSpec, retry: list[dict[str, Any]]) -> dict[str, Any]:
    def update(deployment: Mapping[str, Any] | None) -> dict[str, Any]:
        params: dict[str, Any] = {"EndpointName": spec.endpoint_name, "EndpointConfigName.$": "$.endpoint_config.name"}
        params.update({"DeploymentConfig": dict(deployment)} if deployment is not None else {"RetainDeploymentConfig": True})
        return _task(
            "arn:aws:states:::sagemaker:updateEndpoint", params,
            retry=retry, next_state="WaitForEndpoint", result_path="$.wait", result_selector={"polls": 0}, catch=False,
        )

    if spec.deployment_configs is None:
        return {"UpdateEndpoint": update(None)}
    every, first = spec.deployment_configs
    return {"UpdateEndpoint": update(every), "UpdateEndpointFromBootstrap": update(first)}


def build_definition(spec: PipelineSpec) -> dict[str, Any]:
    """The state machine definition (ASL, JSONPath) of the model's continuous-training flow."""
    states: dict[str, dict[str, Any]] = {}
    states["Init"] = _pass(
        {
            "defaults": {"trigger": "manual", "mode": "train", "model_package_arn": "", "queued_by": ""},
            "given.$": "$",
            "execution_arn.$": "$$.Execution.Id",
            "time.$": "States.StringSplit($$.Execution.StartTime, '-T:.Z+')",
            "random.$": "States.StringSplit(States.UUID(), '-')",
        },
        "$",
        "RunContext",
        comment="Keep the trigger's input; draw the run id once, so retries and redrives reuse it.",
    )
    states["RunContext"] = _pass(
        {
            "input.$": "States.JsonMerge($.defaults, $.given, false)",
            "run": {
                "id.$": "States.Format('{}{}{}-{}{}{}-{}', $.time[0], $.time[1], $.time[2], $.time[3], $.time[4], $.time[5], $.random[1])",
                "execution_arn.$": "$.execution_arn",
                "started.$": "$$.Execution.StartTime",
            },
            "guard_polls": {"n": 0},
        },
        "$",
        "RouteMode" if spec.deploy_mode else "CheckRunning",
    )
    run_line = _run_line(spec)
    run_args = "$.run.id, $.input.trigger, $.run.execution_arn"
    if spec.deploy_mode:
        states["RouteMode"] = _choice([{"Variable": "$.input.mode", "StringEquals": "deploy", "Next": "CheckDeploying"}], "CheckRunning")
        # Deploy-only runs: the newest approval wins. A run waits for older deploy runs to end, and gives way
        # (with a notice) to a newer one.
        states.update(_guard_states(spec, "Deploying", spec.deploy_alias_arn, {
            "newer": "DeploySuperseded", "older": "WaitForOlderDeploy", "proceed": "PackageFromApproval", "unlisted": "RunNotListed",
        }))
        max_deploy_polls = max(1, spec.deploy_timeout_seconds // spec.deploy_poll_seconds)
        states.update(_wait_states(spec, "WaitForOlderDeploy", spec.deploy_poll_seconds, max_deploy_polls, "CheckDeploying", "DeployWaitTimedOut"))
        states["DeploySuperseded"] = _notice(
            spec, "deployment superseded",
            f"States.Format('Model package {{}} was not deployed: a newer approval is deploying to {spec.endpoint_name}. {run_line}', "
            f"$.input.model_package_arn, {run_args})",
        )
        states["DeployWaitTimedOut"] = _failure(
            "DeployWaitTimedOut", f"an older deployment to {spec.endpoint_name} was still running after {spec.deploy_timeout_seconds} seconds",
            "CheckDeploying",
        )
        states["PackageFromApproval"] = _pass({"arn.$": "$.input.model_package_arn"}, "$.package", "VerifyPackage")
    states["RunNotListed"] = _failure(
        "RunNotListed", f"the run did not appear in ListExecutions within {spec.guard_max_polls * spec.guard_poll_seconds} seconds",
        "CheckRunning",
    )
    # Training runs are guarded against training runs only (the training alias): deploy-only runs poll for an
    # hour and must not make a retrain give up.
    states.update(_guard_states(spec, "Running", spec.alias_arn, {
        "older": "IsQueuedRun", "proceed": "IsNewData", "unlisted": "RunNotListed",
    }))
    states["IsQueuedRun"] = _choice([{"Variable": "$.input.queued_by", "StringEquals": "", "Next": "RecordDroppedTrigger"}], "WaitForQueuer")
    # The run that queued this one is in its last states: a bounded wait, then the guard decides again.
    states.update(_wait_states(spec, "WaitForQueuer", spec.guard_poll_seconds, spec.guard_max_polls, "CheckRunning", "QueuerStillRunning"))
    states["QueuerStillRunning"] = _failure(
        "QueuerStillRunning", f"the run that queued this one was still running after {spec.guard_max_polls * spec.guard_poll_seconds} seconds",
        "CheckRunning",
    )
    states["RecordDroppedTrigger"] = _choice(
        [{"Variable": "$.input.trigger", "StringEquals": "new_data", "Next": "QueueNewData"}], ALREADY_RUNNING
    )
    # One marker, whatever the number of dropped uploads: the running run starts one more run when it ends.
    states["QueueNewData"] = _task(
        "arn:aws:states:::aws-sdk:s3:putObject",
        {
            "Bucket": spec.models_bucket,
            "Key": f"{spec.model}/runs/{PENDING_KEY}",
            "Body.$": "States.JsonToString($.input)",
            "ContentType": "application/json",
            "ServerSideEncryption": "aws:kms",
            "SSEKMSKeyId": spec.kms_key_arn,
        },
        retry=_aux_retry(spec), next_state=ALREADY_RUNNING, result_path=None,
    )
    states[ALREADY_RUNNING] = {
        "Type": "Succeed",
        "Comment": "An older training run is in progress; it covers this trigger (new data: it starts one more run when it ends).",
    }
    states["IsNewData"] = _choice([{"Variable": "$.input.trigger", "StringEquals": "new_data", "Next": "SettleNewData"}], "ListTrainingData")
    states["SettleNewData"] = {
        "Type": "Wait",
        "Comment": "One event per uploaded object: let a multi-file upload land before the data is read.",
        "Seconds": spec.settle_seconds,
        "Next": "ListTrainingData",
    }
    states.update(_data_states(spec, VALIDATE))
    states[VALIDATE] = _task(
        "arn:aws:states:::sagemaker:createProcessingJob.sync",
        _processing_job(
            spec, "val", "validate", "validation", instance_step="validate",
            inputs=[
                _s3_input("code", CODE_DIR, spec.code_uri),
                _s3_input("contract", CONTRACT_DIR, f"s3://{spec.models_bucket}/{spec.contract_key}"),
                _s3_input("data", DATA_DIR, uri_path="$.data.s3_uri"),  # the run's snapshot, as Train reads it
            ],
            arguments=[
                "--data", DATA_DIR,
                "--contract", _contract_file(spec, CONTRACT_DIR),
                "--output-dir", OUTPUT_DIR,
                "--failure-file", EXIT_MESSAGE,
            ],
        ),
        retry=_sagemaker_retry(spec), next_state=TRAIN if spec.model_code is None else (PREPROCESS if spec.model_code.preprocess else "SnapshotChannels"),
        result_path="$.validation",
        result_selector={"job_name.$": "$.ProcessingJobName"},
    )
    if spec.model_code is not None:
        states.update(_model_states(spec, TRAIN))
    states[TRAIN] = _task(
        "arn:aws:states:::sagemaker:createTrainingJob.sync",
        _training_job(spec),
        retry=_sagemaker_retry(spec), next_state="TrainingReport" if _judged(spec) else "ListTestData", result_path="$.training",
        result_selector={"job_name.$": "$.TrainingJobName", "model_data.$": "$.ModelArtifacts.S3ModelArtifacts"},
    )
    states.update(_evaluation_states(spec, EVALUATE))
    evaluator, evaluator_kind = "evaluate", "platform"
    if spec.model_code is not None and spec.model_code.evaluate is not None:
        evaluator, evaluator_kind = spec.model_code.evaluate, "model"
    states[EVALUATE] = _task(
        "arn:aws:states:::sagemaker:createProcessingJob.sync",
        _processing_job(
            spec, "eval", evaluator, "evaluation", kind=evaluator_kind, dynamic="$.evaluate", instance_step="evaluate",
            # A holdout that is the training job's output.tar.gz is unpacked in place (evaluate reads its CSVs).
            prepare=f'for a in {HOLDOUT_DIR}/*.tar.gz; do [ -f "$a" ] && tar xzf "$a" -C "${{a%/*}}" && rm "$a"; done; ',
        ),
        retry=_sagemaker_retry(spec), next_state=GATE, result_path="$.evaluation_job",
        result_selector={"job_name.$": "$.ProcessingJobName"},
    )
    if _judged(spec):
        states[EVALUATE]["Parameters"]["AppSpecification"]["ContainerEntrypoint"] = _judge_entrypoint()
    report_key = f"States.Format('{spec.model}/runs/{{}}/evaluation/evaluation.json', $.run.id)"
    states[GATE] = _task(
        "arn:aws:states:::aws-sdk:s3:getObject",
        {"Bucket": spec.models_bucket, "Key.$": report_key},
        retry=_aux_retry(spec), next_state="GateVerdict", result_path="$.evaluation",
        result_selector={"report.$": "States.StringToJson($.Body)"},
    )
    verdict = "$.evaluation.report.verdict"
    present = lambda path: {"Variable": path, "IsPresent": True}  # noqa: E731
    metrics_present = [present(f"$.evaluation.report.metrics.{m}") for m in spec.metrics]
    # The platform checks the gate's threshold on the reported metric itself, whoever wrote the verdict.
    threshold: list[dict[str, Any]] = []
    if spec.gate is not None:
        g = spec.gate
        threshold = [{"Variable": f"$.evaluation.report.metrics.{g.metric}",
                      "NumericGreaterThanEquals" if g.direction == "higher" else "NumericLessThanEquals": g.threshold}]
    states["GateVerdict"] = _choice(
        [
            # RegisterModel records every metric in the lineage: a pass without them is an incomplete report.
            {"And": [present(verdict), {"Variable": verdict, "StringEquals": GATE_PASS}, *metrics_present, *threshold], "Next": REGISTER},
            *([{"And": [present(verdict), {"Variable": verdict, "StringEquals": GATE_PASS}, *metrics_present], "Next": "BelowThreshold"}]
              if threshold else []),
            {"And": [present(verdict), {"Not": {"Variable": verdict, "StringEquals": GATE_PASS}}, present("$.evaluation.report.reasons")],
             "Next": "ModelRejected"},
        ],
        "ReportIncomplete",
    )
    report_uri = f"States.Format('s3://{spec.models_bucket}/{spec.model}/runs/{{}}/evaluation/evaluation.json', $.run.id)"
    states["ModelRejected"] = _failure(
        "ModelRejected", "States.JsonToString($.evaluation.report.reasons)", GATE,
        comment="A rejected model is not registered; the run fails with the gate's reasons.",
    )
    if spec.gate is not None:
        relation = "at least" if spec.gate.direction == "higher" else "at most"
        states["BelowThreshold"] = _failure(
            "ModelRejected", f"{spec.gate.metric} does not reach the gate's threshold ({relation} {spec.gate.threshold:g})", GATE,
            comment="The report says pass, but its metric misses the gate's threshold: not registered.",
        )
    states["ReportIncomplete"] = _failure(
        "EvaluationReportIncomplete", report_uri.replace("'s3://", "'evaluation.json lacks verdict, reasons or a metric: s3://"), GATE,
    )
    if spec.manual_approval:
        after_register = "AwaitApproval"
    else:
        after_register = "VerifyPackage" if spec.deploy_enabled else "Registered"
    states[REGISTER] = _task(
        "arn:aws:states:::aws-sdk:sagemaker:createModelPackage",
        _model_package(spec),
        retry=_sagemaker_retry(spec), next_state="RecordTrained", result_path="$.package",
        result_selector={"arn.$": "$.ModelPackageArn"},
    )
    # The staleness alarm's heartbeat: a model trained, passed the gate and registered. Never fails the run.
    namespace, metric = TRAINED_METRIC
    states["RecordTrained"] = _task(
        "arn:aws:states:::aws-sdk:cloudwatch:putMetricData",
        {"Namespace": namespace, "MetricData": [{"MetricName": metric, "Dimensions": [{"Name": "StateMachine", "Value": spec.state_machine_name}],
                                                  "Value": 1, "Unit": "Count"}]},
        retry=_aux_retry(spec), next_state=after_register, result_path=None, catch=False,
    )
    states["RecordTrained"]["Catch"] = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.metric_error", "Next": after_register}]
    if spec.manual_approval:
        then = f"approving it deploys it to {spec.endpoint_name}" if spec.deploy_enabled else "the serving config pins a package so it is not deployed"
        states["AwaitApproval"] = _notice(
            spec, "new model awaiting approval",
            f"States.Format('Model package {{}} passed the quality gate and awaits approval in {spec.model_package_group}; "
            f"{then}. {run_line}', $.package.arn, {run_args})",
        )
    elif not spec.deploy_enabled:
        states["Registered"] = _notice(
            spec, "new model registered",
            f"States.Format('Model package {{}} is registered and approved; the serving config pins a package so it is "
            f"not deployed. {run_line}', $.package.arn, {run_args})",
        )
    if spec.deploy_enabled:
        # Whatever started the run, only an approved version of this model's own group is deployed.
        states["VerifyPackage"] = _task(
            "arn:aws:states:::aws-sdk:sagemaker:describeModelPackage",
            {"ModelPackageName.$": "$.package.arn"},
            retry=_sagemaker_retry(spec), next_state="IsPackageDeployable", result_path="$.package_described",
        )
        states["IsPackageDeployable"] = _choice(
            [{
                "And": [
                    present("$.package_described.ModelApprovalStatus"),
                    {"Variable": "$.package_described.ModelApprovalStatus", "StringEquals": "Approved"},
                    present("$.package_described.ModelPackageGroupName"),
                    {"Variable": "$.package_described.ModelPackageGroupName", "StringEquals": spec.model_package_group},
                ],
                "Next": "FindNewestApproved" if spec.deploy_mode else DEPLOY,
            }],
            "PackageNotDeployable",
        )
        states["PackageNotDeployable"] = _failure(
            "PackageNotDeployable",
            f"States.Format('{{}} is not an approved version of {spec.model_package_group}; nothing was deployed', $.package.arn)",
            "VerifyPackage",
        )
        if spec.deploy_mode:
            # An update event of an older approved version (or a late, repeated approval) must not roll it out
            # again: only the newest approved version deploys.
            states["FindNewestApproved"] = _task(
                "arn:aws:states:::aws-sdk:sagemaker:listModelPackages",
                {"ModelPackageGroupName": spec.model_package_group, "ModelApprovalStatus": "Approved", "SortBy": "CreationTime",
                 "SortOrder": "Descending", "MaxResults": 1},
                retry=_sagemaker_retry(spec), next_state="IsNewestApproved", result_path="$.newest",
                result_selector={"packages.$": "$.ModelPackageSummaryList"},
            )
            states["IsNewestApproved"] = _choice(
                [{"And": [present("$.newest.packages[0].ModelPackageArn"),
                          {"Variable": "$.newest.packages[0].ModelPackageArn", "StringEqualsPath": "$.package.arn"}],
                  "Next": DEPLOY}],
                "NotNewestApproved",
            )
            states["NotNewestApproved"] = _notice(
                spec, "older version not deployed",
                f"States.Format('Model package {{}} was not deployed: it is not the newest approved version of "
                f"{spec.model_package_group}. {run_line}', $.package.arn, {run_args})",
            )
        states[DEPLOY] = {
            "Type": "Parallel",
            "Comment": "Roll the model onto the endpoint; wait until it is in service or rolled back.",
            "Branches": [_deploy_branch(spec)],
            "ResultSelector": {"endpoint_config.$": "$[0].endpoint_config.name", "model.$": "$[0].model.name"},
            "ResultPath": "$.deployment",
            "Catch": _catch(),
            "Next": "Deployed",
        }
        states["Deployed"] = _notice(
            spec, "new model deployed",
            f"States.Format('Model package {{}} is live on {spec.endpoint_name} as model {{}} with endpoint config {{}}. "
            f"{run_line}', $.package.arn, $.deployment.model, $.deployment.endpoint_config, {run_args})",
        )
    states[NOTIFY_SUCCESS] = _notify(spec, "$.notice.subject", "$.notice.message", next_state="CheckPendingAfterSuccess",
                                     on_error=NOTIFICATION_FAILED)
    states.update(_pending_states(spec, "AfterSuccess", "RunSucceeded"))
    states["RunSucceeded"] = {"Type": "Succeed"}
    states[NOTIFICATION_FAILED] = {"Type": "Fail", "Error": "NotificationFailed", "CausePath": "States.JsonToString($.notify_error)"}
    # Error name, failing state, run and a console link: never the cause, which may quote customer data
    # (a job's exit message); the console and the execution's logs (stack key) have it.
    states[NOTIFY_FAILURE] = _notify(
        spec,
        "$.failure.subject",
        f"States.Format('{{}} in state {{}} - {run_line}. Details: {console_url(spec)}{{}}', "
        f"$.failure.Error, $.failure.State, {run_args}, $.run.execution_arn)",
        next_state="CheckPendingAfterFailure",
        on_error="CheckPendingAfterFailure",
    )
    states.update(_pending_states(spec, "AfterFailure", FAILURE_KIND))
    # Error names starting with "States." are reserved for the service: a task's own failure ends as StepFailed.
    states[FAILURE_KIND] = _choice([{"Variable": "$.failure.Error", "StringMatches": "States.*", "Next": STEP_FAILED}], RUN_FAILED)
    states[STEP_FAILED] = {"Type": "Fail", "Error": "StepFailed", "CausePath": "States.JsonToString($.failure)"}
    states[RUN_FAILED] = {"Type": "Fail", "ErrorPath": "$.failure.Error", "CausePath": "States.JsonToString($.failure)"}
    _route_failures(spec, states)
    return {
        "Comment": f"Continuous training of {spec.model} ({spec.stack}): validate, train, evaluate, gate, register, deploy.",
        "StartAt": "Init",
        "States": states,
    }


def _route_failures(spec: PipelineSpec, states: dict[str, dict[str, Any]]) -> None:
    """Every way into NotifyFailure records the failing state and a static subject (SNS: under 100 characters).

    A Catch records only ``Error`` and ``Cause``: each catching state gets a ``Failed<State>`` step that adds
    its name. States the flow fails itself (``_failure``) name theirs.
    """
    for name, state in list(states.items()):
        for catcher in state.get("Catch", []):
            if catcher["Next"] == NOTIFY_FAILURE:
                catcher["Next"] = f"Failed{name}"
                states[f"Failed{name}"] = _pass(
                    {"Error.$": "$.failure.Error", "State": name, "caught.$": "$.failure", "subject": subject(spec, f"{name} failed")},
                    "$.failure", NOTIFY_FAILURE,
                )
        params = state.get("Parameters", {})
        if state["Type"] == "Pass" and state.get("ResultPath") == "$.failure" and "State" in params and "subject" not in params:
            params["subject"] = subject(spec, f"{params['State']} failed ({params['Error']})")


def _notify(spec: PipelineSpec, subject_path: str, message: str, *, next_state: str | None, on_error: str) -> dict[str, Any]:
    state = _task(
        "arn:aws:states:::sns:publish",
        {"TopicArn": spec.topic_arn, "Subject.$": subject_path, "Message.$": message},
        retry=_aux_retry(spec), next_state=next_state, result_path=None, catch=False,
    )
    # A failed notification must not hide the run's own outcome: the run still ends failed (or as NotificationFailed).
    state["Catch"] = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.notify_error", "Next": on_error}]
    return state


def task_states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every Task state of a definition by name, including those inside Parallel branches and Map items."""
    found: dict[str, dict[str, Any]] = {}
    for name, state in definition["States"].items():
        if state["Type"] == "Task":
            found[name] = state
        for branch in [*state.get("Branches", []), *([state["ItemProcessor"]] if "ItemProcessor" in state else [])]:
            found.update(task_states(branch))
    return found
