//! The scheduling policy a bulk transfer's threads run under (`--sched`).
//!
//! A pull is bulk work: what matters is how many bytes it moves per second of
//! CPU, not how soon after a packet arrives it runs. Under Linux's ordinary policy
//! every wakeup of a receive thread may preempt the task on that CPU; when the
//! CPUs are busy (several pulls, or an exposer and its pullers on one machine)
//! that is a context switch per burst of packets, on both sides.
//! `SCHED_BATCH` gives the thread the same share of the CPU at the same nice
//! value, and only takes away that wakeup preemption. An unprivileged process may
//! choose it, and every thread started afterwards inherits it.

/// The policy `--sched` names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Sched {
    /// `SCHED_BATCH`: the same CPU share, no preemption on wakeup.
    #[default]
    Batch,
    /// The policy the process started with, left as it is (the ordinary
    /// `SCHED_OTHER`, unless it was started under another).
    Normal,
}

impl Sched {
    /// Puts the calling thread under this policy, and so every thread it starts
    /// from now on. `Normal` changes nothing. Where the system has no such policy
    /// or refuses it, the thread keeps its own and the reason comes back; a pull
    /// goes on either way.
    pub fn apply(self) -> std::io::Result<()> {
        match self {
            Sched::Normal => Ok(()),
            Sched::Batch => batch(),
        }
    }
}

fn batch() -> std::io::Result<()> {
    set_policy(Policy::Batch)
}

/// Puts the calling thread under `SCHED_IDLE`: it runs only when a CPU has
/// nothing else to run, for work that may wait (the exposer moving its store onto
/// huge pages). Where the system refuses, the thread keeps its policy and the
/// reason comes back.
pub fn idle() -> std::io::Result<()> {
    set_policy(Policy::Idle)
}

/// The Linux policies the calls above choose.
#[derive(Clone, Copy)]
enum Policy {
    Batch,
    Idle,
}

#[cfg(target_os = "linux")]
fn set_policy(policy: Policy) -> std::io::Result<()> {
    let policy = match policy {
        Policy::Batch => libc::SCHED_BATCH,
        Policy::Idle => libc::SCHED_IDLE,
    };
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param for the call's duration; pid 0 is the
    // calling thread.
    if unsafe { libc::sched_setscheduler(0, policy, &param) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn set_policy(policy: Policy) -> std::io::Result<()> {
    let name = match policy {
        Policy::Batch => "SCHED_BATCH",
        Policy::Idle => "SCHED_IDLE",
    };
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        format!("{name} is a Linux scheduling policy"),
    ))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn policy() -> i32 {
        // SAFETY: no arguments but the calling thread's pid 0.
        unsafe { libc::sched_getscheduler(0) }
    }

    #[test]
    fn batch_holds_for_the_thread_and_the_threads_it_starts() {
        // A thread of its own, so the test harness's threads keep their policy.
        std::thread::spawn(|| {
            Sched::Batch
                .apply()
                .expect("an unprivileged thread may choose SCHED_BATCH");
            assert_eq!(policy(), libc::SCHED_BATCH);
            let child = std::thread::spawn(policy).join().expect("child");
            assert_eq!(
                child,
                libc::SCHED_BATCH,
                "a thread started later inherits it"
            );
        })
        .join()
        .expect("the test thread");
    }

    #[test]
    fn idle_holds_for_the_thread_only() {
        std::thread::spawn(|| {
            let before = policy();
            std::thread::spawn(|| {
                idle().expect("an unprivileged thread may choose SCHED_IDLE");
                assert_eq!(policy(), libc::SCHED_IDLE);
            })
            .join()
            .expect("the idle thread");
            assert_eq!(policy(), before, "the thread that started it keeps its own");
        })
        .join()
        .expect("the test thread");
    }

    #[test]
    fn normal_changes_nothing() {
        std::thread::spawn(|| {
            let before = policy();
            Sched::Normal.apply().expect("nothing to refuse");
            assert_eq!(policy(), before);
        })
        .join()
        .expect("the test thread");
    }
}
