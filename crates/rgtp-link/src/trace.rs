//! Trace-driven bottlenecks in the Mahimahi link-trace format.
//!
//! A trace is text, one non-negative integer per line: a time in milliseconds,
//! counted from the start of the trace, at which the link may send 1500 bytes
//! (one delivery opportunity). A time repeated on several lines gives several
//! opportunities in that millisecond. The trace repeats when it ends, with the
//! last time as its period: the single line `1` is an opportunity every
//! millisecond, 1500 B/ms, 12 Mbit/s.
//!
//! Bytes are accounted individually: one opportunity may finish several small
//! datagrams, and a datagram longer than 1500 bytes needs as many opportunities
//! as it takes. An opportunity with nothing queued is lost, and so are the
//! bytes it has left once the queue runs dry.
//!
//! The trace starts when the first datagram reaches the link: that instant is
//! the trace's time zero.

use std::collections::VecDeque;
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use redgiant_base::Instant;

/// Bytes one delivery opportunity may carry.
pub const OPPORTUNITY_BYTES: u32 = 1500;

/// Largest trace accepted, in bytes of text (a day at 100 Mbit/s is about 50 MB).
pub const MAX_TRACE_BYTES: u64 = 64 << 20;

/// Largest timestamp accepted, in milliseconds (about 34 years).
pub const MAX_TIMESTAMP_MS: u64 = 1 << 40;

/// Why a trace was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceError {
    /// The 1-based line at fault, when one is.
    pub line: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(n) => write!(f, "trace line {n}: {}", self.reason),
            None => write!(f, "trace: {}", self.reason),
        }
    }
}

impl std::error::Error for TraceError {}

fn refuse(line: Option<usize>, reason: impl Into<String>) -> TraceError {
    TraceError {
        line,
        reason: reason.into(),
    }
}

/// A parsed delivery trace: the opportunity times of one period, in milliseconds.
///
/// Cheap to clone (the times are shared).
#[derive(Clone, PartialEq, Eq)]
pub struct DeliveryTrace {
    ms: Arc<[u64]>,
}

impl fmt::Debug for DeliveryTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryTrace")
            .field("opportunities", &self.ms.len())
            .field("period_ms", &self.period_ms())
            .finish()
    }
}

