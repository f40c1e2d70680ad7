"""The images `make images` builds (scripts/build-images.sh): the filter as
a Wasm "compat" image and the companion FROM scratch, as OCI layouts and
docker-archives.

No container runs here (the test machines have no engine that can run one):
the layouts are read as files, through skopeo and directly, and the
companion's root filesystem is unpacked and started under chroot the way
its image config says (entrypoint, cmd, user, working directory, env).
The images are built twice from the same tree, into two directories, and
must come out with the same digests. `make e2e` builds their inputs (the
release binary and the wasm module); packaging takes seconds.
"""
import gzip
import hashlib
import io
import json
import os
import struct
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

from conftest import CLI, ROOT, WASM, free_port, stop, wait_for_200

SCRIPT = ROOT / "scripts" / "build-images.sh"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def version():
    for line in (ROOT / "Cargo.toml").read_text().splitlines():
        if line.startswith("version = "):
            return line.split('"')[1]
    raise AssertionError("no version in Cargo.toml")


VERSION = version()


def build(out, *args):
    """scripts/build-images.sh into `out`; returns {name: manifest digest}
    from the lines it prints."""
    run = subprocess.run(["bash", str(SCRIPT), "--out", str(out), *args], capture_output=True,
                         text=True, timeout=1800)
    assert run.returncode == 0, f"build-images.sh failed:\n{run.stderr[-4000:]}"
    digests = {}
    for line in run.stdout.splitlines():
        ref, digest = line.split()
        name, tag = ref.split(":")
        assert tag == VERSION and digest.startswith("sha256:") and len(digest) == 71, line
        digests[name] = digest
    assert set(digests) == {"palisade-wasm", "palisade-companion"}, run.stdout
    return digests


@pytest.fixture(scope="module")
def builds():
    """Two builds from this tree, into two directories."""
    work = Path(tempfile.mkdtemp(prefix="palisade-images-"))
    first = build(work / "a")
    second = build(work / "b")
    return work, first, second


@pytest.fixture(scope="module")
def out(builds):
    return builds[0] / "a"


class Layout:
    """An image in an OCI layout directory (one manifest in index.json)."""

    def __init__(self, path):
        self.path = Path(path)
        index = json.loads((self.path / "index.json").read_text())
        assert len(index["manifests"]) == 1, index
        self.descriptor = index["manifests"][0]
        self.digest = self.descriptor["digest"]
        self.manifest = json.loads(self.blob(self.descriptor))
        self.config = json.loads(self.blob(self.manifest["config"]))

    def blob(self, descriptor):
        """A blob's bytes, checked against the descriptor's digest and size."""
        algo, hexdigest = descriptor["digest"].split(":")
        data = (self.path / "blobs" / algo / hexdigest).read_bytes()
        assert hashlib.new(algo, data).hexdigest() == hexdigest, descriptor
        assert len(data) == descriptor["size"], descriptor
        return data

    def layers(self):
        """Each layer as an open tarfile, its uncompressed digest checked
        against the config's diff_ids."""
        diff_ids = self.config["rootfs"]["diff_ids"]
        assert len(diff_ids) == len(self.manifest["layers"])
        for descriptor, diff_id in zip(self.manifest["layers"], diff_ids):
            assert descriptor["mediaType"] == GZIP_LAYER, descriptor
            tar = gzip.decompress(self.blob(descriptor))
            assert "sha256:" + hashlib.sha256(tar).hexdigest() == diff_id
            yield tarfile.open(fileobj=io.BytesIO(tar))


