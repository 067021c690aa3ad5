# The native fast path (native/src, Rust + PyO3); built by `pip install` through setuptools-rust.

class FastRouter:
    def __init__(
        self,
        stations: list[tuple[str, str, str, str | None, dict[str, float], dict[str, float], bytes, bytes]],
        ranges: dict[str, tuple[float, float]],
        names: dict[str, str],
        commands: dict[str, str],
        flags: str,
        evidence: str,
        json_keys: list[str],
        formats: list[str],
        future_tolerance_s: float,
        trace_prefix: str,
    ) -> None: ...
    def route(self, payload: bytes, topic: str, received_at: float) -> tuple[bytes, bytes] | None: ...

def float_text(value: float) -> str | None: ...
def crc16(data: bytes) -> int: ...
