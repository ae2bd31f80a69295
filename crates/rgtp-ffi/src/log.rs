//! Forwards `tracing` events to the C log callback.

use std::cell::Cell;
use std::ffi::{c_int, c_void, CString};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Once, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

use crate::abi::{rgtp_log_event_t, rgtp_log_fn, rgtp_log_kv_t, RGTP_LOG_INFO};

/// The callback and its context pointer.
#[derive(Clone, Copy)]
struct Sink {
    f: unsafe extern "C" fn(*const rgtp_log_event_t, *mut c_void),
    ctx: *mut c_void,
}

// SAFETY: the context pointer is only handed back to the caller's callback; the header
// states that the callback may be invoked from any thread that calls into the library.
unsafe impl Send for Sink {}
// SAFETY: as above; the pointer is never dereferenced by us.
unsafe impl Sync for Sink {}

static SINK: RwLock<Option<Sink>> = RwLock::new(None);
static HAVE_SINK: AtomicBool = AtomicBool::new(false);
static LEVEL: AtomicI32 = AtomicI32::new(RGTP_LOG_INFO);
static INSTALL: Once = Once::new();

thread_local! {
    /// Set while a callback runs on this thread: events it causes are not forwarded.
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

fn level_num(l: &Level) -> c_int {
    match *l {
        Level::ERROR => 0,
        Level::WARN => 1,
        Level::INFO => 2,
        Level::DEBUG => 3,
        Level::TRACE => 4,
    }
}

/// Installs the forwarding subscriber as the process-wide default (once; if the
/// host already installed one, events reach it instead and the callback stays silent).
pub(crate) fn install() {
    INSTALL.call_once(|| {
        let _ = tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(CallbackLayer),
        );
    });
}

pub(crate) fn set_callback(f: rgtp_log_fn, ctx: *mut c_void) {
    install();
    let sink = f.map(|f| Sink { f, ctx });
    let mut g = SINK.write().unwrap_or_else(|e| e.into_inner());
    *g = sink;
    HAVE_SINK.store(sink.is_some(), Ordering::Release);
}

pub(crate) fn set_level(level: c_int) {
    LEVEL.store(level, Ordering::Relaxed);
}

struct CallbackLayer;

impl<S: Subscriber> Layer<S> for CallbackLayer {
    fn register_callsite(
        &self,
        _metadata: &'static Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        // The level and the callback change at run time: ask every time.
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        HAVE_SINK.load(Ordering::Acquire)
            && level_num(metadata.level()) <= LEVEL.load(Ordering::Relaxed)
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if IN_CALLBACK.with(Cell::get) {
            return;
        }
        let Some(sink) = *SINK.read().unwrap_or_else(|e| e.into_inner()) else {
            return;
        };
        let mut v = Collect::default();
        event.record(&mut v);
        let component = cstring(event.metadata().target());
        let message = cstring(&v.message);
        let kvs: Vec<(CString, CString)> = v
            .fields
            .iter()
            .map(|(k, val)| (cstring(k), cstring(val)))
            .collect();
        let mut ev = rgtp_log_event_t {
            timestamp_ns: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
            level: level_num(event.metadata().level()).min(3),
            component: component.as_ptr(),
            message: message.as_ptr(),
            kv: [rgtp_log_kv_t {
                key: std::ptr::null(),
                value: std::ptr::null(),
            }; 8],
            kv_count: kvs.len() as c_int,
        };
        for (slot, (k, val)) in ev.kv.iter_mut().zip(&kvs) {
            slot.key = k.as_ptr();
            slot.value = val.as_ptr();
        }
        IN_CALLBACK.with(|c| c.set(true));
        // SAFETY: the caller registered `f` as a `rgtp_log_fn`; the event and every string
        // it points to live until the call returns (documented: copy what you keep).
        unsafe { (sink.f)(&ev, sink.ctx) };
        IN_CALLBACK.with(|c| c.set(false));
    }
}

fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "\\0")).unwrap_or_default()
}

#[derive(Default)]
struct Collect {
    message: String,
    fields: Vec<(&'static str, String)>,
}

impl Visit for Collect {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else if self.fields.len() < 8 {
            self.fields.push((field.name(), value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else if self.fields.len() < 8 {
            self.fields.push((field.name(), format!("{value:?}")));
        }
    }
}
