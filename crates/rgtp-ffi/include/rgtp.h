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
#define RGTP_ERR_RATE_LIMITED   -13  /* RGTP: not returned (the exposer drops, the puller sees loss); gtUDP: no free exchange identity */
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

/**
 * redgiant addition. Selects the congestion controller of the pulls started
 * from sock after this call: "delay" (the default), "reno" or "cubic". Pulls
 * already running keep theirs. Errors: RGTP_ERR_INVALID_ARG (NULL or unknown
 * name, NULL or destroyed sock).
 */
int rgtp_socket_set_congestion(rgtp_socket_t* sock, const char* name);

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

/* ------------------------------------------------------------ gtUDP */

/*
 * redgiant addition. gtUDP (spec/gtudp.md): reliable datagrams over UDP. Each
 * datagram goes out as a DATA repeated until the peer's RECV, which is
 * answered with an ACK; the receiver hands every datagram out once, however
 * often its DATA arrived. Datagrams may arrive out of order.
 *
 * A handle owns one bound UDP socket and has no thread of its own: the
 * protocol (repeating DATA and RECV, answering peers) only makes progress
 * inside rgtp_gtudp_* calls on it, so keep calling rgtp_gtudp_recv_from (or
 * rgtp_gtudp_flush) to stay responsive, and flush before closing to let open
 * exchanges end. A handle is meant for one thread at a time; calls on one
 * handle from several threads are serialized (each waits for the one in
 * progress). Handles are checked like the others (see CONVENTIONS).
 *
 * Addresses are text: "IPv4:port", "[IPv6]:port" or "host:port" (resolved;
 * an address of the handle's own family is preferred).
 */
typedef struct rgtp_gtudp rgtp_gtudp_t;

/** Room rgtp_gtudp_recv_from needs for the sender's address text and its NUL. */
#define RGTP_GTUDP_ADDRSTRLEN 64

/**
 * Options of rgtp_gtudp_open. Set size to sizeof(rgtp_gtudp_options_t): fields
 * beyond a smaller size take their defaults, so code built against this header
 * keeps working when the struct grows. A zero-initialised struct with size set
 * (or NULL options) means: no magic, type codes 1d/5f/ae (the reference
 * profile), timers from measured round trips, no authentication.
 *   magic, magic_len   bytes every datagram starts with (NULL/0: none).
 *   types, types_len   DATA, RECV and ACK type codes of equal length,
 *                      concatenated (types_len = 3 * code length; NULL/0: the
 *                      reference codes). Equal or empty codes are refused.
 *   reference_timers   true: repeat after the reference implementation's fixed
 *                      0.5 s instead of a timeout from measured round trips.
 *   key                NULL: plain profile. Otherwise 32 bytes shared with the
 *                      peer: the authenticated profile (copied).
 *   session            this endpoint's session under key; never reuse one with
 *                      the same key. 0 draws a random one (recommended).
 * Both ends must agree on magic, types and key, or nothing is delivered.
 */
typedef struct rgtp_gtudp_options {
    size_t         size;
    const uint8_t* magic;
    size_t         magic_len;
    const uint8_t* types;
    size_t         types_len;
    bool           reference_timers;
    const uint8_t* key;
    uint64_t       session;
} rgtp_gtudp_options_t;

/**
 * Counters of a gtUDP handle. Set size to sizeof(rgtp_gtudp_stats_t) before
 * the call; the library fills the fields that fit in size and sets size to
 * the number of bytes it wrote.
 */
typedef struct rgtp_gtudp_stats {
    size_t   size;
    uint64_t datagrams_in;   /* UDP datagrams received */
    uint64_t malformed;      /* dropped: too short, wrong magic, unknown type, trailing bytes */
    uint64_t delivered;      /* datagrams handed out (queued for rgtp_gtudp_recv_from) */
    uint64_t duplicates;     /* repeated DATA recognised and not handed out again */
    uint64_t data_sent;      /* DATA sent, first copies */
    uint64_t data_repeated;  /* DATA sent again */
    uint64_t recv_sent;      /* RECV sent */
    uint64_t ack_sent;       /* ACK sent */
    uint64_t confirmed;      /* own datagrams confirmed by their RECV */
    uint64_t failed;         /* own datagrams given up on */
    uint64_t auth_failed;    /* authenticated profile: dropped, tag did not match */
    uint64_t replayed;       /* authenticated profile: dropped as a replay */
    uint64_t dropped;        /* delivered but discarded: 65536 were already waiting unread */
} rgtp_gtudp_stats_t;

