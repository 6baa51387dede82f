//! How much memory the machine has, to refuse a network that cannot fit before allocating it.

use crate::error::{Error, Result};

/// Refuses, before allocating anything, a network whose parameters cannot fit in memory.
pub(crate) fn check_parameter_count(sizes: &[usize], bytes_per_value: usize) -> Result<()> {
    let mut total: u128 = 0;
    for pair in sizes.windows(2) {
        total += pair[0] as u128 * pair[1] as u128 + pair[1] as u128;
    }
    // Weights and their gradients.
    let bytes = total * 2 * bytes_per_value as u128;
    let gib = |b: u128| b as f64 / (1u64 << 30) as f64;
    if bytes > isize::MAX as u128 {
        return Err(Error::Memory(format!(
            "sizes {sizes:?} need {total} parameters, more than the address space"
        )));
    }
    // Refuse before allocating: with overcommit, an allocation larger than the machine may
    // "succeed" and the process be killed later, while the weights are drawn.
    if let Some(ram) = physical_memory_bytes() {
        if bytes > ram as u128 {
            return Err(Error::Memory(format!(
                "sizes {sizes:?} need {total} parameters ({:.1} GiB with their gradients), more \
                 than this machine's {:.1} GiB of memory",
                gib(bytes),
                gib(ram as u128)
            )));
        }
    }
    Ok(())
}

/// Total physical memory, from /proc/meminfo where there is one.
fn physical_memory_bytes() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}