impl DeliveryTrace {
    /// Parses trace text. Blank lines are skipped; anything else must be a
    /// decimal integer no smaller than the one before it. The trace must hold
    /// at least one opportunity and end after time zero.
    pub fn parse(text: &str) -> Result<Self, TraceError> {
        if text.len() as u64 > MAX_TRACE_BYTES {
            return Err(refuse(
                None,
                format!(
                    "{} bytes exceeds the limit of {MAX_TRACE_BYTES}",
                    text.len()
                ),
            ));
        }
        let mut ms = Vec::new();
        let mut last_line = 0;
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let t = line.trim();
            if t.is_empty() {
                continue;
            }
            if !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(refuse(
                    Some(n),
                    format!("`{t}` is not a non-negative whole number of milliseconds"),
                ));
            }
            let v: u64 = t
                .parse()
                .ok()
                .filter(|&v| v <= MAX_TIMESTAMP_MS)
                .ok_or_else(|| {
                    refuse(
                        Some(n),
                        format!("{t} ms exceeds the largest timestamp {MAX_TIMESTAMP_MS}"),
                    )
                })?;
            if let Some(&prev) = ms.last() {
                if v < prev {
                    return Err(refuse(
                        Some(n),
                        format!("{v} ms comes after {prev} ms: timestamps must not decrease"),
                    ));
                }
            }
            ms.push(v);
            last_line = n;
        }
        match ms.last() {
            None => Err(refuse(None, "no delivery opportunity (the trace is empty)")),
            Some(0) => Err(refuse(
                Some(last_line),
                "the last timestamp is the period and must be positive",
            )),
            Some(_) => Ok(DeliveryTrace { ms: ms.into() }),
        }
    }

    /// Reads and parses a trace file, refusing one larger than [`MAX_TRACE_BYTES`].
    pub fn from_file(path: &Path) -> Result<Self, TraceError> {
        let f = std::fs::File::open(path)
            .map_err(|e| refuse(None, format!("{}: {e}", path.display())))?;
        let mut text = String::new();
        f.take(MAX_TRACE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| refuse(None, format!("{}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| TraceError {
            line: e.line,
            reason: format!("{}: {}", path.display(), e.reason),
        })
    }

    /// Opportunities in one period.
    pub fn opportunities(&self) -> usize {
        self.ms.len()
    }

    /// The period in milliseconds (the last timestamp).
    pub fn period_ms(&self) -> u64 {
        self.ms.last().copied().unwrap_or(1)
    }

    /// The mean rate over a period, in bytes per second.
    pub fn mean_rate(&self) -> f64 {
        self.ms.len() as f64 * f64::from(OPPORTUNITY_BYTES) * 1000.0 / self.period_ms() as f64
    }

    /// When opportunity `n` (counted over all repetitions) comes, in microseconds.
    fn at_us(&self, n: u64) -> u64 {
        let len = self.ms.len() as u64;
        let (cycle, i) = (n / len, (n % len) as usize);
        cycle
            .saturating_mul(self.period_ms())
            .saturating_add(self.ms[i])
            .saturating_mul(1000)
    }

    /// The first opportunity at or after `t_us` microseconds.
    fn first_from(&self, t_us: u64) -> u64 {
        let len = self.ms.len() as u64;
        let cycle = t_us.div_ceil(1000) / self.period_ms();
        // Opportunity times never decrease with `n`, and every opportunity of the
        // cycle before is due by the start of this one: search these two cycles
        // and the next.
        let (mut lo, mut hi) = (
            cycle.saturating_sub(1).saturating_mul(len),
            cycle.saturating_add(2).saturating_mul(len),
        );
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.at_us(mid) < t_us {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

/// The queue in front of a trace-driven link: what is waiting, and how far
/// into the trace the link has got.
#[derive(Debug, Clone, Default)]
pub(crate) struct TraceQueue {
    /// When the trace started (the first datagram's arrival), in µs.
    origin: Option<u64>,
    /// The next opportunity not used yet.
    next: u64,
    /// Bytes left in opportunity `next - 1`.
    leftover: u32,
    /// Datagrams queued: (departure in µs from the origin, length).
    queued: VecDeque<(u64, usize)>,
    queued_bytes: usize,
}

impl TraceQueue {
    /// Queues a datagram of `len` bytes arriving at `now`; returns when its last
    /// byte leaves, or `None` when the queue (of `limit` bytes) has no room.
    pub(crate) fn enqueue(
        &mut self,
        trace: &DeliveryTrace,
        now: Instant,
        len: usize,
        limit: usize,
    ) -> Option<Instant> {
        let abs_us = now.total_micros();
        let origin = *self.origin.get_or_insert(abs_us);
        // From here on, times are counted from the trace's start.
        let now_us = abs_us.saturating_sub(origin);
        while let Some(&(departure, l)) = self.queued.front() {
            if departure > now_us {
                break;
            }
            self.queued.pop_front();
            self.queued_bytes -= l;
        }
        if self.queued_bytes + len > limit {
            return None;
        }
        // An empty datagram still needs a slot in an opportunity.
        let mut remaining = len.max(1) as u64;
        let mut departure = now_us;
        if self.next > 0 && self.leftover > 0 {
            let at = trace.at_us(self.next - 1);
            if at >= now_us {
                let take = remaining.min(u64::from(self.leftover));
                remaining -= take;
                self.leftover -= take as u32;
                departure = at;
            }
        }
        while remaining > 0 {
            let n = self.next.max(trace.first_from(now_us));
            let take = remaining.min(u64::from(OPPORTUNITY_BYTES));
            remaining -= take;
            self.leftover = OPPORTUNITY_BYTES - take as u32;
            self.next = n + 1;
            departure = trace.at_us(n);
        }
        self.queued.push_back((departure, len));
        self.queued_bytes += len;
        Some(Instant::from_micros(origin.saturating_add(departure)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Instant {
        Instant::from_millis(v)
    }

    #[test]
    fn parses_and_repeats() {
        let t = DeliveryTrace::parse("1\n").unwrap();
        assert_eq!((t.opportunities(), t.period_ms()), (1, 1));
        assert_eq!(t.mean_rate(), 1_500_000.0);
        assert_eq!(t.at_us(0), 1000);
        assert_eq!(t.at_us(9), 10_000);
        assert_eq!(t.first_from(0), 0);
        assert_eq!(t.first_from(1000), 0);
        assert_eq!(t.first_from(1001), 1);
        assert_eq!(t.first_from(5_500), 5);

        // Two opportunities at 3 ms, one at 10 ms; period 10 ms.
        let t = DeliveryTrace::parse("3\n3\n\n10\n").unwrap();
        assert_eq!(t.opportunities(), 3);
        let times: Vec<u64> = (0..7).map(|n| t.at_us(n) / 1000).collect();
        assert_eq!(times, vec![3, 3, 10, 13, 13, 20, 23]);
        assert_eq!(t.first_from(4_000), 2);
        assert_eq!(t.first_from(10_000), 2);
        assert_eq!(t.first_from(10_001), 3);
        assert_eq!(t.first_from(1_000_000), 299);
        assert_eq!(t.at_us(299), 1_000_000);
        // A trace starting at zero: its opportunity at the period and the next
        // repetition's first one fall in the same millisecond.
        let t = DeliveryTrace::parse("0\n5\n").unwrap();
        let times: Vec<u64> = (0..5).map(|n| t.at_us(n) / 1000).collect();
        assert_eq!(times, vec![0, 5, 5, 10, 10]);
        assert_eq!(t.first_from(5_000), 1);
        assert_eq!(t.first_from(5_001), 3);
    }

    #[test]
    fn malformed_traces_name_the_line() {
        let err = |text: &str| DeliveryTrace::parse(text).unwrap_err();
        assert_eq!(err("").line, None);
        assert!(err("\n \n").to_string().contains("empty"), "{}", err("\n"));
        let e = err("1\n2\nabc\n4\n");
        assert_eq!(e.line, Some(3));
        assert!(e.to_string().starts_with("trace line 3: `abc`"), "{e}");
        assert_eq!(err("1\n-2\n").line, Some(2));
        assert_eq!(err("1\n2.5\n").line, Some(2));
        let e = err("5\n7\n6\n");
        assert_eq!(e.line, Some(3));
        assert!(e.to_string().contains("must not decrease"), "{e}");
        let e = err("0\n0\n");
        assert_eq!(e.line, Some(2));
        assert!(e.to_string().contains("period"), "{e}");
        assert_eq!(err("1\n99999999999999999999999\n").line, Some(2));
        let big = "1\n".repeat((MAX_TRACE_BYTES / 2 + 1) as usize);
        assert!(err(&big).to_string().contains("exceeds the limit"));
    }

    #[test]
    fn a_file_too_large_is_refused_before_parsing() {
        let dir = std::env::temp_dir().join(format!("rgtp-trace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("big.trace");
        std::fs::write(&p, "1\n".repeat((MAX_TRACE_BYTES / 2 + 1) as usize)).unwrap();
        let e = DeliveryTrace::from_file(&p).unwrap_err();
        assert!(e.to_string().contains("exceeds the limit"), "{e}");
        let p2 = dir.join("bad.trace");
        std::fs::write(&p2, "1\n2\n1\n").unwrap();
        let e = DeliveryTrace::from_file(&p2).unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.to_string().contains("bad.trace"), "{e}");
        let e = DeliveryTrace::from_file(&dir.join("missing.trace")).unwrap_err();
        assert_eq!(e.line, None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bytes_share_opportunities_and_idle_ones_are_lost() {
        let t = DeliveryTrace::parse("1\n").unwrap();
        let mut q = TraceQueue::default();
        // Three 500-byte datagrams at once fill the 1 ms opportunity.
        for _ in 0..3 {
            assert_eq!(q.enqueue(&t, ms(0), 500, 1 << 20), Some(ms(1)));
        }
        // The fourth waits for the next one; 3000 bytes need two more.
        assert_eq!(q.enqueue(&t, ms(0), 500, 1 << 20), Some(ms(2)));
        assert_eq!(q.enqueue(&t, ms(0), 3000, 1 << 20), Some(ms(4)));
        // At 10 ms the link has been idle: the next opportunity is at 10 ms itself,
        // and what opportunity 4 had left is lost.
        assert_eq!(q.enqueue(&t, ms(10), 1500, 1 << 20), Some(ms(10)));
        assert_eq!(
            q.enqueue(&t, Instant::from_micros(10_200), 100, 1 << 20),
            Some(ms(11))
        );
    }

    #[test]
    fn the_trace_starts_with_the_first_datagram() {
        let t = DeliveryTrace::parse("4\n").unwrap();
        let mut q = TraceQueue::default();
        assert_eq!(q.enqueue(&t, ms(1000), 1500, 1 << 20), Some(ms(1004)));
        assert_eq!(q.enqueue(&t, ms(1000), 1500, 1 << 20), Some(ms(1008)));
        assert_eq!(q.enqueue(&t, ms(1009), 1, 1 << 20), Some(ms(1012)));
    }

    #[test]
    fn the_queue_limit_drops_tail() {
        let t = DeliveryTrace::parse("10\n").unwrap(); // 1500 B every 10 ms
        let mut q = TraceQueue::default();
        let got: Vec<Option<Instant>> = (0..5).map(|_| q.enqueue(&t, ms(0), 1500, 4500)).collect();
        assert_eq!(
            got,
            vec![Some(ms(10)), Some(ms(20)), Some(ms(30)), None, None]
        );
        // Once the first has left, there is room for one more.
        assert_eq!(q.enqueue(&t, ms(10), 1500, 4500), Some(ms(40)));
        assert_eq!(q.enqueue(&t, ms(10), 1500, 4500), None);
    }

    #[test]
    fn a_gap_holds_the_queue() {
        // 1 ms opportunities for 100 ms, then none until 1100 ms; period 1100 ms.
        let mut text: String = (1..=100).map(|v| format!("{v}\n")).collect();
        text.push_str("1100\n");
        let t = DeliveryTrace::parse(&text).unwrap();
        let mut q = TraceQueue::default();
        let last = (0..102)
            .map(|_| q.enqueue(&t, ms(0), 1500, 1 << 20).unwrap())
            .collect::<Vec<_>>();
        assert_eq!(last[99], ms(100));
        assert_eq!(last[100], ms(1100));
        assert_eq!(last[101], ms(1101));
    }
}