/**
 * Binds a UDP socket at bind_addr (e.g. "127.0.0.1:0" for any free port) and
 * writes the handle to *out. opts may be NULL (defaults). Errors:
 * RGTP_ERR_INVALID_ARG (NULL bind_addr or out, unparsable address, bad
 * options: size smaller than a size_t, types_len not a multiple of 3, equal
 * codes, a NULL pointer with a non-zero length), RGTP_ERR_SOCKET (bind failed,
 * e.g. the port is in use).
 */
int rgtp_gtudp_open(const char* bind_addr, const rgtp_gtudp_options_t* opts,
                    rgtp_gtudp_t** out);

/**
 * Closes the socket and frees the handle (NULL: no-op). Exchanges still open
 * end unanswered: call rgtp_gtudp_flush first.
 */
void rgtp_gtudp_close(rgtp_gtudp_t* h);

/**
 * Writes the bound address ("127.0.0.1:40000") and a NUL to buf. A buf of
 * RGTP_GTUDP_ADDRSTRLEN bytes always suffices; a NULL or smaller buf gives
 * RGTP_ERR_INVALID_ARG and writes nothing.
 */
int rgtp_gtudp_local_addr(const rgtp_gtudp_t* h, char* buf, size_t len);

/**
 * Sends len bytes at data (copied; NULL when len is 0) to the address "to" as
 * one datagram and returns at once; the protocol repeats it during later
 * calls. The outcome is not reported: use rgtp_gtudp_send_confirmed to learn
 * it. Errors: RGTP_ERR_INVALID_ARG (NULL or unresolvable "to", len above what
 * the profile allows: 65507 bytes minus the header, and minus the sealing
 * overhead with a key), RGTP_ERR_SOCKET.
 */
int rgtp_gtudp_send_to(rgtp_gtudp_t* h, const uint8_t* data, size_t len, const char* to);

/**
 * Sends like rgtp_gtudp_send_to, then waits until the peer confirms the
 * datagram (its RECV): RGTP_OK. RGTP_ERR_TIMEOUT: no RECV within timeout_ms,
 * or the peer never answered any repetition (nobody listening, wrong profile
 * or key); the datagram may or may not have been delivered. Returns within
 * timeout_ms plus a scheduling slice. Other errors as rgtp_gtudp_send_to, and
 * RGTP_ERR_RATE_LIMITED when too many exchanges are open to take one more.
 * Datagrams that arrive meanwhile are kept for rgtp_gtudp_recv_from.
 */
int rgtp_gtudp_send_confirmed(rgtp_gtudp_t* h, const uint8_t* data, size_t len,
                              const char* to, uint32_t timeout_ms);

/**
 * Waits for the next datagram and copies it to buf, like recvfrom(2):
 * *len_out is set to its FULL length; if that exceeds cap, only cap bytes are
 * copied and the rest is lost (as UDP truncates). buf may be NULL when cap is
 * 0. If from is not NULL, the sender's address text and a NUL are written to
 * it; from_len must then be at least RGTP_GTUDP_ADDRSTRLEN (checked before
 * anything is received). timeout_ms: < 0 waits for ever, 0 takes only what
 * has already arrived. Errors: RGTP_ERR_TIMEOUT (nothing within timeout_ms),
 * RGTP_ERR_INVALID_ARG (NULL len_out, NULL buf with cap > 0, from_len too
 * small), RGTP_ERR_SOCKET.
 */
int rgtp_gtudp_recv_from(rgtp_gtudp_t* h, uint8_t* buf, size_t cap, size_t* len_out,
                         char* from, size_t from_len, int32_t timeout_ms);

/**
 * Runs the protocol until every open exchange (own datagrams and peers'
 * datagrams awaiting their ACK) has ended: RGTP_OK, or RGTP_ERR_TIMEOUT if
 * some were still open after timeout_ms. Datagrams that arrive meanwhile are
 * kept for rgtp_gtudp_recv_from.
 */
int rgtp_gtudp_flush(rgtp_gtudp_t* h, uint32_t timeout_ms);

/** Fills *out with the handle's counters (see rgtp_gtudp_stats_t for size). */
int rgtp_gtudp_stats(const rgtp_gtudp_t* h, rgtp_gtudp_stats_t* out);
/* ------------------------------------------------------------ TEJ */

