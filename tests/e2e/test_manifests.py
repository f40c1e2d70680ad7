"""The Kubernetes, Istio and Envoy Gateway manifests, without a cluster.

* Every Kubernetes object (the files under envoy/kubernetes/ and
  envoy/istio/, and the `kustomize build` output of the base and both
  overlays) validates, strictly (no unknown fields), against the schemas
  of Kubernetes 1.37 that PyPI's kubernetes-validate ships.
* The Istio (WasmPlugin, VirtualService) and Envoy Gateway
  (EnvoyExtensionPolicy) resources validate against their CRDs' OpenAPI
  schemas in tests/data/crds/ (sources and versions in the README there),
  with unknown fields refused as the API server's strict field validation
  does; the CEL rules of those CRDs that the manifests come near are
  checked by hand, since nothing here evaluates CEL.
* `kustomize build` is scripts/kustomize.py; where kubectl is installed,
  its kustomize must give the same objects.
* The committed files render.sh writes are up to date, and the policies in
  the manifests are policies `palisade check-config` accepts, the same
  policy everywhere except the `companion` section.

tests/e2e/test_sidecar_pod.py runs what the base's ConfigMaps carry.
"""
import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from conftest import CLI, ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import kustomize  # noqa: E402  scripts/kustomize.py

K8S_VERSION = "1.37.0"
KUBE = ROOT / "envoy" / "kubernetes"
ISTIO = ROOT / "envoy" / "istio"
GATEWAY = ROOT / "envoy" / "gateway"
CRDS = ROOT / "tests" / "data" / "crds"
KUSTOMIZATIONS = ["base", "overlays/shared-companion", "overlays/init-copy"]
KEY = "7:base64:" + "bWFuaWZlc3RzLXRlc3Qta2V5LTAxMjM0NTY3ODlhYmNkZWY="
ISTIO_HOST = "palisade-companion.palisade.svc.cluster.local"


def documents(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def build(name):
    return kustomize.kustomize(str(KUBE / name))


def by_kind(resources, kind, name=None):
    found = [r for r in resources if r["kind"] == kind
             and (name is None or r["metadata"]["name"] == name)]
    assert found, f"no {kind} {name or ''}"
    return found


# --- CRD schemas ----------------------------------------------------------------

def to_json_schema(schema):
    """A CRD's structural OpenAPI v3 schema as JSON Schema: `nullable`
    becomes a null type, and an object with `properties` refuses other
    fields unless it says x-kubernetes-preserve-unknown-fields (strict
    field validation). Descriptions, formats, defaults and CEL rules
    (x-kubernetes-validations) are dropped."""
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = to_json_schema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [to_json_schema(sub) for sub in value]
        elif key.startswith("x-") or key in ("format", "description", "default", "nullable"):
            continue
        else:
            out[key] = value
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if ("properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields")
            and "additionalProperties" not in schema):
        out["additionalProperties"] = False
    return out


