//! riverguard's plume kernel (`playbooks._plume`).
//!
//! `playbooks.transport.simulate` marches a plume along the channel step by step: exact advection
//! with dilution, Crank–Nicolson dispersion, decay, on a window of cells that follows the plume.
//! In numpy each step is a dozen calls on arrays of a few hundred cells, so the call overhead is
//! the cost (a playbook runs the march three times for hundreds of steps each). This is the same
//! march in one call. The numpy version stays the definition: tests hold the two to the same
//! curves (`tests/unit/test_playbook_kernel.py`). The one difference is the tridiagonal solve —
//! LAPACK's dgtsv pivots, the Thomas algorithm here does not; the system is diagonally dominant
//! (V/dt plus the conductances on the diagonal), where both are stable and agree to rounding.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// The march's constants, from `playbooks/transport.py` (one source).
struct Limits {
    margin: usize,
    negligible: f64,
    check_every: usize,
    grow: usize,
    trim_every: usize,
    edge_fraction: f64,
}

/// What `march` returns: the probe rows, their count, and the snapshots (step, concentrations).
type Marched<'py> = (Bound<'py, PyBytes>, usize, Vec<(usize, Bound<'py, PyBytes>)>);

/// A grid's coefficients (`playbooks.transport.Grid`).
struct Grid {
    volume: Vec<f64>,
    carry: Vec<f64>,
    half: Vec<f64>,
    diag: Vec<f64>,
    inverse_volume: Vec<f64>,
    decayed_volume: Vec<f64>,
    dt: f64,
}

/// Work space reused by every step.
#[derive(Default)]
struct Scratch {
    rhs: Vec<f64>,
    diag: Vec<f64>,
    upper: Vec<f64>,
}

impl Grid {
    /// `Grid.step`: one step of the load in cells `lo..hi`, in place; the window afterwards.
    fn step(
        &self,
        mass: &mut [f64],
        lo: usize,
        hi: usize,
        trim: bool,
        limits: &Limits,
        s: &mut Scratch,
    ) -> (usize, usize) {
        let n = self.volume.len();
        let new_hi = n.min(hi + 1);
        for i in (lo + 1..new_hi).rev() {
            mass[i] = mass[i - 1] * self.carry[i - 1];
        }
        mass[lo] = 0.0;
        let a = (lo + 1).saturating_sub(limits.grow);
        let b = n.min(new_hi + limits.grow);
        let m = b - a;
        s.rhs.clear();
        s.rhs.extend((a..b).map(|i| mass[i] / self.dt));
        for i in 0..m.saturating_sub(1) {
            let flux = self.half[a + i]
                * (mass[a + i + 1] * self.inverse_volume[a + i + 1] - mass[a + i] * self.inverse_volume[a + i]);
            s.rhs[i] += flux;
            s.rhs[i + 1] -= flux;
        }
        s.diag.clear();
        s.diag.extend_from_slice(&self.diag[a..b]);
        if a > 0 {
            s.diag[0] -= self.half[a - 1];
        }
        if b < n {
            s.diag[m - 1] -= self.half[b - 1];
        }
        // Thomas algorithm on (−half, diag, −half): forward elimination, then back substitution.
        s.upper.clear();
        s.upper.resize(m, 0.0);
        let mut pivot = s.diag[0];
        s.rhs[0] /= pivot;
        for i in 1..m {
            let coupling = -self.half[a + i - 1];
            s.upper[i - 1] = coupling / pivot;
            pivot = s.diag[i] - coupling * s.upper[i - 1];
            s.rhs[i] = (s.rhs[i] - coupling * s.rhs[i - 1]) / pivot;
        }
        for i in (0..m.saturating_sub(1)).rev() {
            s.rhs[i] -= s.upper[i] * s.rhs[i + 1];
        }
        for i in 0..m {
            mass[a + i] = s.rhs[i] * self.decayed_volume[a + i];
        }
        if !trim {
            return (a, b);
        }
        let top = s.rhs.iter().fold(0.0_f64, |top, x| top.max(x.abs()));
        let level = limits.negligible * top;
        let first = s.rhs.iter().position(|x| x.abs() > level);
        let last = s.rhs.iter().rposition(|x| x.abs() > level);
        match (first, last) {
            (Some(first), Some(last)) => (
                (a + first).saturating_sub(limits.margin),
                n.min(a + last + 1 + limits.margin),
            ),
            _ => (a, a),
        }
    }
}

fn floats(bytes: &[u8], name: &str) -> PyResult<Vec<f64>> {
    if !bytes.len().is_multiple_of(8) {
        return Err(PyValueError::new_err(format!(
            "{name}: {} bytes is not a whole number of float64",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect())
}

fn to_bytes(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// `playbooks.transport.simulate` (the march, after its set-up): float64 arrays as little-endian
/// bytes. Returns the probe rows (one per step, row 0 the initial state), their count, and the
/// concentrations of every cell at the snapshot steps.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (volume, carry, half, diag, inverse_volume, decayed_volume, dt, mass, below, weight, max_steps, snapshot_steps, last_snapshot, limits))]
fn march<'py>(
    py: Python<'py>,
    volume: &[u8],
    carry: &[u8],
    half: &[u8],
    diag: &[u8],
    inverse_volume: &[u8],
    decayed_volume: &[u8],
    dt: f64,
    mass: &[u8],
    below: Vec<usize>,
    weight: Vec<f64>,
    max_steps: usize,
    snapshot_steps: Vec<usize>,
    last_snapshot: usize,
    limits: (usize, f64, usize, usize, usize, f64),
) -> PyResult<Marched<'py>> {
    let grid = Grid {
        volume: floats(volume, "volume")?,
        carry: floats(carry, "carry")?,
        half: floats(half, "half")?,
        diag: floats(diag, "diag")?,
        inverse_volume: floats(inverse_volume, "inverse_volume")?,
        decayed_volume: floats(decayed_volume, "decayed_volume")?,
        dt,
    };
    let limits = Limits {
        margin: limits.0,
        negligible: limits.1,
        check_every: limits.2.max(1),
        grow: limits.3,
        trim_every: limits.4.max(1),
        edge_fraction: limits.5,
    };
    let n = grid.volume.len();
    let mut mass = floats(mass, "mass")?;
    let sizes_fit = n >= 2
        && mass.len() == n
        && grid.diag.len() == n
        && grid.inverse_volume.len() == n
        && grid.decayed_volume.len() == n
        && grid.carry.len() == n - 1
        && grid.half.len() == n - 1
        && below.len() == weight.len()
        && below.iter().all(|&b| b + 1 < n);
    if !sizes_fit {
        return Err(PyValueError::new_err(
            "march: the grid's arrays, the load and the probes do not fit together",
        ));
    }
    let probes = below.len();
    let mut rows: Vec<f64> = Vec::with_capacity((max_steps.min(4096) + 1) * probes);
    let mut highest = vec![0.0_f64; probes];
    let mut snapshots = Vec::new();
    let mut scratch = Scratch::default();
    let (mut lo, mut hi) = match (
        mass.iter().position(|&x| x != 0.0),
        mass.iter().rposition(|&x| x != 0.0),
    ) {
        (Some(first), Some(last)) => (first.saturating_sub(limits.margin), n.min(last + 1 + limits.margin)),
        _ => (0, 0),
    };
    let mut row = vec![0.0_f64; probes];
    let mut k = 0;
    loop {
        if k > 0 && hi > lo {
            (lo, hi) = grid.step(&mut mass, lo, hi, k % limits.trim_every == 0, &limits, &mut scratch);
        }
        for (j, (&b, &w)) in below.iter().zip(&weight).enumerate() {
            row[j] = mass[b] / grid.volume[b] * (1.0 - w) + mass[b + 1] / grid.volume[b + 1] * w;
            highest[j] = highest[j].max(row[j]);
        }
        rows.extend_from_slice(&row);
        if snapshot_steps.contains(&k) {
            let concentrations: Vec<f64> = mass.iter().zip(&grid.volume).map(|(m, v)| m / v).collect();
            snapshots.push((k, PyBytes::new(py, &to_bytes(&concentrations))));
        }
        if k >= max_steps {
            break;
        }
        let passed = || {
            highest
                .iter()
                .zip(&row)
                .all(|(&top, &now)| top > limits.negligible && now < limits.edge_fraction * top)
        };
        if k % limits.check_every == 0 && k >= last_snapshot && passed() {
            break;
        }
        k += 1;
    }
    Ok((PyBytes::new(py, &to_bytes(&rows)), k + 1, snapshots))
}

#[pymodule]
fn _plume(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(march, module)?)?;
    Ok(())
}
