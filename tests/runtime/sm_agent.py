"""What the SageMaker agent does around a framework container, for jobs and an endpoint run on this machine.

Emulated (there is no SageMaker here): S3 (each ``s3://`` URI of the job maps to a local file or folder, copied to
its ``LocalPath`` before the job and never uploaded), the job's config files (``/opt/ml/input/config/*.json``,
written from the job's own parameters), and the control plane's reading of the failure file. Real: the container
(image environment, entry points, the ``/opt/ml`` and ``/opt/venv`` paths, network isolation), see image.py.

Every job and the endpoint run network-isolated (a network namespace with only loopback): the stack's models are
isolated, and a job that needs the network at run time is a defect.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from image import PYCACHE, PYCACHE_MOUNT, bytecode_enabled, image_env

# A job must finish well within this; it bounds a hung job, it is not a timing assertion.
JOB_TIMEOUT = 900
# The execution paths every job of one CT run reads: its id, and the run's snapshot of the training data
# (ListTrainingData ... WriteDataManifest copy the listed objects there; the jobs read only that copy).
RUN = {"$.run.id": "run-1", "$.data.s3_uri": "s3://models/churn/snapshots/run-1/data/churn/train/"}
PING_BOUND = 600  # generous: first /ping on a loaded 2-core machine took up to 120 s before the import was cut


def resolve(params: Any, values: dict[str, Any]) -> Any:
    """A state's Parameters with its ``key.$`` paths replaced by ``values[path]`` (intrinsic functions that only
    name things, such as ``States.Format(...)`` for job names and output URIs, become a fixed string)."""
    if isinstance(params, list):
        return [resolve(v, values) for v in params]
    if not isinstance(params, dict):
        return params
    out = {}
    for key, value in params.items():
        if key.endswith(".$"):
            if value in values:
                out[key[:-2]] = resolve(values[value], values)
            elif value.startswith("States.Format("):
                out[key[:-2]] = f"computed:{value}"
            else:
                raise KeyError(f"{key}: {value} has no value in this test (give it in values)")
        else:
            out[key] = resolve(value, values)
    return out


def _stage(uri: str, local_path: Path, s3: dict[str, Path]) -> None:
    """Copy what ``uri`` names into ``local_path``, as SageMaker's File mode does for an S3Prefix."""
    if uri not in s3:
        raise KeyError(f"no local copy for {uri} (give it in s3)")
    source = s3[uri]
    local_path.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, local_path, dirs_exist_ok=True)
    else:
        # An S3Prefix naming one object: it lands under the object's own name.
        shutil.copy2(source, local_path / (uri.rstrip("/").rsplit("/", 1)[-1] if uri.startswith("s3://") else source.name))


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    opt_ml: Path
    failure_file: Path

    @property
    def failure_reason(self) -> str:
        """What DescribeTrainingJob's FailureReason / DescribeProcessingJob's ExitMessage would show."""
        return self.failure_file.read_text() if self.failure_file.is_file() else ""

    def logs(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout[-6000:]}\n--- stderr\n{self.stderr[-6000:]}"