def skopeo_inspect(ref, *args):
    run = subprocess.run(["skopeo", "inspect", *args, ref], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def docker_archive(path):
    """A docker-archive's manifest.json entry and its layers' tar bytes."""
    with tarfile.open(path) as archive:
        (entry,) = json.load(archive.extractfile("manifest.json"))
        return entry, [archive.extractfile(layer).read() for layer in entry["Layers"]]


# --- the filter image -------------------------------------------------------

def test_wasm_image_is_a_compat_image_of_the_built_module(out):
    image = Layout(out / "palisade-wasm")
    assert image.manifest["mediaType"] == OCI_MANIFEST
    assert image.manifest.get("annotations", {}).get("module.wasm.image/variant") == "compat"
    # Istio's and Envoy Gateway's fetchers want exactly one layer, gzip.
    (layer,) = list(image.layers())
    files = [m for m in layer.getmembers() if not m.isdir()]
    assert [m.name.lstrip("./") for m in files] == ["plugin.wasm"], layer.getnames()
    assert files[0].isfile()
    assert layer.extractfile(files[0]).read() == WASM.read_bytes(), \
        "/plugin.wasm differs from target/wasm32-wasip1/release/palisade.wasm"
    assert image.config["os"] == "linux" and image.config["architecture"] == "amd64"


def test_skopeo_reads_the_layouts_with_the_printed_digests(builds):
    work, first, _ = builds
    for name, digest in first.items():
        info = skopeo_inspect(f"oci:{work / 'a' / name}:{VERSION}")
        assert info["Digest"] == digest, name
    wasm = skopeo_inspect(f"oci:{work / 'a' / 'palisade-wasm'}:{VERSION}")
    assert len(wasm["Layers"]) == 1


def test_docker_archives_hold_the_same_images(out):
    entry, layers = docker_archive(out / "palisade-wasm.tar")
    assert entry["RepoTags"] == [f"docker.io/library/palisade-wasm:{VERSION}"]  # `docker load`: palisade-wasm:VERSION
    assert len(layers) == 1
    with tarfile.open(fileobj=io.BytesIO(layers[0])) as layer:
        assert layer.extractfile("plugin.wasm").read() == WASM.read_bytes()
    entry, layers = docker_archive(out / "palisade-companion.tar")
    assert entry["RepoTags"] == [f"docker.io/library/palisade-companion:{VERSION}"]  # `docker load`: palisade-companion:VERSION
    # The same layers as the OCI layout, uncompressed.
    image = Layout(out / "palisade-companion")
    assert ["sha256:" + hashlib.sha256(t).hexdigest() for t in layers] \
        == image.config["rootfs"]["diff_ids"]
    skopeo_inspect(f"docker-archive:{out / 'palisade-companion.tar'}")


# --- the companion image ----------------------------------------------------

@pytest.fixture(scope="module")
def companion_image(out):
    return Layout(out / "palisade-companion")


@pytest.fixture(scope="module")
def rootfs(companion_image):
    """The companion's root filesystem, unpacked with owners and modes
    (owners only when the tests run as root)."""
    root = Path(tempfile.mkdtemp(prefix="palisade-rootfs-"))
    root.chmod(0o755)  # it becomes "/": mkdtemp's 0700 would lock the user out
    for layer in companion_image.layers():
        for member in layer.getmembers():
            assert not Path(member.name).name.startswith(".wh."), "whiteout in a scratch image"
            assert not member.name.startswith("/") and ".." not in Path(member.name).parts, member.name
        # Modes as they are (tarfile's "tar" filter would clear /tmp's sticky bit).
        kwargs = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
        layer.extractall(root, numeric_owner=True, **kwargs)
    return root


def test_companion_config_runs_palisade_serve_as_non_root(companion_image):
    config = companion_image.config["config"]
    assert config["Entrypoint"] == ["/usr/local/bin/palisade"]
    assert config["Cmd"] == ["serve", "--config", "/etc/palisade/policy.yaml"]
    uid, _, gid = config["User"].partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0, config["User"]
    assert config["WorkingDir"] == "/palisade"
    assert set(config["ExposedPorts"]) == {"8181/tcp", "8182/tcp"}
    # Tells a pod spec's runAsNonRoot that the user is not root.
    assert companion_image.config["os"] == "linux"


def elf_interpreter(path):
    """The PT_INTERP of a 64-bit little-endian ELF file, or None (static)."""
    data = Path(path).read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "not an ELF64 LE file"
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 3:  # PT_INTERP
            return data[p_offset:p_offset + p_filesz].rstrip(b"\0").decode()
    return None


def in_rootfs(rootfs, config, argv, **kwargs):
    """Runs `argv` under chroot into `rootfs`, as the image config's user,
    in its working directory, with its env (nothing from the host's)."""
    uid, gid = (int(n) for n in config["User"].split(":"))

    def enter():
        os.chroot(rootfs)
        os.chdir(config["WorkingDir"])
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    env = dict(e.split("=", 1) for e in config.get("Env", []))
    return subprocess.Popen(argv, env=env, preexec_fn=enter, **kwargs)


def test_companion_binary_is_the_release_binary_with_its_libraries(rootfs):
    binary = rootfs / "usr" / "local" / "bin" / "palisade"
    assert binary.read_bytes() == CLI.read_bytes(), "not target/release/palisade"
    interpreter = elf_interpreter(binary)
    if interpreter is not None:
        # Every shared object ldd resolves on the build machine is in the
        # image at the same path, as a file with the same bytes.
        ldd = subprocess.run(["ldd", str(CLI)], capture_output=True, text=True, check=True).stdout
        needed = {line.split()[2] for line in ldd.splitlines() if " => /" in line} | {interpreter}
        for lib in needed:
            inside = rootfs / lib.lstrip("/")
            assert inside.is_file() and not inside.is_symlink(), lib
            assert inside.read_bytes() == Path(lib).resolve().read_bytes(), lib
    run = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0 and run.stdout.strip() == f"palisade {VERSION}", run


@pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root")
def test_companion_binary_runs_with_only_the_image(rootfs, companion_image):
    """Nothing of the host's file system is reachable under chroot: the
    binary runs from the image's files alone."""
    config = companion_image.config["config"]
    process = in_rootfs(rootfs, config, config["Entrypoint"] + ["serve", "--help"],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0 and "--config" in output, output


def test_companion_image_holds_what_serve_reads(rootfs, companion_image):
    datasets = rootfs / "palisade" / "datasets"
    for path in ("fonts/DejaVuSans-Bold.ttf", "altcha/altcha.js", "charts/fruit.csv",
                 "models/request.json", "models/interaction.json", "models/train-request.jsonl",
                 "models/holdout-request.jsonl", "networks/tor.txt"):
        assert (datasets / path).read_bytes() == (ROOT / "datasets" / path).read_bytes(), path
    for folder in ("images", "audio"):
        assert sorted(p.name for p in (datasets / folder).iterdir()) \
            == sorted(p.name for p in (ROOT / "datasets" / folder).iterdir()), folder
    # The writable places, and nothing else writable by the user.
    uid = int(companion_image.config["config"]["User"].split(":")[0])
    data = rootfs / "palisade" / "palisade-data"
    assert data.is_dir() and oct(data.stat().st_mode & 0o7777) == "0o755"
    assert oct((rootfs / "tmp").stat().st_mode & 0o7777) == "0o1777"
    if os.geteuid() == 0:
        assert data.stat().st_uid == uid
        for path in rootfs.rglob("*"):
            if path != data and not path.is_relative_to(data) and not path.is_symlink():
                assert path.stat().st_uid == 0, path


@pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root")
def test_companion_serves_from_its_root_filesystem(rootfs, companion_image, demo_policy):
    """The image's entrypoint and cmd, under chroot into the unpacked root
    filesystem, as its user, in its working directory, with its env: the
    binary, its libraries, the datasets and the writable data directory are
    all the companion needs to start (it loads every dataset at startup) and
    to answer /healthz (its SQLite store in palisade-data). The policy is
    the demo's with the image's default paths, where a pod mounts it."""
    config = companion_image.config["config"]
    public, internal = free_port(), free_port()
    policy = json.loads(json.dumps(demo_policy))
    policy["companion"].update({"public": f"127.0.0.1:{public}", "internal": f"127.0.0.1:{internal}",
                                "data_dir": "palisade-data", "datasets": "datasets"})
    (rootfs / "etc" / "palisade" / "policy.yaml").write_text(json.dumps(policy))
    log_path = rootfs.parent / (rootfs.name + ".log")
    with open(log_path, "w") as log:
        process = in_rootfs(rootfs, config, config["Entrypoint"] + config["Cmd"], stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        wait_for_200(process, f"http://127.0.0.1:{internal}/healthz", 60, "companion",
                     log_path.read_text)
    finally:
        stop(process)
    assert list((rootfs / "palisade" / "palisade-data").iterdir()), "no store in palisade-data"


def test_rebuilds_give_identical_digests(builds):
    work, first, second = builds
    assert first == second
    for name in first:
        a, b = work / "a" / name, work / "b" / name
        assert (a / "index.json").read_bytes() == (b / "index.json").read_bytes(), name
        assert sorted(p.name for p in (a / "blobs" / "sha256").iterdir()) \
            == sorted(p.name for p in (b / "blobs" / "sha256").iterdir()), name
        assert hashlib.sha256((work / "a" / f"{name}.tar").read_bytes()).hexdigest() \
            == hashlib.sha256((work / "b" / f"{name}.tar").read_bytes()).hexdigest(), name
    print(" ".join(f"{name} {digest}" for name, digest in first.items()))