OBJECT_META = {
    "type": "object",
    "required": ["name"],
    "properties": {
        # DNS-1123 subdomain, as for most kinds' names.
        "name": {"type": "string", "maxLength": 253,
                 "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"},
        "namespace": {"type": "string", "maxLength": 63, "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "additionalProperties": False,
}


def crd_schemas():
    """{(apiVersion, kind): JSON Schema} from tests/data/crds/."""
    schemas = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = to_json_schema(version["schema"]["openAPIV3Schema"])
            schema.setdefault("properties", {}).update({
                "apiVersion": {"const": f"{group}/{version['name']}"},
                "kind": {"const": kind},
                "metadata": OBJECT_META,
            })
            schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
            schema["additionalProperties"] = False
            schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


SCHEMAS = crd_schemas()


def validate(resource):
    """Validates one object: a CRD kind against tests/data/crds/, anything
    else against Kubernetes' own schemas (strict). Raises on an error."""
    key = (resource.get("apiVersion"), resource.get("kind"))
    if key in SCHEMAS:
        jsonschema.validate(resource, SCHEMAS[key])
        return "crd"
    kubernetes_validate.validate(resource, K8S_VERSION, strict=True)
    return "kubernetes"


def assert_valid(resource, where):
    try:
        return validate(resource)
    except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as e:
        path = "/".join(str(p) for p in getattr(e, "absolute_path", getattr(e, "path", [])))
        raise AssertionError(f"{where}: {resource['kind']} {resource['metadata'].get('name')}: "
                             f"{path}: {e.message}") from None


# --- every manifest file --------------------------------------------------------

def manifest_files():
    """Files that hold objects to apply as they are (not kustomizations,
    patches or the EnvoyFilter template)."""
    files = []
    for path in sorted(KUBE.rglob("*.yaml")) + sorted(ISTIO.glob("*.yaml")) + sorted(GATEWAY.glob("*.yaml")):
        name = path.name
        if name in ("kustomization.yaml", "envoy.yaml", "policy.yaml", "companion.yaml") and KUBE in path.parents:
            continue  # kustomize inputs: validated through the build below
        if name.endswith(".patch.yaml") or name in ("proxy-env-patch.yaml", "envoyfilter.yaml"):
            continue  # patches and the template: below
        files.append(path)
    return files


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_manifest_validates(path):
    kinds = [assert_valid(doc, path.name) for doc in documents(path)]
    assert kinds, f"{path}: no objects"


def test_every_manifest_is_covered():
    """Nothing under the three directories is skipped by accident."""
    covered = {p.relative_to(ROOT) for p in manifest_files()}
    expected = {
        "envoy/kubernetes/secret.example.yaml",
        "envoy/kubernetes/base/deployment.yaml", "envoy/kubernetes/base/service.yaml",
        "envoy/kubernetes/base/pdb.yaml", "envoy/kubernetes/base/networkpolicy.yaml",
        "envoy/kubernetes/overlays/shared-companion/companion.deployment.yaml",
        "envoy/kubernetes/overlays/shared-companion/redis.yaml",
        "envoy/istio/wasmplugin.yaml", "envoy/istio/companion.yaml", "envoy/istio/virtualservice.yaml",
        "envoy/gateway/envoyextensionpolicy.yaml",
    }
    assert {str(p) for p in covered} == expected


def test_the_validator_refuses_what_the_api_server_would():
    """The checks can fail: an unknown field, a wrong enum value and a
    wrong type are each refused, for a core kind and for the CRD kinds."""
    deployment = documents(KUBE / "base" / "deployment.yaml")[0]
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][1]["readinessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["volumes"][0]["image"]["pullPolicy"] = 7
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)
    plugin = documents(ISTIO / "wasmplugin.yaml")[0]
    for edit in (lambda p: p["spec"].update(failStrategy="FAIL_SOMETIMES"),
                 lambda p: p["spec"].update(sha256="abc"),
                 lambda p: p["spec"]["vmConfig"].update(envs=[]),
                 lambda p: p["spec"].update(priority="high")):
        broken = copy.deepcopy(plugin)
        edit(broken)
        with pytest.raises(jsonschema.ValidationError):
            validate(broken)
    policy = documents(GATEWAY / "envoyextensionpolicy.yaml")[0]
    broken = copy.deepcopy(policy)
    broken["spec"]["wasm"][0]["code"]["type"] = "ConfigMap"
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)
    service = documents(ISTIO / "virtualservice.yaml")[0]
    broken = copy.deepcopy(service)
    broken["spec"]["http"][0]["match"][0]["uri"] = {"prefix": "/a", "exact": "/b"}
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)


# --- kustomize ----------------------------------------------------------------------

@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_kustomize_build_validates(name):
    resources = build(name)
    for r in resources:
        assert_valid(r, name)
    # Generated ConfigMaps carry kustomize's hash, and the pods mount those.
    config_maps = {r["metadata"]["name"] for r in by_kind(resources, "ConfigMap")}
    assert {re.sub(r"-[a-z0-9]{10}$", "", n) for n in config_maps} == {"palisade-envoy", "palisade-policy"}
    for deployment in by_kind(resources, "Deployment"):
        for volume in deployment["spec"]["template"]["spec"]["volumes"]:
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps, volume