class Container:
    """One container of the image: a fresh ``/opt/ml``, private /tmp and /etc, no network."""

    def __init__(self, runtime: Path, workdir: Path):
        self.runtime = runtime
        self.opt_ml = workdir / "opt-ml"
        self.scratch = workdir / "scratch"
        for d in (self.opt_ml, self.scratch):
            d.mkdir(parents=True, exist_ok=True)

    def command(self, argv: list[str], environment: dict[str, str]) -> list[str]:
        nginx = self.runtime / "nginx"
        env = {**image_env(self.runtime), **environment}
        # The image has nginx at /usr/sbin; here it is Debian's, unpacked under the runtime folder and bound to
        # /opt/nginx, a path the container's own /tmp cannot hide (a checkout may live under the host's /tmp).
        env["PATH"] = f"{env['PATH']}:/opt/nginx/usr/sbin"
        cache = self.runtime / PYCACHE
        bytecode = bytecode_enabled() and (cache / ".complete").is_file()
        if bytecode:  # read-only: what a container compiles must not reach the next one (image.py's docstring)
            env["PYTHONPYCACHEPREFIX"] = PYCACHE_MOUNT
        prelude = " && ".join(
            [
                "set -e",
                f"mount -t tmpfs tmpfs {shlex.quote(str(self.scratch))}",
                f"mkdir -p {self.scratch}/etc/upper {self.scratch}/etc/work {self.scratch}/var/upper {self.scratch}/var/work"
                f" {self.scratch}/venv/upper {self.scratch}/venv/work",
                "mount -t tmpfs tmpfs /opt",  # the image's /opt holds only the venv and ml/
                "mkdir /opt/venv /opt/ml /opt/nginx",
                f"mount --bind {shlex.quote(str(nginx))} /opt/nginx",
                *([f"mkdir {PYCACHE_MOUNT}", f"mount --bind -o ro {shlex.quote(str(cache))} {PYCACHE_MOUNT}"] if bytecode else []),
                # The cached environment is the image's layer: read-only underneath, each container writes its own
                # copy (what the package installs at run time must not leak into the next container).
                f"mount -t overlay overlay -o lowerdir={shlex.quote(str(self.runtime / 'venv'))},"
                f"upperdir={self.scratch}/venv/upper,workdir={self.scratch}/venv/work /opt/venv",
                f"mount --bind {shlex.quote(str(self.opt_ml))} /opt/ml",
                # sagemaker-containers writes /etc/sagemaker-nginx.conf and nginx its temp files under /var/lib/nginx:
                # private copies-on-write of /etc and /var, so the host's stay untouched.
                f"mount -t overlay overlay -o lowerdir=/etc,upperdir={self.scratch}/etc/upper,workdir={self.scratch}/etc/work /etc",
                f"mount -t overlay overlay -o lowerdir=/var,upperdir={self.scratch}/var/upper,workdir={self.scratch}/var/work /var",
                "mkdir -p /var/lib/nginx /var/log/nginx",
                f"mkdir -p /etc/nginx && cp {nginx}/etc/nginx/mime.types /etc/nginx/",
                # The image has no pip configuration: this machine's (local indexes, constraints) must not leak in.
                "rm -rf /etc/pip.conf /etc/xdg/pip",
                "for d in /root/.config/pip /root/.pip; do if [ -d $d ]; then mount -t tmpfs tmpfs $d; fi; done",
                # SageMaker names the instance algo-1 in /etc/hosts; sagemaker-training waits until it resolves.
                "echo '127.0.0.1 algo-1' >> /etc/hosts",
                "mount -t tmpfs tmpfs /tmp",
                "ip link set lo up",
                "cd /",
            ]
        )
        assignments = " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())
        script = f"{prelude} && exec env -i {assignments} \"$@\""
        return ["unshare", "-m", "-n", "bash", "-c", script, "container", *argv]

    def run(self, argv: list[str], environment: dict[str, str], failure_file: str) -> Result:
        done = subprocess.run(
            self.command(argv, environment), capture_output=True, text=True, timeout=JOB_TIMEOUT, stdin=subprocess.DEVNULL
        )
        return Result(done.returncode, done.stdout, done.stderr, self.opt_ml,
                      self.opt_ml / failure_file.removeprefix("/opt/ml/"))


def run_processing_job(runtime: Path, workdir: Path, params: dict[str, Any], s3: dict[str, Path]) -> Result:
    """A resolved CreateProcessingJob request, as SageMaker runs it: inputs staged, ContainerEntrypoint run."""
    c = Container(runtime, workdir)
    for item in params.get("ProcessingInputs", []):
        s3_input = item["S3Input"]
        _stage(s3_input["S3Uri"], c.opt_ml / s3_input["LocalPath"].removeprefix("/opt/ml/"), s3)
    for output in params["ProcessingOutputConfig"]["Outputs"]:
        (c.opt_ml / output["S3Output"]["LocalPath"].removeprefix("/opt/ml/")).mkdir(parents=True, exist_ok=True)
    (c.opt_ml / "output").mkdir(exist_ok=True)
    config = c.opt_ml / "config"
    config.mkdir(exist_ok=True)
    (config / "processingjobconfig.json").write_text(json.dumps(params))
    app = params["AppSpecification"]
    argv = [*app.get("ContainerEntrypoint", []), *app.get("ContainerArguments", [])]
    # A processing job's ExitMessage is /opt/ml/output/message.
    return c.run(argv, params.get("Environment", {}), "/opt/ml/output/message")


