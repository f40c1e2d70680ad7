#!/usr/bin/env python3
"""`kustomize build`, for exactly what envoy/kubernetes/ uses, in Python.

Usage: kustomize.py DIR > out.yaml

The tests need the kustomize output without a kustomize binary (Debian
bookworm has no kubectl or kustomize package, and PyPI's `kustomize` is not
kustomize). This covers, as kustomize v5 does them:

* `resources`: YAML files (several documents each) and directories holding
  a kustomization (bases), in order; a base that contains the directory
  including it is refused (kustomize's cycle check);
* `configMapGenerator`: `name`, `files` (`PATH` or `KEY=PATH`, paths within
  the kustomization's directory), `literals`, `behavior` create / replace /
  merge (an overlay replacing or merging a base's generator); the name gets
  kustomize's content-hash suffix (`-` + 10 characters), and references to
  it in pod templates are rewritten (volumes' `configMap.name` and
  `projected` sources, `env[].valueFrom.configMapKeyRef.name`,
  `envFrom[].configMapRef.name`, in containers and init containers);
* `patches` with an inline JSON 6902 `patch` (operations add, remove,
  replace, test; JSON pointers with `-`, `~0`, `~1`) and a `target` by
  `kind` and/or `name`;
* `images`: `name` with `newName`, `newTag`, `digest`, applied to
  containers' and init containers' `image` in pod templates and pods
  (like kustomize, not to image volumes' `reference`).

Anything else in a kustomization (secretGenerator, strategic-merge
patches, namespace, namePrefix, labels, replacements, components, ...) is
refused with an error rather than ignored. Output: the resources in
kustomize's default ("legacy") kind order, as YAML documents. Where
kubectl is installed, tests/e2e/test_manifests.py checks that its
`kubectl kustomize` gives the same objects.
"""
import copy
import hashlib
import json
import os
import sys

import yaml

KNOWN = {"apiVersion", "kind", "resources", "configMapGenerator", "patches", "images"}

# kustomize's legacy order (api/resid/gvk.go): these kinds first, in this
# order, then everything else, then the webhooks; ties by kind, name.
ORDER_FIRST = ["Namespace", "ResourceQuota", "StorageClass", "CustomResourceDefinition",
               "ServiceAccount", "PodSecurityPolicy", "Role", "ClusterRole", "RoleBinding",
               "ClusterRoleBinding", "ConfigMap", "Secret", "Endpoints", "Service", "LimitRange",
               "PriorityClass", "PersistentVolume", "PersistentVolumeClaim", "Deployment",
               "StatefulSet", "CronJob", "PodDisruptionBudget"]
ORDER_LAST = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]


class KustomizeError(Exception):
    pass


def kustomization_file(directory):
    for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    raise KustomizeError(f"{directory}: no kustomization.yaml")


def within(root, path):
    root, path = os.path.realpath(root), os.path.realpath(path)
    return path == root or path.startswith(root + os.sep)