def test_base_pod_shape():
    """What the replay and the docs rely on: Envoy, app and companion in
    one pod, the module from an image volume where envoy.yaml loads it,
    probes on the companion's /healthz and Envoy's /ready."""
    resources = build("base")
    web = by_kind(resources, "Deployment", "web")[0]["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in web["containers"]}
    assert list(containers) == ["app", "envoy", "companion"]
    volumes = {v["name"]: v for v in web["volumes"]}
    assert volumes["wasm"]["image"]["reference"].startswith("registry.example.com/palisade-wasm:")
    envoy_config = by_kind(resources, "ConfigMap")[0]["data"]["envoy.yaml"]
    mount = next(m for m in containers["envoy"]["volumeMounts"] if m["name"] == "wasm")
    assert f'filename: "{mount["mountPath"]}/plugin.wasm"' in envoy_config
    assert containers["envoy"]["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert containers["companion"]["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert containers["companion"]["image"] == "registry.example.com/palisade-companion:0.1.0"
    for name in ("envoy", "companion"):
        env = {e["name"]: e for e in containers[name]["env"]}
        assert env["PALISADE_KEYS"]["valueFrom"]["secretKeyRef"]["name"] == "palisade-keys"
    ports = {p["name"]: p["containerPort"] for c in containers.values() for p in c.get("ports", [])}
    policy = yaml.safe_load(next(r for r in resources if r["metadata"]["name"].startswith("palisade-policy-"))
                            ["data"]["policy.yaml"])
    assert policy["companion"]["internal"] == f"0.0.0.0:{ports['companion-int']}"
    assert by_kind(resources, "PodDisruptionBudget", "web")[0]["spec"]["minAvailable"] == 1
    netpol = by_kind(resources, "NetworkPolicy", "web")[0]["spec"]
    assert [p["port"] for rule in netpol["ingress"] for p in rule["ports"]] == [ports["http"]]


def test_shared_companion_overlay():
    """The web pods lose the companion; Envoy's companion clusters resolve
    the Service; the companion's policy has Redis; names and ports agree."""
    resources = build("overlays/shared-companion")
    web = by_kind(resources, "Deployment", "web")[0]["spec"]["template"]["spec"]
    assert [c["name"] for c in web["containers"]] == ["app", "envoy"]
    assert [v["name"] for v in web["volumes"]] == ["wasm", "envoy-config"]
    companion = by_kind(resources, "Deployment", "palisade-companion")[0]["spec"]["template"]["spec"]
    policy_map = next(v for v in companion["volumes"] if v["name"] == "policy")["configMap"]["name"]
    policy = yaml.safe_load(by_kind(resources, "ConfigMap", policy_map)[0]["data"]["policy.yaml"])
    assert policy["companion"]["redis_url"] == "redis://redis:6379/0"
    service = by_kind(resources, "Service", "palisade-companion")[0]["spec"]["ports"]
    assert {p["port"] for p in service} == {8181, 8182}
    assert policy["companion"]["public"].endswith(":8181") and policy["companion"]["internal"].endswith(":8182")
    envoy = next(r for r in resources if r["metadata"]["name"].startswith("palisade-envoy-"))
    config = envoy["data"]["envoy.yaml"]
    assert config.count("socket_address: {address: palisade-companion, port_value: 8181}") == 1
    assert config.count("socket_address: {address: palisade-companion, port_value: 8182}") == 1
    assert config.count("type: STRICT_DNS") == 2
    assert by_kind(resources, "Service", "redis")[0]["spec"]["ports"][0]["port"] == 6379
    images = [c["image"] for d in by_kind(resources, "Deployment") for c in d["spec"]["template"]["spec"]["containers"]]
    assert "redis:7.4.2-alpine" in images


def test_init_copy_overlay():
    resources = build("overlays/init-copy")
    web = by_kind(resources, "Deployment", "web")[0]["spec"]["template"]["spec"]
    assert web["volumes"][0] == {"name": "wasm", "emptyDir": {"sizeLimit": "16Mi"}}
    init = web["initContainers"][0]
    assert init["command"][-1] == "/etc/palisade-wasm/plugin.wasm"
    lines = [l for l in (KUBE / "overlays" / "init-copy" / "Containerfile").read_text().splitlines() if l.strip()]
    assert len(lines) == 2 and lines[1].endswith("/plugin.wasm /plugin.wasm")


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="no kubectl here to compare with")
@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_kustomize_py_matches_kubectl(name):
    """scripts/kustomize.py and kubectl's kustomize build the same objects
    (hash suffixes included), in the same order."""
    out = subprocess.run(["kubectl", "kustomize", str(KUBE / name)], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert build(name) == [d for d in yaml.safe_load_all(out) if d]


def test_kustomize_py_hash_and_refusals(tmp_path):
    """The hash of a one-literal ConfigMap is the one kustomize 5.5 gives
    (x-4h2mbtbbt6, seen with kubectl 1.32); fields the script does not
    implement, a failed JSON 6902 test and a base cycle are errors."""
    (tmp_path / "kustomization.yaml").write_text("configMapGenerator:\n- name: x\n  literals: [a=b]\n")
    assert [r["metadata"]["name"] for r in kustomize.kustomize(str(tmp_path))] == ["x-4h2mbtbbt6"]
    (tmp_path / "kustomization.yaml").write_text("namePrefix: p-\n")
    with pytest.raises(kustomize.KustomizeError, match="namePrefix"):
        kustomize.kustomize(str(tmp_path))
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {k: v}\n")
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [cm.yaml]\npatches:\n- target: {kind: ConfigMap}\n  patch: |-\n"
        "    - {op: test, path: /data/k, value: w}\n")
    with pytest.raises(kustomize.KustomizeError, match="testing value /data/k failed"):
        kustomize.kustomize(str(tmp_path))
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "kustomization.yaml").write_text("resources: [..]\n")
    (tmp_path / "kustomization.yaml").write_text("resources: [cm.yaml]\n")
    with pytest.raises(kustomize.KustomizeError, match="cycle"):
        kustomize.kustomize(str(tmp_path / "o"))


