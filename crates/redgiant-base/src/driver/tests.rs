//! The driver tested with the base crate's testing implementations, on a
//! manual clock and a virtual network: no socket, no sleep.

use super::*;
use crate::testing::{
    PerfectNetwork, PingApp, PingEvent, Pinger, Reflector, ScriptedStream, ShoutApp, Shouter,
};
use crate::ManualClock;

const ME: Peer = Peer::Mem(1);
const FAR: Peer = Peer::Mem(9);
const RTO: Duration = Duration::from_millis(50);

fn driver(link: Reflector, clock: &ManualClock) -> Driver<Reflector, ManualClock> {
    let config = DriverConfig {
        recv_buffer: 64 * 1024,
        ..DriverConfig::default()
    };
    Driver::with_clock(link, clock.clone(), config)
}

#[test]
fn driver_runs_an_endpoint_to_completion() {
    let clock = ManualClock::new(Instant::from_millis(1));
    let mut d = driver(Reflector::new(ME).on_clock(clock.clone()), &clock);
    let mut p = Pinger::new(FAR, 100, 8, RTO);
    let mut app = PingApp::default();
    let mut ticks = 0;
    let r = d.run(&mut p, &mut app, &AtomicBool::new(false), |_, _| ticks += 1);
    assert_eq!(r.unwrap(), Finish::Done(100));
    let mut got = app.delivered.clone();
    got.sort_unstable();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    // Each ping once, each echo once: nothing lost, nothing resent.
    assert_eq!(p.sent, 100);
    assert_eq!(d.link().sent, 200);
    assert_eq!(app.events.last(), Some(&PingEvent::Done));
    assert!(ticks >= 1, "tick runs at the end");
}

#[test]
fn lost_datagrams_are_resent_when_the_virtual_clock_passes_the_deadline() {
    let clock = ManualClock::new(Instant::from_millis(1));
    let start = clock.now();
    let link = Reflector::new(ME).on_clock(clock.clone()).dropping_every(7);
    let mut d = driver(link, &clock);
    let mut p = Pinger::new(FAR, 100, 8, RTO);
    let mut app = PingApp::default();
    let r = d.run(&mut p, &mut app, &AtomicBool::new(false), |_, _| {});
    assert_eq!(r.unwrap(), Finish::Done(100));
    assert!(p.sent > 100, "losses were resent ({} sent)", p.sent);
    // Waits moved the manual clock: at least one retransmission timeout passed.
    assert!(clock.now().saturating_since(start) >= RTO);
}

