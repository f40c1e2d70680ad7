#!/usr/bin/env python3
"""Replays what Istio makes of envoy/istio/wasmplugin.yaml, as a bootstrap
for a plain Envoy: no cluster and no istiod needed, and the same filter
configuration reaches the module.

What istiod does with a WasmPlugin (istio/istio, pilot/pkg/model/
extensions.go at 0dd8807e59df04b91637640c45a59e65d9750d7c,
`convertToWasmPluginWrapper` and `buildVMConfig`, and pilot/pkg/networking/
core/extension/wasmplugin.go, `toEnvoyHTTPFilter`), which this follows:

* `pluginConfig` (a google.protobuf.Struct) is marshalled to JSON with
  `protomarshal.ToJSON` (the legacy golang/protobuf jsonpb Marshaler, no
  indent) and wrapped in a `google.protobuf.StringValue`: that string is
  the plugin configuration Palisade parses. A Struct holds every number as
  a double, and object keys come out sorted; `struct_json` below does the
  same (integral doubles print without a fraction, as Go's encoder does).
* The Wasm filter's PluginConfig: `name` NAMESPACE.NAME, `root_id`
  `pluginName`, `vm_config` with runtime `envoy.wasm.runtime.v8`, no
  `vm_id`, `environment_variables.key_values` with the image pull policy
  and resource version, and `host_env_keys` = the `vmConfig.env` entries
  with `valueFrom: HOST` (INLINE ones become key_values). `failStrategy`
  maps to `failure_policy` (FAIL_CLOSE -> FAIL_CLOSED). Nothing sets
  `allow_on_headers_stop_iteration`: it stays false.
* The listener's HTTP filter is named NAMESPACE.NAME and delivered over ECDS
  (`config_discovery`, type URLs Wasm and RBAC, the RBAC one for Istio's
  deny-all stand-in when a module cannot be fetched). Here the ECDS source
  is a file instead of istiod's ADS stream, holding the same
  TypedExtensionConfig.
* The module URL (`oci://`, `http://`) is fetched by istio-agent, which
  rewrites the remote data source into a local file before Envoy sees it
  (istio/istio pkg/wasm): here `--wasm` names that local file. For an
  http(s) URL the WasmPlugin's `sha256` is checked against it, as the agent
  would.
* Gateway listeners: `use_remote_address: true`, `xff_num_trusted_hops`
  from `numTrustedProxies`, and Istio's default path normalisation
  (`normalize_path`, `merge_slashes`).
* Clusters are named `outbound|PORT||HOST` (pilot's BuildSubsetKey); each
  `--cluster NAME=127.0.0.1:PORT` stands in for one service.

Usage:
  istio_config.py WASMPLUGIN.yaml --wasm FILE --listen PORT --admin PORT \\
      --ecds OUT_ECDS.yaml --route PREFIX=CLUSTER ... --cluster NAME=HOST:PORT ... \\
      [--trusted-proxies N] > bootstrap.yaml
The first --route is tried first; give "/" last for the app.
"""
import argparse
import hashlib
import json
import math
import sys

import yaml

WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
RBAC_TYPE = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
FAILURE_POLICY = {"FAIL_CLOSE": "FAIL_CLOSED", "FAIL_OPEN": "FAIL_OPEN", "FAIL_RELOAD": "FAIL_RELOAD"}


class TranslationError(Exception):
    pass


