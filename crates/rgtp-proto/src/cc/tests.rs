//! Each controller against scripted signals.

use std::time::Duration;

use redgiant_base::Instant;

use super::*;

const CFG: CcConfig = CcConfig {
    initial_window: 10,
    max_window: 1000,
};

/// A scripted puller: numbers requests, keeps the RTT estimator, feeds a controller.
struct Script {
    ctl: Box<dyn CongestionController>,
    rtt: RttEstimator,
    now: Instant,
    next_seq: u64,
}

impl Script {
    fn new(name: &str) -> Self {
        Self::with(name, CFG)
    }
    fn with(name: &str, cfg: CcConfig) -> Self {
        Script {
            ctl: (Controller::by_name(name).unwrap().make)(&cfg),
            rtt: RttEstimator::default(),
            now: Instant::from_micros(1_000_000),
            next_seq: 0,
        }
    }
    fn send(&mut self, n: u64) {
        self.next_seq += n;
    }
    fn signal(&mut self, s: Signal) {
        let cx = Context {
            now: self.now,
            rtt: &self.rtt,
            next_seq: self.next_seq,
        };
        self.ctl.on_signal(s, &cx);
    }
    fn deliver(&mut self, n: usize) {
        for _ in 0..n {
            self.signal(Signal::Delivered);
        }
    }
    fn rtt(&mut self, ms: u64, seq: u64) {
        let sample = Duration::from_millis(ms);
        self.rtt.update(sample);
        self.signal(Signal::Rtt {
            sample,
            seq: Some(seq),
        });
    }
    fn lose(&mut self, seq: u64) {
        self.signal(Signal::Lost { seq });
    }
    fn w(&self) -> u32 {
        self.ctl.window()
    }
}

#[test]
fn slow_start_adds_a_chunk_per_delivery_up_to_the_ceiling() {
    for name in ["delay", "reno", "cubic"] {
        let mut s = Script::new(name);
        assert_eq!(s.w(), 10, "{name}");
        s.deliver(10);
        assert_eq!(s.w(), 20, "{name}");
        s.deliver(5000);
        assert_eq!(s.w(), 1000, "{name}: capped at max_window");
    }
}

#[test]
fn delay_ignores_random_loss_and_halves_on_a_standing_queue_once_per_window() {
    let mut s = Script::new("delay");
    s.deliver(90); // 100
    s.send(100);
    for i in 0..16 {
        s.rtt(10, i);
    }
    for seq in 0..50 {
        s.lose(seq);
    }
    assert_eq!(s.w(), 100, "loss without a queue is not congestion");
    // The delay rises by 30 ms on every sample: a standing queue.
    for i in 16..32 {
        s.rtt(40, i);
    }
    assert_eq!(s.w(), 50);
    // More evidence from requests sent before the decrease changes nothing...
    s.rtt(40, 90);
    s.lose(99);
    assert_eq!(s.w(), 50);
    // ...one sent after it halves again.
    s.rtt(40, 100);
    assert_eq!(s.w(), 25);
    // Below the floor (10 ms above the minimum) nothing is a queue.
    let mut q = Script::new("delay");
    q.deliver(90);
    q.send(100);
    for i in 0..32 {
        q.rtt(if i < 16 { 1 } else { 3 }, i);
    }
    assert_eq!(q.w(), 100, "2 ms above a 1 ms path is under QUEUE_FLOOR");
}

#[test]
fn reno_halves_on_loss_once_per_window_and_ignores_delay() {
    let mut s = Script::new("reno");
    s.deliver(90); // 100
    s.send(100);
    for i in 0..32 {
        s.rtt(if i < 16 { 10 } else { 500 }, i);
    }
    assert_eq!(s.w(), 100, "delay is not a reno signal");
    s.lose(3);
    assert_eq!(s.w(), 50);
    s.lose(4); // same window of requests
    assert_eq!(s.w(), 50);
    // Congestion avoidance: a chunk per window.
    s.deliver(51);
    assert_eq!(s.w(), 51, "a window of deliveries adds one chunk");
    s.send(10);
    s.lose(100);
    assert_eq!(s.w(), 25);
}

#[test]
fn cubic_backs_off_by_beta_and_returns_to_the_last_maximum_around_k() {
    let roomy = CcConfig {
        max_window: 100_000,
        ..CFG
    };
    let mut s = Script::with("cubic", roomy);
    s.deliver(990); // 1000
    s.send(1000);
    s.rtt(10, 0);
    s.lose(0);
    assert_eq!(s.w(), 700, "β = 0.7");
    // K = cbrt(W_max (1 - β) / C) = cbrt(1000 * 0.3 / 0.4) ≈ 9.09 s.
    let mut grown = Vec::new();
    for sec in 0..14 {
        // Deliveries at 1,000 per second, well above the window's needs.
        for _ in 0..100 {
            s.deliver(10);
            s.now = s.now + Duration::from_millis(10);
        }
        grown.push((sec + 1, s.w()));
    }
    let at = |t: u32| grown.iter().find(|x| x.0 == t).unwrap().1;
    // Concave: fast at first, flat near W_max.
    assert!(at(2) - at(1) > at(9) - at(8), "{grown:?}");
    assert!(
        (930..=1000).contains(&at(8)),
        "near W_max before K: {grown:?}"
    );
    assert!(at(9) <= 1000 && at(10) >= 990, "{grown:?}");
    // Convex past K: probing beyond the old maximum speeds up again.
    assert!(at(14) - at(13) > at(11) - at(10), "{grown:?}");
    // A loss before regaining W_max lowers it (fast convergence).
    let mut f = Script::with("cubic", roomy);
    f.deliver(990);
    f.send(10);
    f.lose(0); // 700, W_max 1000
    f.send(10);
    f.lose(10); // at 700 < 1000: W_max = 700 * 1.7 / 2 = 595, window 0.7 * 700
    assert!((489..=490).contains(&f.w()), "{}", f.w());
    f.rtt(10, 20);
    for _ in 0..500 {
        f.deliver(10);
        f.now = f.now + Duration::from_millis(10);
    }
    // Five seconds on, short of the new K (cbrt(105 / 0.4) ≈ 6.4 s): on the plateau
    // at the lowered W_max, not heading for 700 (or 1000).
    assert!((580..=600).contains(&f.w()), "{}", f.w());
}
