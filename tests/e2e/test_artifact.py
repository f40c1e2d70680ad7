"""The filter artifact itself: built, small enough, and a proxy-wasm module."""
from conftest import WASM

MAX_BYTES = 2 * 1000 * 1000  # "under 2 MB"


def test_wasm_is_built_and_under_2_mb():
    size = WASM.stat().st_size
    print(f"palisade.wasm: {size} bytes")
    assert 100_000 < size < MAX_BYTES


def test_wasm_is_a_proxy_wasm_module():
    data = WASM.read_bytes()
    assert data[:4] == b"\0asm", "not a WebAssembly binary"
    # Envoy looks these exports up by name.
    for export in (b"proxy_abi_version_0_2_1", b"proxy_on_request_headers", b"_initialize"):
        assert export in data, export