# --- the rendered files and the policies ------------------------------------------

def check_policy(policy, tmp_path):
    """`palisade policy-json` on a policy dict; returns its JSON."""
    path = tmp_path / f"policy-{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps(policy))
    result = subprocess.run([str(CLI), "policy-json", str(path)], capture_output=True, text=True,
                            env={**os.environ, "PALISADE_KEYS": KEY})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_rendered_files_are_up_to_date(tmp_path):
    """render.sh's outputs are committed: rendering again changes nothing."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shutil.copy(KUBE / "overlays" / "shared-companion" / "companion.yaml", shared)
    env = {**os.environ, "OUT": str(tmp_path / "envoy.yaml"), "SHARED_DIR": str(shared)}
    env.pop("PALISADE_KEYS", None)
    subprocess.run(["bash", str(KUBE / "render.sh")], check=True, env=env, capture_output=True, timeout=60)
    stale = "stale: rerun envoy/kubernetes/render.sh"
    assert (tmp_path / "envoy.yaml").read_text() == (KUBE / "base" / "envoy.yaml").read_text(), stale
    for name in ("envoy.yaml", "policy.json"):
        assert (shared / name).read_text() == (KUBE / "overlays" / "shared-companion" / name).read_text(), stale


def plugin():
    return documents(ISTIO / "wasmplugin.yaml")[0]


def without_companion(policy):
    return {k: v for k, v in policy.items() if k != "companion"}


def test_one_policy_everywhere(tmp_path):
    """The base policy, the WasmPlugin's pluginConfig, the Istio companion's
    ConfigMap and the EnvoyExtensionPolicy's config: the same policy, but
    for `companion`; each one accepted by the CLI."""
    base = yaml.safe_load((KUBE / "base" / "policy.yaml").read_text())
    config_map = next(d for d in documents(ISTIO / "companion.yaml") if d["kind"] == "ConfigMap")
    istio_companion = yaml.safe_load(config_map["data"]["policy.yaml"])
    gateway = documents(GATEWAY / "envoyextensionpolicy.yaml")[0]["spec"]["wasm"][0]["config"]
    assert istio_companion == plugin()["spec"]["pluginConfig"]
    for other in (plugin()["spec"]["pluginConfig"], gateway):
        assert without_companion(other) == without_companion(base)
    for policy in (base, plugin()["spec"]["pluginConfig"], gateway):
        parsed = check_policy(policy, tmp_path)
        # A challenge band, and keys from the environment only.
        assert parsed["thresholds"]["challenge"] < parsed["thresholds"]["block"]
        assert parsed["tokens"] == {**parsed["tokens"], "keys": [], "keys_env": "PALISADE_KEYS"}


def test_wasmplugin_for_istio():
    """What istiod and the filter need from wasmplugin.yaml, and the CEL
    rules of the CRD it comes near (not evaluated by the schema check)."""
    spec = plugin()["spec"]
    companion = spec["pluginConfig"]["companion"]
    assert companion["cluster"] == f"outbound|8181||{ISTIO_HOST}"
    assert companion["health_cluster"] == f"outbound|8182||{ISTIO_HOST}"
    assert companion["failure_mode"] == "pow"
    assert spec["vmConfig"]["env"] == [{"name": "PALISADE_KEYS", "valueFrom": "HOST"}]
    assert spec["phase"] == "AUTHN" and spec["failStrategy"] == "FAIL_CLOSE" and spec["priority"] > 0
    assert re.fullmatch(r"[a-f0-9]{64}", spec["sha256"])
    # CEL: url's scheme; value only with INLINE; one of selector/targetRef(s).
    assert spec["url"].startswith("oci://")
    assert all("value" not in e for e in spec["vmConfig"]["env"] if e.get("valueFrom") == "HOST")
    assert sum(k in spec for k in ("selector", "targetRef", "targetRefs")) <= 1
    # The clusters are Istio's for the Service in companion.yaml.
    service = next(d for d in documents(ISTIO / "companion.yaml") if d["kind"] == "Service")
    assert f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local" == ISTIO_HOST
    assert {p["port"] for p in service["spec"]["ports"]} == {8181, 8182}
    assert all(p["name"].startswith("http-") for p in service["spec"]["ports"])
    # The route for the challenge prefix comes first, to the public port.
    first = documents(ISTIO / "virtualservice.yaml")[0]["spec"]["http"][0]
    prefix = spec["pluginConfig"].get("challenge", {}).get("path_prefix", "/.palisade/")
    assert first["match"] == [{"uri": {"prefix": prefix}}]
    assert first["route"] == [{"destination": {"host": ISTIO_HOST, "port": {"number": 8181}}}]
    # The header's LIMITATION is gone, and nothing refers to removed files.
    text = (ISTIO / "wasmplugin.yaml").read_text()
    assert "LIMITATION" not in text and "Dockerfile" not in text


def test_wasmplugin_http_variant():
    """wasmplugin-http.patch.yaml, merged (JSON merge patch, as `kubectl
    patch --type merge` does), still validates and fetches over HTTPS."""
    patched = plugin()
    patch = yaml.safe_load((ISTIO / "wasmplugin-http.patch.yaml").read_text())
    patched["spec"].update(patch["spec"])
    assert_valid(patched, "wasmplugin-http.patch.yaml")
    assert patched["spec"]["url"].startswith(("http://", "https://"))
    assert re.fullmatch(r"[a-f0-9]{64}", patched["spec"]["sha256"])


def test_envoy_gateway_extension_policy():
    spec = documents(GATEWAY / "envoyextensionpolicy.yaml")[0]["spec"]
    wasm = spec["wasm"][0]
    # CEL: targetRefs' group and kind; the code source matches its type.
    assert all(r["group"] == "gateway.networking.k8s.io" and r["kind"] == "Gateway" for r in spec["targetRefs"])
    assert wasm["code"]["type"] == "Image" and "image" in wasm["code"] and "http" not in wasm["code"]
    assert wasm["rootID"] == "palisade" and wasm["failOpen"] is False
    assert wasm["env"]["hostKeys"] == [wasm["config"]["tokens"]["keys_env"]]


def test_istio_companion_env_and_probes():
    deployment = next(d for d in documents(ISTIO / "companion.yaml") if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "internal"}
    assert container["env"][0]["valueFrom"]["secretKeyRef"] == {"name": "palisade-keys", "key": "PALISADE_KEYS"}


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_envoy_accepts_the_configmap(name, tmp_path):
    """Each build's palisade-envoy ConfigMap passes `envoy --mode validate`
    (which loads the module and the policy), the module's path rewritten
    from where the pod mounts it to the built module. The shared overlay's
    STRICT_DNS clusters are not resolved by validation."""
    from conftest import ENVOY, WASM

    resources = build(name)
    config = next(r for r in resources if r["metadata"]["name"].startswith("palisade-envoy-"))["data"]["envoy.yaml"]
    assert config.count('filename: "/etc/palisade-wasm/plugin.wasm"') == 1
    (tmp_path / "envoy.yaml").write_text(config.replace("/etc/palisade-wasm/plugin.wasm", str(WASM)))
    result = subprocess.run([str(ENVOY), "--mode", "validate", "-c", str(tmp_path / "envoy.yaml"),
                             "--use-dynamic-base-id", "--disable-hot-restart"],
                            capture_output=True, text=True, timeout=120, env={**os.environ, "PALISADE_KEYS": KEY})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "palisade: policy loaded" in result.stdout + result.stderr
