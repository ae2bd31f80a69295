/*
 * rgtp.h — C ABI of librgtp, the redgiant implementation of the Red Giant
 * Transport Protocol (RGTP v1).
 *
 * Symbol names, argument types, struct layouts and error codes follow the
 * upstream red-giant header (include/rgtp/rgtp.h) and the published Python
 * package rgtp 1.0.0; the calls marked "redgiant addition" are ours (the
 * upstream header has no way to hand a puller its key).
 *
 * CONVENTIONS
 *   - Every fallible call returns an int error code: RGTP_OK (0) or a negative
 *     RGTP_ERR_* value. No call aborts or unwinds into C: an internal panic is
 *     caught and reported as RGTP_ERR_INTERNAL.
 *   - A NULL handle, a handle of the wrong kind (a socket where a surface is
 *     expected, or an exposer where a puller is expected), or a NULL required
 *     out-pointer gives RGTP_ERR_INVALID_ARG. Handles carry a tag that is
 *     checked before use; it is cleared on destroy. Passing anything else as a
 *     handle (a random pointer, or a handle already destroyed) is undefined
 *     behaviour, as with free() in C.
 *   - Out-parameters are written only on success unless stated otherwise.
 *
 * THREAD SAFETY
 *   - Every call may be made from any thread. Different handles are fully
 *     independent: two threads may drive two surfaces at the same time.
 *   - Each surface is internally locked: driving calls on ONE surface
 *     (rgtp_poll, rgtp_pull_next) from several threads serialize; each waits
 *     for the one in progress (which returns within its own timeout).
 *   - rgtp_get_stats, rgtp_get_latency_stats, rgtp_progress,
 *     rgtp_get_exposure_id, rgtp_get_key and rgtp_get_ticket never wait for a
 *     running rgtp_poll / rgtp_pull_next: they read a snapshot the driver
 *     refreshes at least every 50 ms, and may be called concurrently with it.
 *   - Destroying a handle while another thread is using it, or using it after
 *     destroy, is undefined behaviour: the caller must order destroy after
 *     every other call on that handle.
 *   - rgtp_set_log_callback / rgtp_set_log_level may be called at any time;
 *     the callback may run on any thread that is inside a library call.
 *
 * ENVIRONMENT
 *   RGTP_KEY             64 hex digits: the 256-bit key of exposures created
 *                        when both the socket's and rgtp_expose's configs are
 *                        NULL (otherwise the key is random: read it with
 *                        rgtp_get_key / rgtp_get_ticket), and the key
 *                        rgtp_pull_start uses (it has no key argument; without
 *                        RGTP_KEY it returns RGTP_ERR_INVALID_ARG). Malformed:
 *                        RGTP_ERR_INVALID_ARG.
 *   RGTP_PORT            UDP port of exposers whose config is NULL or has
 *                        port 0 (default 9000, the published CLI's port;
 *                        RGTP_PORT=0 binds any free port: read it from the
 *                        ticket). Malformed: RGTP_ERR_INVALID_ARG.
 *   RGTP_CRYPTO_BACKEND  suite of new exposures, as upstream: "libsodium"
 *                        (default; ChaCha20-Poly1305 + BLAKE2b-256) or
 *                        "openssl" (AES-256-GCM + SHA-256). Any other value:
 *                        RGTP_ERR_CRYPTO_INIT. Pullers accept any suite the
 *                        Manifest announces (a ticket's pins excepted).
 *   RGTP_DANGEROUS_RAW_KEY  unset, "" or "0" (default): chunks are sealed under
 *                        a key derived from the exposure's key and its
 *                        Exposure_ID (Manifest flag DERIVED_KEY, 0x0040), so
 *                        one RGTP_KEY may serve many exposures. "1": sealed
 *                        under the key itself (flags 0 for the libsodium suite),
 *                        as upstream C pullers expect; a key that already
 *                        sealed other data this way in this process is then
 *                        refused (RGTP_ERR_INVALID_ARG). Other values:
 *                        RGTP_ERR_INVALID_ARG. Pullers follow the Manifest.
 *
 * SOCKETS AND BINDING
 *   A socket holds a configuration; the UDP socket is bound lazily, one per
 *   surface, by rgtp_expose ([::]:port, dual-stack; 0.0.0.0:port without IPv6) or rgtp_pull_start* (an ephemeral
 *   port of the server's address family). A surface owns its UDP socket, so a
 *   socket may be destroyed before its surfaces, and may create several.
 *   Config precedence: the call's config, else the socket's, else defaults.
 */