/*
 * redgiant addition. TEJ (tej-protoc v1, spec/tej.md): frames of files and a
 * message over one TCP connection, both directions. Every call blocks until it
 * is done; calls on one connection from several threads take turns (each
 * waits for the one in progress). Status values are 0 to 127 (2 is a ping).
 *
 * Errors: RGTP_ERR_INVALID_ARG (NULL or wrong handle, bad argument, a file to
 * send that cannot be opened), RGTP_ERR_TIMEOUT (the timeout passed; the
 * connection goes on), RGTP_ERR_SOCKET (connection failed or broke, the peer
 * broke the protocol or closed inside a frame, a received file could not be
 * written; after a protocol error or a break every later call on that
 * connection fails the same way). rgtp_tej_last_error() tells why.
 */
typedef struct rgtp_tej rgtp_tej_t;                   /* one connection */
typedef struct rgtp_tej_listener rgtp_tej_listener_t; /* a listening socket */
typedef struct rgtp_tej_frame rgtp_tej_frame_t;       /* a received frame */

/**
 * The reason of the last rgtp_tej_* call that failed on this thread, as a
 * NUL-terminated string ("" if none); valid until the next rgtp_tej_* call on
 * this thread.
 */
const char* rgtp_tej_last_error(void);

/** Connects to addr, "HOST:PORT" ("[V6]:PORT" for IPv6 literals; 10 s per address). */
int rgtp_tej_connect(const char* addr, rgtp_tej_t** out);

/**
 * Sends one frame: the files at paths[0..n_paths] (each under its base name,
 * read as the socket takes their bytes, never whole in memory) and msg. Returns
 * once all of it was handed to the socket. paths may be NULL if n_paths is 0,
 * msg if msg_len is 0.
 */
int rgtp_tej_send(rgtp_tej_t* t, uint8_t status, const char* const* paths, size_t n_paths,
                  const uint8_t* msg, size_t msg_len);

/**
 * Sends one frame of in-memory files: file i is named names[i] (UTF-8) and
 * holds lens[i] bytes at datas[i] (NULL if lens[i] is 0). The arrays may be NULL
 * if n_files is 0.
 */
int rgtp_tej_send_bytes(rgtp_tej_t* t, uint8_t status, const char* const* names,
                        const uint8_t* const* datas, const size_t* lens, size_t n_files,
                        const uint8_t* msg, size_t msg_len);

/** Sends a ping frame (status 2; TEJ has no answer to it). */
int rgtp_tej_ping(rgtp_tej_t* t);

/** Ping frames received so far on t (receiving skips them). */
int rgtp_tej_pings_received(const rgtp_tej_t* t, uint64_t* out);

/**
 * Receives the next frame, writing its files under dir (created if missing) as
 * they arrive, each under its name made safe (no path separator, no leading
 * dot, no ".."; "unnamed" if blank) and never over an existing file (a taken
 * name gets -1, -2... before its extension). On RGTP_OK, *out is the frame
 * (free it with rgtp_tej_frame_free), or NULL once the peer closed the
 * connection between frames. timeout_ms: -1 waits for ever, 0 takes only what
 * already arrived. On RGTP_ERR_TIMEOUT inside a frame, the next call with the
 * same dir goes on with it. A file left incomplete by an error is removed.
 */
int rgtp_tej_recv_to_dir(rgtp_tej_t* t, const char* dir, int32_t timeout_ms,
                         rgtp_tej_frame_t** out);

/** The frame's status (0 for NULL). */
uint8_t rgtp_tej_frame_status(const rgtp_tej_frame_t* f);

/** How many files the frame held (0 for NULL). */
size_t rgtp_tej_frame_file_count(const rgtp_tej_frame_t* f);

/**
 * File i's name as the peer sent it (untrusted: not a path), NUL-terminated;
 * *out_len (if not NULL) is its length in bytes. NULL if i is out of range.
 * Valid until rgtp_tej_frame_free.
 */
const char* rgtp_tej_frame_file_name(const rgtp_tej_frame_t* f, size_t i, size_t* out_len);

/** Where file i was saved, NUL-terminated, as rgtp_tej_frame_file_name. */
const char* rgtp_tej_frame_file_path(const rgtp_tej_frame_t* f, size_t i, size_t* out_len);

/** File i's size in bytes (0 if out of range). */
uint64_t rgtp_tej_frame_file_size(const rgtp_tej_frame_t* f, size_t i);

/** The frame's message and its length in *out_len (if not NULL); valid until freed. */
const uint8_t* rgtp_tej_frame_message(const rgtp_tej_frame_t* f, size_t* out_len);