def struct_json(value):
    """`value` as a google.protobuf.Struct marshals to JSON (compact, keys
    sorted, every number a double)."""
    return json.dumps(_as_struct(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _as_struct(value):
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        number = float(value)
        if not math.isfinite(number):
            raise TranslationError(f"a Struct cannot hold {value!r}")
        # Go prints an integral double without a fraction (up to 1e21).
        return int(number) if number.is_integer() and abs(number) < 1e21 else number
    if isinstance(value, dict):
        return {str(k): _as_struct(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_struct(v) for v in value]
    # YAML timestamps and the like: Kubernetes stores the resource as JSON,
    # where they are strings.
    return str(value)


def wasm_plugin(path):
    """The first WasmPlugin in the YAML file at `path`."""
    with open(path) as f:
        for doc in yaml.safe_load_all(f):
            if isinstance(doc, dict) and doc.get("kind") == "WasmPlugin":
                return doc
    raise TranslationError(f"{path}: no WasmPlugin in the file")


def plugin_config(plugin, wasm_file, resource_version="1"):
    """The TypedExtensionConfig istiod sends over ECDS for `plugin`, with the
    module at `wasm_file` (as istio-agent leaves it)."""
    meta, spec = plugin["metadata"], plugin["spec"]
    name = f"{meta.get('namespace', 'default')}.{meta['name']}"
    # For an http(s):// URL `sha256` is the module's own digest, which the
    # agent checks once it has the file; for oci:// it is the image
    # manifest's, checked against the registry, which is not here.
    sha = spec.get("sha256")
    if sha and not spec.get("url", "").startswith("oci://"):
        with open(wasm_file, "rb") as f:
            got = hashlib.sha256(f.read()).hexdigest()
        if got != sha:
            raise TranslationError(f"spec.sha256 is {sha}, the module's is {got}: istio-agent would refuse it")
    key_values = {"ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION": resource_version}
    if spec.get("imagePullPolicy"):
        key_values["ISTIO_META_WASM_IMAGE_PULL_POLICY"] = spec["imagePullPolicy"]
    host_env_keys = []
    for env in (spec.get("vmConfig") or {}).get("env") or []:
        if env.get("valueFrom", "INLINE") == "HOST":
            host_env_keys.append(env["name"])
        else:
            key_values[env["name"]] = env.get("value", "")
    config = {
        "name": name,
        "root_id": spec.get("pluginName", ""),
        "vm_config": {
            "runtime": "envoy.wasm.runtime.v8",
            "code": {"local": {"filename": wasm_file}},
            "environment_variables": {"key_values": key_values, "host_env_keys": host_env_keys},
        },
        "failure_policy": FAILURE_POLICY[spec.get("failStrategy", "FAIL_CLOSE")],
    }
    if spec.get("pluginConfig"):
        config["configuration"] = {
            "@type": "type.googleapis.com/google.protobuf.StringValue",
            "value": struct_json(spec["pluginConfig"]),
        }
    return name, {
        "name": name,
        "typed_config": {"@type": WASM_TYPE, "config": config},
    }


def bootstrap(filter_name, ecds_path, listen, admin, routes, clusters, trusted_proxies):
    """The gateway's Envoy: one listener with the plugin (over ECDS from
    `ecds_path`) before the router, and the named clusters."""
    route_entries = [
        {"match": {"prefix": prefix}, "route": {"cluster": cluster, "timeout": "30s"}}
        for prefix, cluster in routes
    ]
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": f"outbound_0.0.0.0_{listen}",
        "use_remote_address": True,
        "xff_num_trusted_hops": trusted_proxies,
        "normalize_path": True,
        "merge_slashes": True,
        "route_config": {
            "name": f"http.{listen}",
            "virtual_hosts": [{"name": "gateway", "domains": ["*"], "routes": route_entries}],
        },
        "http_filters": [
            {
                "name": filter_name,
                "config_discovery": {
                    "config_source": {
                        "path_config_source": {"path": ecds_path},
                        "resource_api_version": "V3",
                    },
                    "type_urls": [WASM_TYPE, RBAC_TYPE],
                },
            },
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
            },
        ],
    }
    return {
        # An ECDS subscription needs a node; these are a gateway's, in the
        # form istio-agent gives (TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.DOMAIN).
        "node": {
            "id": "router~127.0.0.1~istio-ingressgateway-0.istio-system~istio-system.svc.cluster.local",
            "cluster": "istio-ingressgateway.istio-system",
        },
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "static_resources": {
            "listeners": [{
                "name": f"0.0.0.0_{listen}",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen}},
                "filter_chains": [{"filters": [
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm},
                ]}],
            }],
            "clusters": [
                {
                    "name": name,
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{
                        "endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}},
                    }]}]},
                }
                for name, (host, port) in clusters
            ],
        },
    }


def ecds_file(extension):
    """A file ECDS subscription's content: a DiscoveryResponse."""
    return {"resources": [{
        "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
        **extension,
    }]}


def _pair(text, what):
    key, sep, value = text.rpartition("=")
    if not sep or not key or not value:
        raise argparse.ArgumentTypeError(f"{what} must be KEY=VALUE, not {text!r}")
    return key, value


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wasmplugin")
    parser.add_argument("--wasm", required=True, help="the module, as istio-agent stores it")
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--admin", type=int, required=True)
    parser.add_argument("--ecds", required=True, help="where to write the ECDS file")
    parser.add_argument("--route", action="append", default=[], type=lambda t: _pair(t, "--route"))
    parser.add_argument("--cluster", action="append", default=[], type=lambda t: _pair(t, "--cluster"))
    parser.add_argument("--trusted-proxies", type=int, default=0,
                        help="meshConfig.defaultConfig.gatewayTopology.numTrustedProxies")
    args = parser.parse_args(argv)
    try:
        name, extension = plugin_config(wasm_plugin(args.wasmplugin), args.wasm)
    except (TranslationError, KeyError, OSError) as e:
        sys.exit(f"istio_config.py: {e}")
    clusters = []
    for cname, address in args.cluster:
        host, _, port = address.rpartition(":")
        clusters.append((cname, (host, int(port))))
    with open(args.ecds, "w") as f:
        json.dump(ecds_file(extension), f, indent=1)
    json.dump(bootstrap(name, args.ecds, args.listen, args.admin, args.route, clusters,
                        args.trusted_proxies), sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main(sys.argv[1:])