#ifndef RGTP_H
#define RGTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ error codes */
#define RGTP_OK                   0
#define RGTP_ERR_NOMEM           -1  /* allocation or mapping failed */
#define RGTP_ERR_INVALID_ARG     -2  /* bad argument, NULL/wrong-kind handle, buffer too small */
#define RGTP_ERR_SOCKET          -3  /* bind/send/receive failed (e.g. port in use) */
#define RGTP_ERR_CRYPTO_INIT     -4  /* unknown RGTP_CRYPTO_BACKEND */
#define RGTP_ERR_ENCRYPT         -5  /* not returned by this implementation */
#define RGTP_ERR_DECRYPT         -6  /* not returned: reported as RGTP_ERR_AUTH_FAIL */
#define RGTP_ERR_AUTH_FAIL       -7  /* chunks failed AEAD authentication (wrong key, forged traffic) */
#define RGTP_ERR_MERKLE_FAIL     -8  /* a Merkle proof or the root over all chunks did not match */
#define RGTP_ERR_FEC_FAIL        -9  /* not returned: FEC failures are re-requested */
#define RGTP_ERR_TRUNCATED      -10  /* not returned: bad packets are dropped and counted */
#define RGTP_ERR_CHUNK_INDEX_OOB -11 /* not returned: bad indices are dropped and counted */
#define RGTP_ERR_TIMEOUT        -12  /* nothing arrived in time (also: no Manifest, wrong Exposure_ID) */
#define RGTP_ERR_RATE_LIMITED   -13  /* not returned: the exposer drops, the puller sees loss */
#define RGTP_ERR_NOT_SUPPORTED  -14  /* raw Ethernet, custom allocators, unusable Manifest suite */
#define RGTP_ERR_INTERNAL       -15  /* internal error (a bug) */

/* ------------------------------------------------------------ constants */
#define RGTP_MEMORY_PROFILE_FULL     0
#define RGTP_MEMORY_PROFILE_EMBEDDED 1
#define RGTP_MEMORY_PROFILE_MINIMAL  2

#define RGTP_LOG_ERROR 0
#define RGTP_LOG_WARN  1
#define RGTP_LOG_INFO  2
#define RGTP_LOG_DEBUG 3

/** *out_chunk_index after the last chunk was handed out (see rgtp_pull_next). */
#define RGTP_CHUNK_INDEX_NONE UINT32_MAX

/* ------------------------------------------------------------ types */

/** Opaque handles. */
typedef struct rgtp_socket rgtp_socket_t;
typedef struct rgtp_surface rgtp_surface_t;

/** Custom allocator (not supported: see rgtp_set_allocator). */
typedef struct rgtp_allocator {
    void* (*alloc)(size_t size, void* ctx);
    void  (*free)(void* ptr, void* ctx);
    void*  ctx;
} rgtp_allocator_t;

/**
 * Configuration; a zero-initialised struct (or NULL) means defaults.
 * Honoured: chunk_size (0 = 1200; exposer), window_size (puller's congestion
 * window ceiling in chunks; 0 = library default, starting at 64 and growing to
 * 4096), fec_enabled/fec_k/fec_n (exposer: Reed-Solomon; 0 = 223 / 255),
 * merkle_proofs (exposer: serve proofs; puller: ask for and verify them before
 * a chunk is handed out), port (exposer; 0 = RGTP_PORT or 9000), timeout_ms
 * (puller: 0 = defaults of 5000 ms for the handshake and 10000 ms without
 * progress for rgtp_pull_next; -1 = infinite; > 0 = both), memory_profile
 * (accepted, 0..2). raw_ethernet != 0 and a non-NULL allocator give
 * RGTP_ERR_NOT_SUPPORTED. eth_* are ignored.
 */
typedef struct rgtp_config {
    uint32_t chunk_size;
    uint32_t window_size;
    bool     fec_enabled;
    uint8_t  fec_k;
    uint8_t  fec_n;
    bool     merkle_proofs;
    bool     raw_ethernet;
    uint8_t  eth_iface[16];
    uint16_t eth_vlan_id;
    uint8_t  eth_vlan_pcp;
    uint16_t port;
    int      timeout_ms;
    uint32_t memory_profile;
    rgtp_allocator_t allocator;
} rgtp_config_t;