/** Frees a frame (NULL: nothing). The files stay on disk. */
void rgtp_tej_frame_free(rgtp_tej_frame_t* f);

/**
 * Ends the stream towards the peer once everything sent is out, closes the
 * connection and frees t, whatever the result.
 */
int rgtp_tej_close(rgtp_tej_t* t);

/** Listens on bind, "HOST:PORT" (port 0: any free port). */
int rgtp_tej_listen(const char* bind, rgtp_tej_listener_t** out);

/**
 * Writes the listening address, "HOST:PORT" and a NUL, to buf. *out_len (if
 * not NULL) is set to the size needed including the NUL, also on failure; if
 * buf is NULL or buf_len is smaller, returns RGTP_ERR_INVALID_ARG. 64 bytes
 * always suffice.
 */
int rgtp_tej_listener_addr(const rgtp_tej_listener_t* l, char* buf, size_t buf_len,
                           size_t* out_len);

/** Waits up to timeout_ms (-1: for ever) for a connection: RGTP_ERR_TIMEOUT if none. */
int rgtp_tej_accept(rgtp_tej_listener_t* l, int32_t timeout_ms, rgtp_tej_t** out);

/** Stops listening and frees l (NULL: nothing). Accepted connections go on. */
void rgtp_tej_listener_close(rgtp_tej_listener_t* l);

/* ------------------------------------------------------------ Files */

/*
 * redgiant addition. Files and directory trees as one exposure set, as the
 * rgtp send and rgtp get commands move them: every file an exposure of its
 * own, a catalog naming them, one ticket (the catalog's) for the whole set.
 * A failing call leaves its reason for rgtp_files_last_error().
 *
 * Errors: RGTP_ERR_INVALID_ARG (NULL or wrong handle, bad options, a bad
 * ticket, a path that cannot be sent), RGTP_ERR_TIMEOUT (no answer from the
 * sender, or the transfer stalled), RGTP_ERR_AUTH_FAIL (the key does not
 * match), RGTP_ERR_MERKLE_FAIL (data that does not match its root),
 * RGTP_ERR_SOCKET (socket or file I/O, or the sender broke the protocol).
 */
typedef struct rgtp_sender rgtp_sender_t; /* a set being served */

/** rgtp_get's result when the progress callback asked it to stop (not an error code). */
#define RGTP_FILES_STOPPED 1

/** Kinds of rgtp_files_event_t. */
#define RGTP_FILES_CATALOG 0 /* the catalog arrived: files, entries, total (bytes) */
#define RGTP_FILES_STARTED 1 /* a file's pull starts: index, path, total (its size) */
#define RGTP_FILES_BYTES   2 /* bytes of a file so far: index, path, done, total */
#define RGTP_FILES_RETRY   3 /* no answer; the file is tried again: index, path, message */
#define RGTP_FILES_DONE    4 /* a file is in place: index, path, done (its bytes),
                                seconds, skipped, total_done */
#define RGTP_FILES_FAILED  5 /* a file's pull failed: index, path, message (what was
                                kept for the next run, or NULL) */

/**
 * Options of rgtp_send_start. Set size to sizeof(rgtp_send_options_t): fields
 * beyond a smaller size take their defaults. NULL options or zero fields mean:
 *   bind                 "HOST:PORT" to serve on (NULL: "0.0.0.0:0", any free port)
 *   advertise            host written into the ticket (NULL: the bound address,
 *                        or 127.0.0.1 when bound to every interface)
 *   key                  NULL: a random key; otherwise 32 bytes (the same files
 *                        then give the same ticket after a restart)
 *   max_rate             bytes per second for everything served (0: no cap)
 *   max_rate_per_connection, max_rate_per_file   caps told to each puller
 *   chunk_size           plaintext bytes per chunk (0: 1200)
 *   keep_symlinks        send symbolic links as links (false: refuse them)
 */
typedef struct rgtp_send_options {
    size_t         size;
    const char*    bind;
    const char*    advertise;
    const uint8_t* key;
    uint64_t       max_rate;
    uint64_t       max_rate_per_connection;
    uint64_t       max_rate_per_file;
    uint32_t       chunk_size;
    bool           keep_symlinks;
} rgtp_send_options_t;

