# The compiled plume march (native/plume, Rust + PyO3); built by `pip install` through setuptools-rust.

def march(
    volume: bytes,
    carry: bytes,
    half: bytes,
    diag: bytes,
    inverse_volume: bytes,
    decayed_volume: bytes,
    dt: float,
    mass: bytes,
    below: list[int],
    weight: list[float],
    max_steps: int,
    snapshot_steps: list[int],
    last_snapshot: int,
    limits: tuple[int, float, int, int, int, float],
) -> tuple[bytes, int, list[tuple[int, bytes]]]: ...