/**
 * Counters of a surface.
 * Exposer: bytes_sent/received, chunks_sent, auth_failures = requests with an
 *   invalid address-validation token, malformed_packets, nak_sent = chunk
 *   requests (NAKs) served, rtt_us = mean service latency, pull_pressure =
 *   requests in the last 100 ms; chunks_received, fec_recoveries and
 *   packet_loss_rate are 0.
 * Puller: bytes_sent/received, chunks_received (verified), auth_failures,
 *   malformed_packets, fec_recoveries, nak_sent, packet_loss_rate (smoothed,
 *   0..1), rtt_us (smoothed RTT), pull_pressure = current congestion window in
 *   chunks; chunks_sent is 0.
 */
typedef struct rgtp_stats {
    uint64_t bytes_sent;
    uint64_t bytes_received;
    uint32_t chunks_sent;
    uint32_t chunks_received;
    uint32_t auth_failures;
    uint32_t malformed_packets;
    uint32_t fec_recoveries;
    uint32_t nak_sent;
    float    packet_loss_rate;
    uint32_t rtt_us;
    uint32_t pull_pressure;
} rgtp_stats_t;

/**
 * Latency summary in microseconds. Puller: request-to-arrival time of
 * first-attempt chunks (and the handshake). Exposer: service time, from a
 * request's arrival to its last datagram leaving.
 */
typedef struct rgtp_latency_stats {
    uint32_t mean_us;
    uint32_t jitter_us;
    uint32_t p99_us;
    uint32_t min_us;
    uint32_t max_us;
    uint32_t sample_count;
} rgtp_latency_stats_t;

/**
 * One log event. Every pointer is valid only during the callback: copy what
 * you keep. component is the emitting module (e.g. "rgtp_ffi",
 * "rgtp_proto::puller"); kv holds up to 8 structured fields, stringified.
 */
typedef struct rgtp_log_event {
    uint64_t    timestamp_ns;   /* since the Unix epoch */
    int         level;          /* RGTP_LOG_ERROR .. RGTP_LOG_DEBUG */
    const char* component;
    const char* message;
    struct {
        const char* key;
        const char* value;
    } kv[8];
    int         kv_count;
} rgtp_log_event_t;

typedef void (*rgtp_log_fn)(const rgtp_log_event_t* event, void* ctx);

/* ------------------------------------------------------------ lifecycle */

/** Initialises the library (installs the log forwarding). Idempotent; returns RGTP_OK. */
int rgtp_init(void);

/** Releases global resources: clears the log callback. Handles stay valid. */
void rgtp_cleanup(void);

/** Library version ("MAJOR.MINOR.PATCH"), a static NUL-terminated string. */
const char* rgtp_version(void);

/** Description of an error code; a static string, never NULL (also for unknown codes). */
const char* rgtp_strerror(int code);

/**
 * Custom allocators are not supported: the library's Rust allocator cannot be
 * swapped safely at run time. NULL (restore the default) returns RGTP_OK; any
 * other value returns RGTP_ERR_NOT_SUPPORTED and changes nothing.
 */
int rgtp_set_allocator(const rgtp_allocator_t* alloc);

/**
 * Forwards the library's log events at or above the set level to fn(event,
 * ctx). NULL fn removes the callback. Events caused by the callback itself
 * (calling back into the library) are not forwarded. If the host process
 * already installed a Rust `tracing` subscriber, the callback stays silent.
 */
int rgtp_set_log_callback(rgtp_log_fn fn, void* ctx);

/** Minimum level forwarded (RGTP_LOG_ERROR..RGTP_LOG_DEBUG; default INFO). Else RGTP_ERR_INVALID_ARG. */
int rgtp_set_log_level(int level);

/* ------------------------------------------------------------ sockets */

/**
 * Creates a socket holding a copy of *cfg (NULL: defaults) into *out. No UDP
 * socket is bound yet (see SOCKETS AND BINDING). RGTP_ERR_NOT_SUPPORTED for
 * raw_ethernet or a custom allocator.
 */
int rgtp_socket_create(const rgtp_config_t* cfg, rgtp_socket_t** out);

/** Destroys a socket (NULL: no-op). Surfaces created from it stay usable. */
void rgtp_socket_destroy(rgtp_socket_t* sock);