/**
 * Options of rgtp_get, sized as rgtp_send_options_t. Zero fields mean:
 *   parallel_files       files fetched at once, each over its own socket (0: 1; at most 64)
 *   retries              tries again per file while the sender is silent (1, 2, 4 ... 32 s apart)
 *   restart              start every file over, ignoring what an earlier run kept
 *   max_rate             bytes per second for the whole transfer, shared by the
 *                        files in flight; max_rate_per_file, max_rate_per_connection
 *   connect_timeout_ms   wait for the sender's first answer (0: 5000)
 *   idle_timeout_ms      without progress before a file gives up (0: 10000)
 *   sources, n_sources   more senders of the same set, each "HOST:PORT" or its own
 *                        ticket (at most 64; NULL/0: only the ticket's): every file is
 *                        pulled from all of them at once, each chunk verified whatever
 *                        its source, a slow or lying one dropped (as `rgtp get --from`)
 */
typedef struct rgtp_get_options {
    size_t   size;
    uint32_t parallel_files;
    uint32_t retries;
    bool     restart;
    uint64_t max_rate;
    uint64_t max_rate_per_file;
    uint64_t max_rate_per_connection;
    uint32_t connect_timeout_ms;
    uint32_t idle_timeout_ms;
    const char* const* sources;
    size_t   n_sources;
} rgtp_get_options_t;

/** One progress event of rgtp_get; see the kinds above. Strings valid during the call only. */
typedef struct rgtp_files_event {
    size_t      size;       /* sizeof(rgtp_files_event_t) of the library */
    int         kind;       /* RGTP_FILES_* */
    uint64_t    index;      /* the file's place among the catalog's files */
    const char* path;       /* the file's path in the set (NULL for CATALOG) */
    uint64_t    done;
    uint64_t    total;
    uint64_t    files;
    uint64_t    entries;
    uint64_t    total_done;
    double      seconds;
    bool        skipped;    /* DONE: already in place from an earlier run */
    const char* message;
} rgtp_files_event_t;

/**
 * Progress callback of rgtp_get. Called on threads rgtp_get starts (one per
 * file fetched at once) and for CATALOG on the calling thread, never two calls
 * at once. A file's events come in order (STARTED, BYTES with growing counts,
 * at most every 50 ms and at its end, DONE); a file already in place gets DONE
 * only. Return 0 to go on, anything else to stop the transfer: rgtp_get then
 * returns RGTP_FILES_STOPPED, partial files kept for a later run.
 */
typedef int (*rgtp_files_progress_cb)(const rgtp_files_event_t* ev, void* ctx);

/** What rgtp_get fetched. Set size before the call; it is set to the bytes written. */
typedef struct rgtp_get_result {
    size_t   size;
    uint64_t files;    /* regular files */
    uint64_t entries;  /* catalog entries: files, directories, links */
    uint64_t bytes;    /* bytes of the files */
    double   seconds;  /* wall time of the files' pulls */
} rgtp_get_result_t;

/**
 * The reason of the last rgtp_send_start, rgtp_sender_* or rgtp_get call that
 * failed on this thread ("" if none); valid until the next such call on it.
 */
const char* rgtp_files_last_error(void);

/**
 * Seals the files and directory trees at paths[0..n_paths] (each named in the
 * set by its last component; a directory brings everything under it), binds,
 * and serves them from a background thread until rgtp_sender_stop. Writes the
 * handle to *out. opts may be NULL.
 */
int rgtp_send_start(const char* const* paths, size_t n_paths,
                    const rgtp_send_options_t* opts, rgtp_sender_t** out);

/**
 * Copies the set's ticket and a NUL into buf if buf_len is enough; returns the
 * size needed including the NUL (0 for a bad handle).
 */
size_t rgtp_sender_ticket(const rgtp_sender_t* s, char* buf, size_t buf_len);

/**
 * What a sender has served, summed over the set's exposures, as of its last
 * update (about every 200 ms while serving). Set size to
 * sizeof(rgtp_sender_stats_t) before the call; it is set to the bytes written.
 *   pulls      Pull_Requests answered (one per file a receiver starts)
 *   requests   chunk requests (NAKs) accepted
 *   dropped    datagrams dropped: malformed, for no exposure of the set, of no
 *              common version, with a bad token, over a full queue, of a type a
 *              sender never receives
 *   seconds    since rgtp_send_start
 *   serving    still serving (false once stopped, or after a serving error)
 */
