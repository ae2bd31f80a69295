//! The C-visible types and constants of `rgtp.h`, field for field.
//!
//! This file depends on `std` only, so that the layout test can include it too and
//! compare every offset with what a C compiler computes from the header.
//! C `bool` fields are declared `u8` here (same size and alignment on every
//! supported ABI) so that a caller passing a byte other than 0 or 1 is not
//! undefined behaviour on our side: any non-zero byte means true.
#![allow(non_camel_case_types, dead_code)]

use std::ffi::{c_char, c_int, c_void};

/// Success.
pub const RGTP_OK: c_int = 0;
/// Out of memory.
pub const RGTP_ERR_NOMEM: c_int = -1;
/// Invalid argument, NULL or wrong-kind handle, buffer too small.
pub const RGTP_ERR_INVALID_ARG: c_int = -2;
/// Socket error.
pub const RGTP_ERR_SOCKET: c_int = -3;
/// Crypto initialisation failed (unknown `RGTP_CRYPTO_BACKEND`).
pub const RGTP_ERR_CRYPTO_INIT: c_int = -4;
/// Encryption failed.
pub const RGTP_ERR_ENCRYPT: c_int = -5;
/// Decryption failed.
pub const RGTP_ERR_DECRYPT: c_int = -6;
/// AEAD authentication failed.
pub const RGTP_ERR_AUTH_FAIL: c_int = -7;
/// Merkle verification failed.
pub const RGTP_ERR_MERKLE_FAIL: c_int = -8;
/// FEC decoding failed.
pub const RGTP_ERR_FEC_FAIL: c_int = -9;
/// Truncated packet.
pub const RGTP_ERR_TRUNCATED: c_int = -10;
/// Chunk index out of range.
pub const RGTP_ERR_CHUNK_INDEX_OOB: c_int = -11;
/// Timed out.
pub const RGTP_ERR_TIMEOUT: c_int = -12;
/// Rate limited.
pub const RGTP_ERR_RATE_LIMITED: c_int = -13;
/// Not supported.
pub const RGTP_ERR_NOT_SUPPORTED: c_int = -14;
/// Internal error (including a caught panic).
pub const RGTP_ERR_INTERNAL: c_int = -15;

/// Memory profiles.
pub const RGTP_MEMORY_PROFILE_FULL: u32 = 0;
/// Embedded.
pub const RGTP_MEMORY_PROFILE_EMBEDDED: u32 = 1;
/// Minimal.
pub const RGTP_MEMORY_PROFILE_MINIMAL: u32 = 2;

/// Log levels.
pub const RGTP_LOG_ERROR: c_int = 0;
/// Warnings.
pub const RGTP_LOG_WARN: c_int = 1;
/// Informational.
pub const RGTP_LOG_INFO: c_int = 2;
/// Debug.
pub const RGTP_LOG_DEBUG: c_int = 3;

/// `*out_chunk_index` once every chunk has been handed out.
pub const RGTP_CHUNK_INDEX_NONE: u32 = u32::MAX;

/// `rgtp_allocator_t`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct rgtp_allocator_t {
    pub alloc: Option<unsafe extern "C" fn(usize, *mut c_void) -> *mut c_void>,
    pub free: Option<unsafe extern "C" fn(*mut c_void, *mut c_void)>,
    pub ctx: *mut c_void,
}

/// `rgtp_config_t`; all zero means defaults.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct rgtp_config_t {
    pub chunk_size: u32,
    pub window_size: u32,
    pub fec_enabled: u8,
    pub fec_k: u8,
    pub fec_n: u8,
    pub merkle_proofs: u8,
    pub raw_ethernet: u8,
    pub eth_iface: [u8; 16],
    pub eth_vlan_id: u16,
    pub eth_vlan_pcp: u8,
    pub port: u16,
    pub timeout_ms: c_int,
    pub memory_profile: u32,
    pub allocator: rgtp_allocator_t,
}

/// `rgtp_stats_t`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq)]
pub struct rgtp_stats_t {
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub chunks_sent: u32,
    pub chunks_received: u32,
    pub auth_failures: u32,
    pub malformed_packets: u32,
    pub fec_recoveries: u32,
    pub nak_sent: u32,
    pub packet_loss_rate: f32,
    pub rtt_us: u32,
    pub pull_pressure: u32,
}

/// `rgtp_latency_stats_t`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct rgtp_latency_stats_t {
    pub mean_us: u32,
    pub jitter_us: u32,
    pub p99_us: u32,
    pub min_us: u32,
    pub max_us: u32,
    pub sample_count: u32,
}