/** CCSDS space-link transport: not supported, always returns NULL. */
rgtp_socket_t* rgtp_socket_create_ccsds(const char* device, const rgtp_config_t* cfg);

/* ------------------------------------------------------------ exposer */

/**
 * Seals len bytes at data (encrypts every chunk, builds the Merkle tree and
 * FEC parity) and binds UDP [::]:port (dual-stack; 0.0.0.0:port without IPv6), writing the exposer surface to
 * *out. data is copied: it may be freed after the call. data may be NULL when
 * len is 0. Key: RGTP_KEY when both configs are NULL, else random. Errors:
 * RGTP_ERR_SOCKET (port in use), RGTP_ERR_INVALID_ARG (bad chunk size or FEC
 * parameters, malformed RGTP_KEY/RGTP_PORT/RGTP_DANGEROUS_RAW_KEY, a raw key
 * used twice), RGTP_ERR_CRYPTO_INIT,
 * RGTP_ERR_NOMEM, RGTP_ERR_NOT_SUPPORTED.
 */
int rgtp_expose(rgtp_socket_t* sock, const void* data, size_t len,
                const rgtp_config_t* cfg, rgtp_surface_t** out);

/**
 * redgiant addition. rgtp_expose with an explicit 32-byte pre-shared key,
 * whatever the configs and RGTP_KEY say (the key is copied, and zeroized with
 * the surface). RGTP_ERR_INVALID_ARG when key is NULL; otherwise as rgtp_expose.
 */
int rgtp_expose_with_key(rgtp_socket_t* sock, const void* data, size_t len,
                         const uint8_t key[32], const rgtp_config_t* cfg,
                         rgtp_surface_t** out);

/**
 * Exposer: serves for up to timeout_ms (receives, handles, sends what was
 * queued) and returns RGTP_OK as soon as it handled at least one datagram and
 * sent all that was queued, or RGTP_ERR_TIMEOUT if no datagram arrived within
 * timeout_ms. timeout_ms 0 polls once; < 0 waits until a datagram is handled.
 * Returns within its timeout plus the time to send one batch.
 * Puller: drives the transfer for up to timeout_ms (chunks are queued for
 * rgtp_pull_next); RGTP_OK if any datagram arrived, RGTP_ERR_TIMEOUT if none,
 * or the pull's failure code.
 */
int rgtp_poll(rgtp_surface_t* surface, int timeout_ms);

/** Destroys a surface (NULL: no-op), closing its UDP socket and zeroizing its key. */
void rgtp_destroy_surface(rgtp_surface_t* surface);

/** Copies the 16-byte Exposure_ID of an exposer or puller surface to out. */
int rgtp_get_exposure_id(const rgtp_surface_t* surface, uint8_t out[16]);

/**
 * Transfer progress in [0, 1]; 0.0 for a NULL or invalid handle.
 * Exposer: always 1.0. Puller: chunks handed out by rgtp_pull_next / chunk
 * count; exactly 1.0 only once every chunk was handed out and the Merkle root
 * over all of them verified.
 */
float rgtp_progress(const rgtp_surface_t* surface);

/** Fills *out with the surface's counters (see rgtp_stats_t). */
int rgtp_get_stats(const rgtp_surface_t* surface, rgtp_stats_t* out);

/** Fills *out with the surface's latency summary (see rgtp_latency_stats_t). */
int rgtp_get_latency_stats(const rgtp_surface_t* surface, rgtp_latency_stats_t* out);

/* The Manifest's shape: total plaintext size, chunk size and chunk count, for an
 * exposer or a started pull (chunk i belongs at offset i * chunk_size). NULL out
 * pointers are skipped. Returns RGTP_ERR_INVALID_ARG for a NULL or wrong handle.
 * (redgiant addition.) */
int rgtp_get_manifest_info(const rgtp_surface_t* surface, uint64_t* out_total_size,
                           uint32_t* out_chunk_size, uint32_t* out_chunk_count);

/**
 * redgiant addition. Copies the 32-byte AEAD key of an exposer or puller
 * surface to out. Treat it as a secret; it never goes on the wire.
 */
int rgtp_get_key(const rgtp_surface_t* surface, uint8_t out[32]);