typedef struct rgtp_sender_stats {
    size_t   size;
    uint64_t datagrams_in;
    uint64_t bytes_in;
    uint64_t datagrams_out;
    uint64_t bytes_out;
    uint64_t pulls;
    uint64_t requests;
    uint64_t chunks_sent;
    uint64_t parity_sent;
    uint64_t dropped;
    double   seconds;
    bool     serving;
} rgtp_sender_stats_t;

/** Fills out with what s has served so far; RGTP_OK, or an error for a bad handle. */
int rgtp_sender_stats(const rgtp_sender_t* s, rgtp_sender_stats_t* out);

/** Stops serving and waits for it; the serving error, if there was one. */
int rgtp_sender_stop(rgtp_sender_t* s);

/** Stops serving if needed and frees s (NULL: nothing). */
void rgtp_sender_free(rgtp_sender_t* s);

/**
 * Fetches the set ticket names into dest (created if missing; NULL: "."),
 * blocking until done: the catalog, every path checked, then the files, each
 * verified against its root, resumable, with modes and times restored. opts,
 * cb and out may be NULL. Returns RGTP_OK, RGTP_FILES_STOPPED or an error.
 */
int rgtp_get(const char* ticket, const char* dest, const rgtp_get_options_t* opts,
             rgtp_files_progress_cb cb, void* ctx, rgtp_get_result_t* out);

/* ------------------------------------------------------------ Flows */

/*
 * redgiant addition. Flows (spec/flow.md): messages (SDUs) between named
 * applications, each flow with a QoS that selects its layers (retransmission,
 * ordering, pacing, a peer timeout), in the manner of Ouroboros' flow API.
 *
 * A node is one UDP socket with a driver thread. Names are looked up and
 * registered as spec/flow.md section 5 says: RGTP_FLOW_NAMES, the file
 * directory (RGTP_FLOW_DIR), the directory server (RGTP_FLOW_DIRECTORY); a node
 * opened while RGTP_FLOW_BIND is set (`rgtp flow bind NAME -- COMMAND`) registers
 * that name. A joined flow (rgtp_flow_join) belongs to a broadcast group: a
 * write reaches every other member, a read returns an SDU from any of them.
 *
 * Every call may be made from any thread; one thread may block in
 * rgtp_flow_read while another writes or deallocates the same flow. A flow
 * handle stays valid until rgtp_flow_free: rgtp_flow_dealloc ends the flow
 * (threads blocked on it return RGTP_FLOW_ERR_DEALLOCATED) but keeps the
 * handle, so free it only once no other thread uses it. Timeouts are in
 * milliseconds, -1 waiting without limit. A failing call leaves its reason
 * for rgtp_flow_last_error().
 */
typedef struct rgtp_flow_node rgtp_flow_node_t; /* a UDP socket carrying flows */
typedef struct rgtp_flow rgtp_flow_t;           /* a flow, or a group membership */
typedef struct rgtp_flow_set rgtp_flow_set_t;   /* flows whose events are waited for */

/* Flow error codes (besides RGTP_ERR_INVALID_ARG, _TIMEOUT, _SOCKET, _NOT_SUPPORTED). */
#define RGTP_FLOW_ERR_WOULD_BLOCK  (-100) /* a non-blocking call found nothing to do */
#define RGTP_FLOW_ERR_DEALLOCATED  (-101) /* deallocated on this end */
#define RGTP_FLOW_ERR_PEER_GONE    (-102) /* the peer deallocated it or went silent */
#define RGTP_FLOW_ERR_UNKNOWN_NAME (-103) /* no node registered the name */
#define RGTP_FLOW_ERR_REFUSED      (-104) /* the peer refused the allocation */
#define RGTP_FLOW_ERR_TOO_LARGE    (-105) /* SDU over the limit, or over the buffer */
#define RGTP_FLOW_ERR_PERMISSION   (-106) /* the access mode forbids the call */

/* Flags (rgtp_flow_set_flags), valued as Ouroboros' fccntl flags. A new flow is RDWR. */
#define RGTP_FLOW_F_RDONLY   00       /* reads only */
#define RGTP_FLOW_F_WRONLY   01       /* writes only */
#define RGTP_FLOW_F_RDWR     02       /* both */
#define RGTP_FLOW_F_ACCMODE  03
#define RGTP_FLOW_F_DOWN     04       /* reported: the flow ended */
#define RGTP_FLOW_F_RNOBLOCK 01000    /* reads return RGTP_FLOW_ERR_WOULD_BLOCK, never wait */
#define RGTP_FLOW_F_WNOBLOCK 02000    /* writes likewise when the send buffer is full */
#define RGTP_FLOW_F_RNOPART  010000   /* an SDU larger than the read buffer is an error
                                         (RGTP_FLOW_ERR_TOO_LARGE, *len_out its size, the
                                         SDU kept); without it, the rest comes next read */