/// One key/value pair of a log event.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct rgtp_log_kv_t {
    pub key: *const c_char,
    pub value: *const c_char,
}

/// `rgtp_log_event_t`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct rgtp_log_event_t {
    pub timestamp_ns: u64,
    pub level: c_int,
    pub component: *const c_char,
    pub message: *const c_char,
    pub kv: [rgtp_log_kv_t; 8],
    pub kv_count: c_int,
}

/// `rgtp_log_fn`.
pub type rgtp_log_fn = Option<unsafe extern "C" fn(*const rgtp_log_event_t, *mut c_void)>;

/// Opaque socket handle as C sees it.
#[repr(C)]
pub struct rgtp_socket_t {
    _opaque: [u8; 0],
}

/// Opaque surface handle as C sees it.
#[repr(C)]
pub struct rgtp_surface_t {
    _opaque: [u8; 0],
}

/// `rgtp_send_options_t`; `size` first, so later versions can grow it.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct rgtp_send_options_t {
    pub size: usize,
    pub bind: *const c_char,
    pub advertise: *const c_char,
    pub key: *const u8,
    pub max_rate: u64,
    pub max_rate_per_connection: u64,
    pub max_rate_per_file: u64,
    pub chunk_size: u32,
    pub keep_symlinks: u8,
}

impl Default for rgtp_send_options_t {
    fn default() -> Self {
        Self {
            size: std::mem::size_of::<Self>(),
            bind: std::ptr::null(),
            advertise: std::ptr::null(),
            key: std::ptr::null(),
            max_rate: 0,
            max_rate_per_connection: 0,
            max_rate_per_file: 0,
            chunk_size: 0,
            keep_symlinks: 0,
        }
    }
}

/// `rgtp_get_options_t`; `size` first.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct rgtp_get_options_t {
    pub size: usize,
    pub parallel_files: u32,
    pub retries: u32,
    pub restart: u8,
    pub max_rate: u64,
    pub max_rate_per_file: u64,
    pub max_rate_per_connection: u64,
    pub connect_timeout_ms: u32,
    pub idle_timeout_ms: u32,
    pub sources: *const *const c_char,
    pub n_sources: usize,
}

impl Default for rgtp_get_options_t {
    fn default() -> Self {
        Self {
            size: std::mem::size_of::<Self>(),
            parallel_files: 0,
            retries: 0,
            restart: 0,
            max_rate: 0,
            max_rate_per_file: 0,
            max_rate_per_connection: 0,
            connect_timeout_ms: 0,
            idle_timeout_ms: 0,
            sources: std::ptr::null(),
            n_sources: 0,
        }
    }
}

/// `rgtp_files_event_t`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct rgtp_files_event_t {
    pub size: usize,
    pub kind: c_int,
    pub index: u64,
    pub path: *const c_char,
    pub done: u64,
    pub total: u64,
    pub files: u64,
    pub entries: u64,
    pub total_done: u64,
    pub seconds: f64,
    pub skipped: u8,
    pub message: *const c_char,
}

/// `rgtp_get_result_t`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct rgtp_get_result_t {
    pub size: usize,
    pub files: u64,
    pub entries: u64,
    pub bytes: u64,
    pub seconds: f64,
}

/// `rgtp_sender_stats_t`; `size` first.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct rgtp_sender_stats_t {
    pub size: usize,
    pub datagrams_in: u64,
    pub bytes_in: u64,
    pub datagrams_out: u64,
    pub bytes_out: u64,
    pub pulls: u64,
    pub requests: u64,
    pub chunks_sent: u64,
    pub parity_sent: u64,
    pub dropped: u64,
    pub seconds: f64,
    pub serving: u8,
}

/// `rgtp_get` returns this when the progress callback asked it to stop.
pub const RGTP_FILES_STOPPED: c_int = 1;

/// Event kinds of `rgtp_files_event_t`.
pub const RGTP_FILES_CATALOG: c_int = 0;
/// A file's pull starts.
pub const RGTP_FILES_STARTED: c_int = 1;
/// Bytes of a file so far.
pub const RGTP_FILES_BYTES: c_int = 2;
/// A file's pull is retried.
pub const RGTP_FILES_RETRY: c_int = 3;
/// A file is complete.
pub const RGTP_FILES_DONE: c_int = 4;
/// A file's pull failed.
pub const RGTP_FILES_FAILED: c_int = 5;