#[test]
fn an_endpoint_error_ends_the_run_without_sleeping() {
    let clock = ManualClock::new(Instant::from_millis(1));
    let start = clock.now();
    let link = Reflector::new(ME).on_clock(clock.clone()).dropping_every(1);
    let wall = std::time::Instant::now();
    let mut d = driver(link, &clock);
    let mut p = Pinger::new(FAR, 3, 8, RTO);
    let r = d.run(
        &mut p,
        &mut PingApp::default(),
        &AtomicBool::new(false),
        |_, _| {},
    );
    assert_eq!(r.unwrap_err().kind(), io::ErrorKind::TimedOut);
    // Five tries of one timeout each, all on the manual clock.
    assert!(clock.now().saturating_since(start) >= RTO * 5);
    assert!(wall.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_set_stop_flag_stops_the_run() {
    let clock = ManualClock::new(Instant::from_millis(1));
    let mut d = driver(Reflector::new(ME).on_clock(clock.clone()), &clock);
    let mut p = Pinger::new(FAR, 10, 1, RTO);
    let mut ticks = 0;
    let r = d.run(
        &mut p,
        &mut PingApp::default(),
        &AtomicBool::new(true),
        |_, _| ticks += 1,
    );
    assert_eq!(r.unwrap(), Finish::Stopped);
    assert_eq!(p.sent, 0);
    assert_eq!(ticks, 1);
}

#[test]
fn a_spent_transmit_budget_leaves_work_pending_and_skips_the_wait() {
    let clock = ManualClock::new(Instant::from_millis(1));
    let config = DriverConfig {
        transmit_budget: 1,
        recv_buffer: 4096,
        ..DriverConfig::default()
    };
    let link = Reflector::new(ME).on_clock(clock.clone());
    let mut d = Driver::with_clock(link, clock.clone(), config);
    let mut p = Pinger::new(FAR, 10, 8, RTO);
    let t0 = clock.now();
    let turn = d.turn(&mut p, &mut PingApp::default(), Duration::from_secs(1));
    assert!(matches!(
        turn.unwrap(),
        Turn::Continue { pending: true, .. }
    ));
    assert_eq!(clock.now(), t0, "no wait while transmits are pending");
}

#[test]
fn simulate_runs_endpoints_to_completion_on_virtual_time() {
    let mut net = PerfectNetwork::new(Duration::from_millis(10));
    let server = Pinger::new(Peer::Mem(9), 0, 1, RTO);
    let mut server = Stepper::new(server, PingApp::default(), Peer::Mem(3)).background();
    let a = Pinger::new(Peer::Mem(3), 20, 4, RTO);
    let mut a = Stepper::new(a, PingApp::default(), Peer::Mem(1));
    let b = Pinger::new(Peer::Mem(3), 30, 4, RTO);
    let mut b = Stepper::new(b, PingApp::default(), Peer::Mem(2));
    let start = Instant::from_millis(1000);
    let limit = start + Duration::from_secs(60);
    let end = simulate(&mut net, &mut [&mut a, &mut b, &mut server], start, limit);
    assert!(matches!(a.outcome(), Some(Ok(20))));
    assert!(matches!(b.outcome(), Some(Ok(30))));
    // 30 pings, 4 at a time, 20 ms a round trip: at least 7 round trips.
    assert!(end.saturating_since(start) >= Duration::from_millis(140));
    assert_eq!(b.finished_at(), Some(end));
    assert!(a.finished_at().unwrap() < end);
    assert_eq!(net.carried, 100, "50 pings and 50 echoes, none resent");
}

#[test]
fn simulate_waits_for_foreground_nodes_only_and_stops_at_the_end() {
    let start = Instant::from_millis(0);
    // A background node that answers, and one that would ping forever.
    let mut net = PerfectNetwork::new(Duration::from_millis(1));
    let mut server = Stepper::new(
        Pinger::new(Peer::Mem(7), 1_000_000, 1, RTO),
        PingApp::default(),
        Peer::Mem(2),
    )
    .background();
    let mut client = Stepper::new(
        Pinger::new(Peer::Mem(2), 5, 1, RTO),
        PingApp::default(),
        Peer::Mem(1),
    );
    simulate(
        &mut net,
        &mut [&mut client, &mut server],
        start,
        start + Duration::from_secs(10),
    );
    assert!(matches!(client.outcome(), Some(Ok(5))));
    assert!(!server.is_finished());
    // Nobody answers: the run ends by giving up, well before the limit.
    let mut net = PerfectNetwork::new(Duration::from_millis(1));
    let mut lonely = Stepper::new(
        Pinger::new(Peer::Mem(3), 5, 1, RTO),
        PingApp::default(),
        Peer::Mem(1),
    );
    let end = simulate(
        &mut net,
        &mut [&mut lonely],
        start,
        start + Duration::from_secs(10),
    );
    assert!(matches!(lonely.outcome(), Some(Err(_))));
    assert!(end < start + Duration::from_secs(1));
    // And a limit shorter than that stops the run unfinished.
    let mut net = PerfectNetwork::new(Duration::from_millis(1));
    let mut cut = Stepper::new(
        Pinger::new(Peer::Mem(3), 5, 1, RTO),
        PingApp::default(),
        Peer::Mem(1),
    );
    let end = simulate(
        &mut net,
        &mut [&mut cut],
        start,
        start + Duration::from_millis(120),
    );
    assert!(!cut.is_finished());
    assert!(end <= start + Duration::from_millis(120));
}

fn shouter(
    input: &[&[u8]],
    max_write: usize,
    break_at_end: bool,
) -> StreamDriver<ScriptedStream, ManualClock> {
    let link = ScriptedStream {
        input: input.iter().map(|c| c.to_vec()).collect(),
        break_at_end,
        max_write,
        ..ScriptedStream::default()
    };
    let config = DriverConfig {
        recv_buffer: 16,
        ..DriverConfig::default()
    };
    StreamDriver::with_clock(link, ManualClock::new(Instant::ZERO), config)
}

#[test]
fn stream_driver_keeps_unconsumed_bytes_and_finishes_partial_writes() {
    // Lines split across receives, answers written 3 bytes at a time.
    let mut d = shouter(&[b"hello\nwor", b"ld\n", b"a\nb", b"c\n"], 3, false);
    let mut e = Shouter::default();
    let mut app = ShoutApp::default();
    let r = d.run(&mut e, &mut app, &AtomicBool::new(false), |_, _| {});
    assert_eq!(r.unwrap(), Finish::Done(false), "an orderly close");
    assert_eq!(app.lines, [&b"hello\n"[..], b"world\n", b"a\n", b"bc\n"]);
    assert_eq!(d.link().output, b"HELLO\nWORLD\nA\nBC\n");
    assert!(
        d.link().shut,
        "the endpoint's end of stream reached the link"
    );
    assert!(d.peer_closed());
}

#[test]
fn stream_driver_reports_a_broken_connection_after_the_endpoint_hears_it() {
    let mut d = shouter(&[b"one\ntw"], 0, true);
    let mut e = Shouter::default();
    let mut app = ShoutApp::default();
    let r = d.run(&mut e, &mut app, &AtomicBool::new(false), |_, _| {});
    // The application ends the run on the close event, which says "broken".
    assert_eq!(r.unwrap(), Finish::Done(true));
    assert_eq!(app.lines, [b"one\n"]);
    assert!(!d.link().shut, "nothing is sent after a reset");
}

#[test]
fn stream_driver_refuses_an_endpoint_that_never_consumes() {
    // 16 bytes without a newline fill the buffer: the endpoint cannot progress.
    let mut d = shouter(&[&[b'x'; 40]], 0, false);
    let mut e = Shouter::default();
    let r = d.run(
        &mut e,
        &mut ShoutApp::default(),
        &AtomicBool::new(false),
        |_, _| {},
    );
    assert_eq!(r.unwrap_err().kind(), io::ErrorKind::InvalidData);
}

#[test]
fn step_and_wait_run_an_endpoint_behind_a_lock_to_completion() {
    let clock = ManualClock::new(Instant::from_millis(1));
    let link = Reflector::new(ME).on_clock(clock.clone()).dropping_every(5);
    let mut d = driver(link, &clock);
    let shared = std::sync::Mutex::new((Pinger::new(FAR, 100, 8, RTO), PingApp::default()));
    let mut steps = 0;
    let out = loop {
        steps += 1;
        assert!(steps < 100_000, "the run never ended");
        let wait = {
            let mut g = shared.lock().unwrap();
            let (p, app) = &mut *g;
            match d.step(p, app, Duration::from_millis(100)).unwrap() {
                Step::Done(out) => break out,
                Step::Wait(w) => w,
            }
        };
        // The lock is free while the driver waits.
        assert!(shared.try_lock().is_ok());
        d.wait(wait).unwrap();
    };
    assert_eq!(out, 100);
    let (p, app) = shared.into_inner().unwrap();
    let mut got = app.delivered.clone();
    got.sort_unstable();
    got.dedup();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    assert!(p.sent > 100, "losses were resent ({} sent)", p.sent);
    assert_eq!(d.stuck_deadlines(), 0);
}

#[test]
fn datagrams_kept_by_wait_are_handed_in_by_the_next_turn() {
    let clock = ManualClock::new(Instant::from_millis(1));
    let mut d = driver(Reflector::new(ME).on_clock(clock.clone()), &clock);
    let mut p = Pinger::new(FAR, 1, 1, RTO);
    let mut app = PingApp::default();
    let Step::Wait(_) = d.step(&mut p, &mut app, RTO).unwrap() else {
        panic!("one ping is not done before its echo");
    };
    assert_eq!(d.wait(Duration::ZERO).unwrap(), 1);
    // A second wait before the echo is handed in keeps it.
    assert_eq!(d.wait(Duration::ZERO).unwrap(), 1);
    let r = d.turn(&mut p, &mut app, Duration::ZERO).unwrap();
    assert_eq!(r, Turn::Done(1));
    assert_eq!(app.delivered, vec![0]);
}

/// An endpoint whose deadline is always due and which never sends: it
/// breaks the contract the way a stuck timer would.
#[derive(Default)]
struct Stuck {
    timeouts: u32,
}

impl Endpoint for Stuck {
    type Event = ();
    type Delivery<'d> = ();
    fn handle_timeout(&mut self, _now: Instant) {
        self.timeouts += 1;
    }
    fn poll_transmit(&mut self, _now: Instant, _buf: &mut Vec<u8>) -> Option<crate::Transmit> {
        None
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Some(Instant::ZERO)
    }
    fn poll_event(&mut self) -> Option<()> {
        None
    }
}

impl DatagramEndpoint for Stuck {
    fn handle_datagram(&mut self, _: Instant, _: Peer, _: &mut [u8]) -> Option<()> {
        None
    }
}

struct Idle;

impl Application<Stuck> for Idle {
    type Output = ();
    type Error = io::Error;
    fn deliver(&mut self, _: ()) -> io::Result<()> {
        Ok(())
    }
    fn event(&mut self, _: &mut Stuck, _: ()) -> io::Result<Option<()>> {
        Ok(None)
    }
}

#[test]
fn a_deadline_left_due_costs_a_wait_not_a_spin() {
    let clock = ManualClock::new(Instant::from_millis(1));
    let start = clock.now();
    let mut d = driver(Reflector::new(ME).on_clock(clock.clone()), &clock);
    let mut e = Stuck::default();
    for _ in 0..10 {
        let r = d
            .turn(&mut e, &mut Idle, Duration::from_millis(100))
            .unwrap();
        assert!(matches!(r, Turn::Continue { .. }));
    }
    assert_eq!(d.stuck_deadlines(), 10);
    // Each turn waited (on the virtual clock) instead of returning at once.
    assert_eq!(clock.now().saturating_since(start), STUCK_WAIT * 10);
    for _ in 0..10 {
        match d
            .step(&mut e, &mut Idle, Duration::from_millis(100))
            .unwrap()
        {
            Step::Wait(w) => assert_eq!(w, STUCK_WAIT),
            Step::Done(()) => panic!("the run never ends"),
        }
    }
    assert_eq!(d.stuck_deadlines(), 20);
}

impl StreamEndpoint for Stuck {
    fn handle_bytes(&mut self, _: Instant, data: &[u8]) -> usize {
        data.len()
    }
    fn handle_close(&mut self, _: Instant, _: bool) {}
}

#[test]
fn a_stream_endpoint_with_a_deadline_left_due_is_counted_as_stuck() {
    let clock = ManualClock::new(Instant::from_millis(1));
    let config = DriverConfig {
        recv_buffer: 1024,
        ..DriverConfig::default()
    };
    let mut d = StreamDriver::with_clock(ScriptedStream::default(), clock, config);
    let mut e = Stuck::default();
    for _ in 0..5 {
        let r = d
            .turn(&mut e, &mut Idle, Duration::from_millis(100))
            .unwrap();
        assert!(matches!(r, Turn::Continue { .. }));
    }
    assert_eq!(d.stuck_deadlines(), 5);
}

/// An endpoint with nothing to do, ever.
struct Quiet;

impl Endpoint for Quiet {
    type Event = ();
    type Delivery<'d> = ();
    fn handle_timeout(&mut self, _now: Instant) {}
    fn poll_transmit(&mut self, _now: Instant, _buf: &mut Vec<u8>) -> Option<crate::Transmit> {
        None
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn poll_event(&mut self) -> Option<()> {
        None
    }
}

impl DatagramEndpoint for Quiet {
    fn handle_datagram(&mut self, _: Instant, _: Peer, _: &mut [u8]) -> Option<()> {
        None
    }
}

/// An application with work elsewhere: it asks to be called again within `cap`.
struct Elsewhere {
    calls: u32,
    cap: Option<Duration>,
}

impl Application<Quiet> for Elsewhere {
    type Output = ();
    type Error = io::Error;
    fn deliver(&mut self, _: ()) -> io::Result<()> {
        Ok(())
    }
    fn event(&mut self, _: &mut Quiet, _: ()) -> io::Result<Option<()>> {
        Ok(None)
    }
    fn settle(&mut self, _: &mut Quiet, _: Instant) -> io::Result<Option<Duration>> {
        self.calls += 1;
        Ok(self.cap)
    }
}

#[test]
fn settle_runs_every_turn_and_its_limit_shortens_the_wait() {
    let clock = ManualClock::new(Instant::from_millis(1));
    let mut d = driver(Reflector::new(ME).on_clock(clock.clone()), &clock);
    let mut app = Elsewhere {
        calls: 0,
        cap: Some(Duration::from_millis(2)),
    };
    let max = Duration::from_millis(100);
    let t0 = clock.now();
    d.turn(&mut Quiet, &mut app, max).unwrap();
    // The first wait came before the application was asked.
    assert_eq!(clock.now().saturating_since(t0), max);
    let t1 = clock.now();
    d.turn(&mut Quiet, &mut app, max).unwrap();
    assert_eq!(clock.now().saturating_since(t1), Duration::from_millis(2));
    assert_eq!(app.calls, 2);
    // Nothing elsewhere: the full wait again, after one more turn.
    app.cap = None;
    d.turn(&mut Quiet, &mut app, max).unwrap();
    let t3 = clock.now();
    d.turn(&mut Quiet, &mut app, max).unwrap();
    assert_eq!(clock.now().saturating_since(t3), max);
    // The step-wise half asks too, before it says how long to wait.
    app.cap = Some(Duration::from_millis(3));
    assert_eq!(
        d.step(&mut Quiet, &mut app, max).unwrap(),
        Step::Wait(Duration::from_millis(3))
    );
    assert_eq!(app.calls, 5);
}