#define RGTP_FLOW_F_WNOPART  0200000  /* a write over the SDU limit is an error; without
                                         it, the first limit's worth is written */

/* Event types of rgtp_flow_event_t, valued as Ouroboros' fqueue types. */
#define RGTP_FLOW_EV_PKT     1   /* SDUs wait on the flow */
#define RGTP_FLOW_EV_DOWN    2   /* the peer went silent past the QoS timeout */
#define RGTP_FLOW_EV_UP      4   /* the flow came up */
#define RGTP_FLOW_EV_ALLOC   8   /* a peer asks for a flow: rgtp_flow_accept gives it */
#define RGTP_FLOW_EV_DEALLOC 16  /* the peer deallocated the flow */

/**
 * A QoS specification (Ouroboros' qosspec_t plus size). Set size to
 * sizeof(rgtp_flow_qos_t): fields beyond a smaller size take the defaults.
 *   delay (ms), bandwidth (bit/s), availability (class of nines), loss (0: lost
 *   SDUs are retransmitted), ber (errors per billion bits), in_order (1: in
 *   order), max_gap (ms), cypher_s (bits; this stack has no encryption yet:
 *   non-zero is RGTP_ERR_NOT_SUPPORTED), timeout (peer timeout, ms; 0: none).
 * NULL for a QoS means the defaults of an unqualified Ouroboros qosspec.
 */
typedef struct rgtp_flow_qos {
    size_t   size;
    uint32_t delay;
    uint64_t bandwidth;
    uint8_t  availability;
    uint32_t loss;
    uint32_t ber;
    uint8_t  in_order;
    uint32_t max_gap;
    uint16_t cypher_s;
    uint32_t timeout;
} rgtp_flow_qos_t;

/** One event of a flow set: the flow's id (rgtp_flow_id) and RGTP_FLOW_EV_*. */
typedef struct rgtp_flow_event {
    uint64_t flow;
    int      kind;
} rgtp_flow_event_t;

/**
 * The reason of the last rgtp_flow_* call that failed on this thread ("" if
 * none); valid until the next rgtp_flow_* call on it.
 */
const char* rgtp_flow_last_error(void);

/** Fills *out with the preset called name (raw, best_effort, video, voice, data, …). */
int rgtp_flow_qos_preset(const char* name, rgtp_flow_qos_t* out);

/**
 * Opens a node bound to bind ("HOST:PORT"; NULL: "0.0.0.0:0"), names from the
 * environment; registers RGTP_FLOW_BIND if set.
 */
int rgtp_flow_node_open(const char* bind, rgtp_flow_node_t** out);

/**
 * Closes the node (NULL: nothing): its flows end (calls on them fail), its names
 * are withdrawn. No other thread may be inside a call on n meanwhile.
 */
void rgtp_flow_node_close(rgtp_flow_node_t* n);

/** Copies the bound "HOST:PORT" and a NUL if len is enough; the size needed (0: bad handle). */
size_t rgtp_flow_node_addr(const rgtp_flow_node_t* n, char* buf, size_t len);

/** Accepts flows to name from now on and publishes it (file, directory server). */
int rgtp_flow_register(rgtp_flow_node_t* n, const char* name);

/** Stops accepting flows to name and withdraws it. */
int rgtp_flow_unregister(rgtp_flow_node_t* n, const char* name);

/**
 * Allocates a flow to name (looked up) or NAME@HOST:PORT with qos (NULL: the
 * defaults), waiting up to timeout_ms for the peer. RGTP_FLOW_ERR_UNKNOWN_NAME,
 * RGTP_FLOW_ERR_REFUSED or RGTP_ERR_TIMEOUT say why not.
 */
int rgtp_flow_alloc(rgtp_flow_node_t* n, const char* name, const rgtp_flow_qos_t* qos,
                    int32_t timeout_ms, rgtp_flow_t** out);

/** The next flow a peer allocated to a registered name; its QoS to *qos_out (may be NULL). */
int rgtp_flow_accept(rgtp_flow_node_t* n, int32_t timeout_ms, rgtp_flow_qos_t* qos_out,
                     rgtp_flow_t** out);