def load_documents(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


class Generated:
    """A ConfigMap from a generator, named once everything is merged."""

    def __init__(self, name, data):
        self.name = name
        self.data = data


def generator_data(directory, spec):
    data = {}
    for entry in spec.get("files", []):
        key, _, path = entry.partition("=") if "=" in entry else (os.path.basename(entry), "", entry)
        full = os.path.join(directory, path)
        if not within(directory, full):
            raise KustomizeError(f"{entry}: outside {directory} (kustomize's load restrictions)")
        with open(full, encoding="utf-8") as f:
            data[key] = f.read()
    for literal in spec.get("literals", []):
        key, _, value = literal.partition("=")
        data[key] = value
    unknown = set(spec) - {"name", "files", "literals", "behavior"}
    if unknown:
        raise KustomizeError(f"configMapGenerator {spec.get('name')}: unsupported {sorted(unknown)}")
    return data


def build(directory, visited=()):
    """Resources (dicts, with Generated placeholders for ConfigMaps) of the
    kustomization in `directory`, before names get their hashes."""
    directory = os.path.realpath(directory)
    for seen in visited:
        if within(directory, seen):
            raise KustomizeError(f"cycle detected: candidate root '{directory}' contains visited root '{seen}'")
    with open(kustomization_file(directory)) as f:
        k = yaml.safe_load(f) or {}
    unknown = set(k) - KNOWN
    if unknown:
        raise KustomizeError(f"{directory}: unsupported kustomization fields {sorted(unknown)}")
    resources = []
    for entry in k.get("resources", []):
        path = os.path.join(directory, entry)
        if os.path.isdir(path):
            resources += build(path, visited + (directory,))
        else:
            if not within(directory, path):
                raise KustomizeError(f"{entry}: outside {directory}")
            resources += load_documents(path)
    for spec in k.get("configMapGenerator", []):
        behavior = spec.get("behavior", "create")
        data = generator_data(directory, spec)
        existing = [r for r in resources if isinstance(r, Generated) and r.name == spec["name"]]
        if behavior == "create":
            if existing:
                raise KustomizeError(f"configMapGenerator {spec['name']}: already exists (use behavior)")
            resources.append(Generated(spec["name"], data))
        elif behavior in ("replace", "merge"):
            if not existing:
                raise KustomizeError(f"configMapGenerator {spec['name']}: nothing to {behavior}")
            existing[0].data = data if behavior == "replace" else {**existing[0].data, **data}
        else:
            raise KustomizeError(f"configMapGenerator {spec['name']}: behavior {behavior!r}")
    for patch in k.get("patches", []):
        apply_patch(resources, patch)
    for image in k.get("images", []):
        for r in resources:
            if not isinstance(r, Generated):
                set_image(r, image)
    return resources


# --- patches (JSON 6902) ------------------------------------------------------

def apply_patch(resources, patch):
    unknown = set(patch) - {"target", "patch"}
    if unknown or "patch" not in patch or "target" not in patch:
        raise KustomizeError(f"patches: only inline JSON 6902 patches with a target ({sorted(patch)})")
    target = patch["target"]
    if set(target) - {"kind", "name"}:
        raise KustomizeError(f"patches: target by kind and name only ({sorted(target)})")
    ops = yaml.safe_load(patch["patch"])
    if not isinstance(ops, list):
        raise KustomizeError("patches: only JSON 6902 (a list of operations) is supported")
    matched = [r for r in resources if not isinstance(r, Generated)
               and all(r.get("kind") == target["kind"] for _ in [0] if "kind" in target)
               and all(r["metadata"]["name"] == target["name"] for _ in [0] if "name" in target)]
    if not matched:
        raise KustomizeError(f"patches: no resource matches {target}")
    for r in matched:
        for op in ops:
            json6902(r, op)


def pointer(path):
    if not path.startswith("/"):
        raise KustomizeError(f"JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def walk(doc, parts, path):
    node = doc
    for part in parts:
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise KustomizeError(f"{path}: no index {part}")
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise KustomizeError(f"{path}: no {part!r}")
    return node


def json6902(doc, op):
    kind, path = op.get("op"), op.get("path", "")
    parts = pointer(path)
    parent = walk(doc, parts[:-1], path)
    last = parts[-1]
    if kind == "test":
        if walk(doc, parts, path) != op["value"]:
            raise KustomizeError(f"testing value {path} failed")
    elif kind == "remove":
        walk(doc, parts, path)
        if isinstance(parent, list):
            del parent[int(last)]
        else:
            del parent[last]
    elif kind in ("add", "replace"):
        value = copy.deepcopy(op["value"])
        if kind == "replace":
            walk(doc, parts, path)
        if isinstance(parent, list):
            if last == "-":
                parent.append(value)
            elif kind == "add":
                if not last.isdigit() or int(last) > len(parent):
                    raise KustomizeError(f"{path}: no index {last}")
                parent.insert(int(last), value)
            else:
                parent[int(last)] = value
        elif isinstance(parent, dict):
            parent[last] = value
        else:
            raise KustomizeError(f"{path}: not a container")
    else:
        raise KustomizeError(f"JSON 6902 operation {kind!r} is not supported")


# --- images -------------------------------------------------------------------

def pod_specs(resource):
    spec = resource.get("spec") or {}
    if resource.get("kind") == "Pod":
        yield spec
    template = spec.get("template") or {}
    if "spec" in template:
        yield template["spec"]
    job = (spec.get("jobTemplate") or {}).get("spec", {}).get("template", {})
    if "spec" in job:
        yield job["spec"]


def split_image(image):
    """(name, tag-or-digest suffix) the way kustomize splits an image."""
    if "@" in image:
        name, _, digest = image.partition("@")
        return name, "@" + digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon:]
    return image, ""


def set_image(resource, image):
    unknown = set(image) - {"name", "newName", "newTag", "digest"}
    if unknown:
        raise KustomizeError(f"images: unsupported {sorted(unknown)}")
    for spec in pod_specs(resource):
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            name, suffix = split_image(container.get("image", ""))
            if name != image["name"]:
                continue
            new = image.get("newName", name)
            if "digest" in image:
                suffix = "@" + image["digest"]
            elif "newTag" in image:
                suffix = ":" + image["newTag"]
            container["image"] = new + suffix


# --- names with hashes, references ------------------------------------------

def go_json(value):
    """json.Marshal's bytes: sorted keys, no spaces, HTML characters and
    U+2028/U+2029 escaped, other non-ASCII as UTF-8."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text.encode("utf-8")


def config_map_hash(data):
    """kustomize's suffix (api/hasher/hasher.go, encodeConfigMap): the
    sha256 of the JSON of {data, kind, name}, its first 10 hex digits with
    0, 1, 3, a, e replaced by g, h, k, m, t. The name in that JSON is
    always "": kustomize looks it up as one field called "metadata/name"
    (`yaml.Lookup("metadata/name")`), finds none and uses "" (checked
    against kubectl 1.32's kustomize 5.5: `literals: [a=b]` gives
    x-4h2mbtbbt6 for any name x)."""
    digest = hashlib.sha256(go_json({"data": data, "kind": "ConfigMap", "name": ""})).hexdigest()
    return digest[:10].translate(str.maketrans("013ae", "ghkmt"))


def rename_references(resource, names):
    for spec in pod_specs(resource):
        for volume in spec.get("volumes", []):
            if "configMap" in volume and volume["configMap"].get("name") in names:
                volume["configMap"]["name"] = names[volume["configMap"]["name"]]
            for source in (volume.get("projected") or {}).get("sources", []):
                if "configMap" in source and source["configMap"].get("name") in names:
                    source["configMap"]["name"] = names[source["configMap"]["name"]]
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            for env in container.get("env", []):
                ref = (env.get("valueFrom") or {}).get("configMapKeyRef")
                if ref and ref.get("name") in names:
                    ref["name"] = names[ref["name"]]
            for env in container.get("envFrom", []):
                ref = env.get("configMapRef")
                if ref and ref.get("name") in names:
                    ref["name"] = names[ref["name"]]


def order_key(resource):
    kind = resource.get("kind", "")
    if kind in ORDER_FIRST:
        rank = ORDER_FIRST.index(kind)
    elif kind in ORDER_LAST:
        rank = len(ORDER_FIRST) + 1 + ORDER_LAST.index(kind)
    else:
        rank = len(ORDER_FIRST)
    return (rank, kind, resource.get("metadata", {}).get("namespace", ""), resource["metadata"]["name"])


def kustomize(directory):
    """The built resources of the kustomization in `directory`, as dicts."""
    resources = build(directory)
    names, out = {}, []
    for r in resources:
        if isinstance(r, Generated):
            hashed = f"{r.name}-{config_map_hash(r.data)}"
            names[r.name] = hashed
            out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": hashed},
                        "data": dict(sorted(r.data.items()))})
        else:
            out.append(r)
    for r in out:
        rename_references(r, names)
    seen = set()
    for r in out:
        key = (r.get("apiVersion"), r.get("kind"), r["metadata"].get("namespace"), r["metadata"]["name"])
        if key in seen:
            raise KustomizeError(f"may not add resource with an already registered id: {key}")
        seen.add(key)
    return sorted(out, key=order_key)


class Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data):
        return True


def _str(dumper, value):
    style = "|" if "\n" in value and not any(c in value for c in "\r\t") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


Dumper.add_representer(str, _str)


def dump(resources):
    return yaml.dump_all(resources, Dumper=Dumper, sort_keys=False, width=1 << 16,
                         default_flow_style=False, explicit_start=False)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    try:
        sys.stdout.write(dump(kustomize(sys.argv[1])))
    except KustomizeError as e:
        sys.exit(f"kustomize.py: {e}")