def run_training_job(
    runtime: Path, workdir: Path, params: dict[str, Any], s3: dict[str, Path], *, checkpoints: Path | None = None,
    command: str = "train",
) -> Result:
    """A resolved CreateTrainingJob request: channels staged, config files written, the image's ``train`` run.

    ``checkpoints``: a folder that stands for the job's CheckpointConfig S3Uri (SageMaker copies it to
    ``LocalPath`` before the job starts and syncs it back while the job runs; here: back after the job).
    """
    c = Container(runtime, workdir)
    config = c.opt_ml / "input" / "config"
    config.mkdir(parents=True)
    channels = {}
    for channel in params["InputDataConfig"]:
        name = channel["ChannelName"]
        _stage(channel["DataSource"]["S3DataSource"]["S3Uri"], c.opt_ml / "input" / "data" / name, s3)
        channels[name] = {
            "ContentType": channel.get("ContentType", ""),
            "TrainingInputMode": params["AlgorithmSpecification"].get("TrainingInputMode", "File"),
            "S3DistributionType": channel["DataSource"]["S3DataSource"].get("S3DataDistributionType", "FullyReplicated"),
            "RecordWrapperType": "None",
        }
    (config / "hyperparameters.json").write_text(json.dumps(params.get("HyperParameters", {})))
    (config / "inputdataconfig.json").write_text(json.dumps(channels))
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-1", "current_instance_type": params["ResourceConfig"]["InstanceType"],
                    "hosts": ["algo-1"], "network_interface_name": "lo"})
    )
    checkpoint_config = params.get("CheckpointConfig")
    if checkpoint_config is not None:
        assert checkpoints is not None, "the job has a CheckpointConfig: give the folder that stands for its S3Uri"
        local = checkpoint_config.get("LocalPath", "/opt/ml/checkpoints")
        (config / "checkpointconfig.json").write_text(json.dumps({"LocalPath": local, "S3Uri": checkpoint_config["S3Uri"]}))
        target = c.opt_ml / local.removeprefix("/opt/ml/")
        checkpoints.mkdir(parents=True, exist_ok=True)
        shutil.copytree(checkpoints, target)  # S3 -> LocalPath when the job starts
    for d in ("model", "output/data"):
        (c.opt_ml / d).mkdir(parents=True, exist_ok=True)
    environment = {"TRAINING_JOB_NAME": "job", "AWS_REGION": "us-east-1", **params.get("Environment", {})}
    algorithm = params["AlgorithmSpecification"]
    # Without ContainerEntrypoint SageMaker runs the image with the argument `train`.
    argv = [*algorithm["ContainerEntrypoint"], *algorithm.get("ContainerArguments", [])] if "ContainerEntrypoint" in algorithm else [command]
    result = c.run(argv, environment, "/opt/ml/output/failure")
    if checkpoint_config is not None:  # LocalPath -> S3 (SageMaker syncs while the job runs)
        shutil.copytree(target, checkpoints, dirs_exist_ok=True)
    return result


class Endpoint:
    """One instance of a SageMaker model behind ``serve``: started once, asked many requests, stopped."""

    def __init__(self, runtime: Path, workdir: Path, model_archive: bytes, environment: dict[str, str]):
        self.container = Container(runtime, workdir)
        model_dir = self.container.opt_ml / "model"
        model_dir.mkdir()
        archive = workdir / "model.tar.gz"
        archive.write_bytes(model_archive)
        with tarfile.open(archive) as tar:  # SageMaker extracts ModelDataUrl into /opt/ml/model
            tar.extractall(model_dir, filter="data")
        self.log = (workdir / "serve.log").open("w+")
        self.process = subprocess.Popen(
            self.container.command(["serve"], environment),
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )

    def logs(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()[-8000:]

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes, str]:
        """(status, body, content type), asked from inside the endpoint's network namespace (nothing else reaches it)."""
        argv = ["nsenter", "-t", str(self.process.pid), "-n", "curl", "-sS", "-X", method, "-o", "-",
                "-w", "\n%{http_code} %{content_type}", "--max-time", "120"]
        for k, v in (headers or {}).items():
            argv += ["-H", f"{k}: {v}"]
        if body is not None:
            argv += ["--data-binary", "@-"]
        done = subprocess.run([*argv, f"http://127.0.0.1:8080{path}"], input=body or b"", capture_output=True)
        head, _, tail = done.stdout.rpartition(b"\n")
        status, _, content_type = tail.decode().partition(" ")
        return int(status or 0), head, content_type

    def wait_until_healthy(self) -> int:
        """Poll /ping until it answers 200 (returns the number of polls); fails with the logs when it cannot."""
        polls = 0
        while True:
            polls += 1
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited with {self.process.returncode}:\n{self.logs()}")
            status, _, _ = self.request("GET", "/ping")
            if status == 200:
                return polls
            try:  # the wait is on the server's state: each poll blocks up to a second for the process to exit
                self.process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
            if polls > PING_BOUND:
                raise AssertionError(f"/ping never answered 200 (last {status}):\n{self.logs()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()