/**
 * Joins the broadcast group name (spec/flow.md 5.3) with qos, waiting up to
 * timeout_ms for the members found to answer. The handle reads and writes
 * like a flow; it cannot be put in a flow set.
 */
int rgtp_flow_join(rgtp_flow_node_t* n, const char* name, const rgtp_flow_qos_t* qos,
                   int32_t timeout_ms, rgtp_flow_t** out);

/**
 * Writes data[0..len] as one SDU, waiting up to timeout_ms for room in the send
 * buffer (RGTP_FLOW_F_WNOBLOCK: never). Bytes written to *written (may be NULL).
 */
int rgtp_flow_write(rgtp_flow_t* f, const uint8_t* data, size_t len, int32_t timeout_ms,
                    size_t* written);

/**
 * Reads the next SDU (or the rest of one read in part) into buf[0..cap],
 * waiting up to timeout_ms (RGTP_FLOW_F_RNOBLOCK: never); its length to
 * *len_out. After the SDUs that came before the peer left: RGTP_FLOW_ERR_PEER_GONE.
 */
int rgtp_flow_read(rgtp_flow_t* f, uint8_t* buf, size_t cap, size_t* len_out,
                   int32_t timeout_ms);

/** Waits up to timeout_ms until everything written was sent (and acknowledged, with ARQ). */
int rgtp_flow_flush(rgtp_flow_t* f, int32_t timeout_ms);

/** Sets the flags (RGTP_FLOW_F_*; DOWN is ignored). */
int rgtp_flow_set_flags(rgtp_flow_t* f, uint32_t flags);

/** The flags to *out, with RGTP_FLOW_F_DOWN if the flow ended. */
int rgtp_flow_flags(const rgtp_flow_t* f, uint32_t* out);

/** The flow's id, as events name it (UINT64_MAX for a joined flow). */
int rgtp_flow_id(const rgtp_flow_t* f, uint64_t* out);

/** The flow's QoS. */
int rgtp_flow_qos(const rgtp_flow_t* f, rgtp_flow_qos_t* out);

/**
 * What the flow holds (either pointer may be NULL, not both): SDUs received and
 * not read yet (an SDU read in part counts) to *rx, fragments written and not
 * yet sent, or with ARQ not yet acknowledged, to *tx; a group sums its flows.
 */
int rgtp_flow_queue_lens(const rgtp_flow_t* f, size_t* rx, size_t* tx);

/**
 * Copies the layers the flow runs ("reorder + arq + timeout 120s", "none") and
 * a NUL if len is enough; the size needed (0: bad handle).
 */
size_t rgtp_flow_layers(const rgtp_flow_t* f, char* buf, size_t len);

/** Copies "NAME@HOST:PORT" of the peer (a group: "NAME#*"), as rgtp_flow_layers. */
size_t rgtp_flow_peer(const rgtp_flow_t* f, char* buf, size_t len);

/**
 * Ends the flow (idempotent) and wakes the threads waiting on it; the handle
 * stays. Lingers first, up to 2 s, until what was written went out (and was
 * acknowledged, on a flow with retransmission).
 */
int rgtp_flow_dealloc(rgtp_flow_t* f);

/** Deallocates the flow if needed and frees the handle (NULL: nothing). */
void rgtp_flow_free(rgtp_flow_t* f);

/** A new, empty flow set of node n. */
int rgtp_flow_set_create(rgtp_flow_node_t* n, rgtp_flow_set_t** out);

/** Frees the set (NULL: nothing); its flows go on. */
void rgtp_flow_set_destroy(rgtp_flow_set_t* s);

/** Adds f (taking it from any other set); SDUs already waiting are reported. */
int rgtp_flow_set_add(rgtp_flow_set_t* s, rgtp_flow_t* f);

/** Removes f; its events already queued stay. */
int rgtp_flow_set_remove(rgtp_flow_set_t* s, rgtp_flow_t* f);

/** Reports allocations to the node's names (RGTP_FLOW_EV_ALLOC) too, or stops. */
int rgtp_flow_set_watch_allocs(rgtp_flow_set_t* s, bool on);

/**
 * Waits up to timeout_ms for events, writes up to cap of them to events and
 * their count to *n_out; the rest wait for the next call. RGTP_ERR_TIMEOUT
 * (and *n_out 0) if none came.
 */
int rgtp_flow_set_wait(rgtp_flow_set_t* s, rgtp_flow_event_t* events, size_t cap,
                       size_t* n_out, int32_t timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* RGTP_H */
