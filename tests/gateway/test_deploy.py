"""The Dockerfile and Kubernetes manifests, checked offline.

CI has no Docker engine, so the image is not built here (``deploy/docker-smoke.sh`` builds
and runs it where there is one); its command line is checked against the real parser. The
manifests are validated against Kubernetes' own OpenAPI schemas (bundled by
kubernetes-validate, strict: unknown fields are errors), and what the drain depends on is
checked against the gateway's own options.
"""

from __future__ import annotations

import re
import shlex

import pytest

from nsaudio.cli.main import build_parser

from ..conftest import ROOT

yaml = pytest.importorskip("yaml")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

MANIFEST = ROOT / "deploy" / "kubernetes" / "gateway.yaml"
#: The Kubernetes release the manifests are checked against (preStop's sleep action is 1.30+).
KUBERNETES = "1.30.0"


def _docs() -> list[dict]:
    return [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]


def _gateway_args(argv: list[str]):
    return build_parser(["gateway", *argv]).parse_args(["gateway", *argv])


@pytest.mark.parametrize("version", [KUBERNETES, "1.33.0"])
def test_every_manifest_is_valid_against_the_kubernetes_schemas(version):
    docs = _docs()
    assert [d["kind"] for d in docs] == ["Deployment", "Service", "HorizontalPodAutoscaler"]
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_a_broken_manifest_is_caught():
    deployment = _docs()[0]
    deployment["spec"]["template"]["spec"]["terminationGracePeriod"] = 90  # misspelt
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)


def test_the_deployment_drains_within_its_grace_period():
    deployment, service, hpa = _docs()
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = _gateway_args(container["args"])
    assert args.twilio == ("0.0.0.0", 8080) and args.ops == ("0.0.0.0", 8081)
    assert args.twilio_auth_token_file  # a public listener is signed
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + args.drain_timeout + 10
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "ops"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "ops"}
    assert ports == {"media": 8080, "ops": 8081}
    assert container["env"][0]["valueFrom"]["secretKeyRef"]  # the key from a Secret, not argv
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= set(ports)
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]


def test_the_dockerfile_command_is_a_valid_gateway_command():
    text = (ROOT / "Dockerfile").read_text()
    cmd = re.search(r"^CMD \[(.*?)\]\s*$", text, re.M | re.S)
    assert cmd is not None
    argv = [shlex.split(part)[0] for part in cmd.group(1).replace("\\\n", "").split(",")]
    args = _gateway_args(argv)
    assert args.twilio == ("0.0.0.0", 8080) and args.twilio_auth_token_file
    assert 'ENTRYPOINT ["nsaudio", "gateway"]' in text and "STOPSIGNAL SIGTERM" in text


def test_a_read_only_root_filesystem_leaves_the_workers_a_temporary_directory():
    # --workers keeps the workers' metrics in tempfile's directory: on a read-only root
    # filesystem without a volume at /tmp the pod fails at start (seen with docker run
    # --read-only --workers 2: "No usable temporary directory found").
    pod = _docs()[0]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"]
    assert _gateway_args(container["args"]).workers > 1
    tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert len(tmp) == 1 and not tmp[0].get("readOnly")
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[tmp[0]["name"]]
