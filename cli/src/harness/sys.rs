//! What the operating system tells us: CPU time, resident memory, file
//! descriptor limits and a description of the machine.

use std::time::Duration;

use serde::Serialize;

/// User plus system CPU time this process has used so far (getrusage
/// `RUSAGE_SELF`): every thread, so both ends when client and server share
/// the process.
pub fn cpu_time() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(usage) => {
            let tv = |t: nix::sys::time::TimeVal| {
                Duration::from_secs(t.tv_sec().max(0) as u64)
                    + Duration::from_micros(t.tv_usec().max(0) as u64)
            };
            tv(usage.user_time()) + tv(usage.system_time())
        }
        Err(_) => Duration::ZERO,
    }
}

/// Resident set size in bytes, from `/proc/self/statm` (0 where unavailable).
pub fn rss_bytes() -> u64 {
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |p| p as u64);
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * page)
}

/// Raises the soft open-file limit to the hard limit; returns the soft
/// limit now in force.
pub fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Err(_) => 1024,
    }
}

/// The machine and software the numbers come from.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPU model name from /proc/cpuinfo.
    pub cpu_model: String,
    /// Logical CPUs available to this process.
    pub cores: usize,
    /// Total memory in MiB (/proc/meminfo).
    pub memory_mib: u64,
    /// `uname -sr`-like kernel description (/proc/sys/kernel/osrelease).
    pub kernel: String,
    /// The 1-, 5- and 15-minute load averages when the run started.
    pub load_average: String,
}

impl Machine {
    /// Reads /proc; fields it cannot read say "unknown".
    pub fn describe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".to_string(), |(_, v)| v.trim().to_string());
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let memory_mib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
                line.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            .map_or(1, |kib| (kib / 1024).max(1));
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".into(), |s| format!("Linux {}", s.trim()));
        let load_average = std::fs::read_to_string("/proc/loadavg").map_or_else(
            |_| "unknown".into(),
            |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        );
        Machine {
            cpu_model,
            cores,
            memory_mib,
            kernel,
            load_average,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_facts_are_readable() {
        assert!(rss_bytes() > 0);
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(20) {}
        assert!(cpu_time() > Duration::ZERO);
        assert!(raise_fd_limit() >= 64);
        assert!(Machine::describe().cores >= 1);
    }
}