/**
 * redgiant addition. Writes the NUL-terminated ticket of an exposer surface,
 *   rgtp://HOST:PORT/EXPOSURE_ID?cipher=NAME&hash=NAME#KEY
 * (HOST is 127.0.0.1 for an exposer bound to all interfaces; replace it with
 * a reachable name when sharing it), to buf. *out_len (if out_len is not NULL)
 * is set to the size needed including the NUL, also on failure; if buf is NULL
 * or buf_len is smaller, returns RGTP_ERR_INVALID_ARG and writes nothing to
 * buf. 256 bytes always suffice for IPv4. Puller surfaces: RGTP_ERR_INVALID_ARG.
 */
int rgtp_get_ticket(const rgtp_surface_t* surface, char* buf, size_t buf_len, size_t* out_len);

/* ------------------------------------------------------------ puller */

/**
 * Binds an ephemeral UDP port, sends Pull_Request to *server (AF_INET or
 * AF_INET6) for exposure_id, and waits for the Manifest (cfg->timeout_ms,
 * default 5000 ms). The key is RGTP_KEY (RGTP_ERR_INVALID_ARG if unset or
 * malformed). Errors: RGTP_ERR_TIMEOUT (no Manifest: exposer unreachable or
 * wrong Exposure_ID), RGTP_ERR_NOT_SUPPORTED (unusable Manifest),
 * RGTP_ERR_SOCKET.
 */
int rgtp_pull_start(rgtp_socket_t* sock, const struct sockaddr_storage* server,
                    const uint8_t exposure_id[16], const rgtp_config_t* cfg,
                    rgtp_surface_t** out);

/** redgiant addition. rgtp_pull_start with an explicit 32-byte key. */
int rgtp_pull_start_with_key(rgtp_socket_t* sock, const struct sockaddr_storage* server,
                             const uint8_t exposure_id[16], const uint8_t key[32],
                             const rgtp_config_t* cfg, rgtp_surface_t** out);

/**
 * redgiant addition. rgtp_pull_start from a ticket string (address, Exposure_ID,
 * key, and suite pins: a Manifest announcing another cipher or hash is refused,
 * giving RGTP_ERR_NOT_SUPPORTED). A malformed ticket or unresolvable host:
 * RGTP_ERR_INVALID_ARG.
 */
int rgtp_pull_start_ticket(rgtp_socket_t* sock, const char* ticket,
                           const rgtp_config_t* cfg, rgtp_surface_t** out);

/**
 * Drives the pull until one verified chunk is available and copies it to buf:
 * RGTP_OK with *out_received = its length and *out_chunk_index = its index
 * (it belongs at byte offset index * chunk_size). Chunks come in arrival
 * order, not index order. Every chunk is AEAD-authenticated (and, with
 * merkle_proofs, proof-checked) before it is handed out; the Merkle root over
 * all chunks is checked when the last one arrives. If it does not match (a
 * chunk authentic under the key but with other bytes, which any ticket holder
 * can seal), the wrong chunks are located with proofs and handed out again
 * with the same index: write each over the earlier bytes at its offset. Only
 * the end of stream below says the whole matches the root.
 *   - buf_len smaller than the chunk: RGTP_ERR_INVALID_ARG, *out_received = the
 *     size needed, and the chunk stays queued for the next call.
 *   - after the last chunk was handed out (end of stream): RGTP_OK with
 *     *out_received = 0 and *out_chunk_index = RGTP_CHUNK_INDEX_NONE; by then
 *     rgtp_progress() is 1.0. Every later call returns the same.
 *   - no chunk within the timeout (cfg->timeout_ms, default 10000 ms):
 *     RGTP_ERR_TIMEOUT (call again to keep waiting, unless the pull failed).
 *   - the pull failed: RGTP_ERR_AUTH_FAIL (chunks fail authentication: wrong
 *     key or forged traffic), RGTP_ERR_MERKLE_FAIL, or RGTP_ERR_TIMEOUT (the
 *     exposer stopped answering for the timeout); every later call returns the
 *     same code, and chunks not yet handed out are discarded.
 * Never blocks longer than the timeout. On an exposer surface:
 * RGTP_ERR_INVALID_ARG.
 */
int rgtp_pull_next(rgtp_surface_t* surface, void* buf, size_t buf_len,
                   size_t* out_received, uint32_t* out_chunk_index);

#ifdef __cplusplus
}
#endif

#endif /* RGTP_H */
