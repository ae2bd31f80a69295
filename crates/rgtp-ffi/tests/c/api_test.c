/*
 * C-level tests of librgtp, written against rgtp.h only.
 * Usage: api_test NAME   (run by tests/c_abi.rs; exit 0 = pass)
 * Exposers bind RGTP_PORT, which the runner sets to 0 (any free port).
 */
#define _GNU_SOURCE
#include <rgtp.h>

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHECK(c)                                                             \
    do {                                                                     \
        if (!(c)) {                                                          \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
            exit(1);                                                         \
        }                                                                    \
    } while (0)
#define CHECK_RC(expr, want)                                                 \
    do {                                                                     \
        int rc_ = (expr);                                                    \
        if (rc_ != (want)) {                                                 \
            fprintf(stderr, "%s:%d: %s returned %d (%s), want %d\n", __FILE__, \
                    __LINE__, #expr, rc_, rgtp_strerror(rc_), (want));       \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static unsigned char* random_bytes(size_t n, unsigned seed) {
    unsigned char* p = malloc(n ? n : 1);
    uint64_t x = 0x9E3779B97F4A7C15ull ^ seed;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        p[i] = (unsigned char)x;
    }
    return p;
}

/* ---- an exposer served by its own thread */
typedef struct {
    rgtp_socket_t* sock;
    rgtp_surface_t* surface;
    pthread_t thread;
    atomic_int stop;
    atomic_long polls;
    struct sockaddr_storage addr;
    uint8_t id[16];
    uint8_t key[32];
} server_t;

/* How long each serving thread's rgtp_poll may wait for a datagram. */
static atomic_int serve_poll_ms = 50;

static void* serve(void* arg) {
    server_t* s = arg;
    while (!atomic_load(&s->stop)) {
        int rc = rgtp_poll(s->surface, atomic_load(&serve_poll_ms));
        if (rc != RGTP_OK && rc != RGTP_ERR_TIMEOUT) {
            fprintf(stderr, "poll: %d\n", rc);
            exit(1);
        }
        atomic_fetch_add(&s->polls, 1);
    }
    return NULL;
}

static uint16_t ticket_port(rgtp_surface_t* s) {
    char t[512];
    size_t need = 0;
    CHECK_RC(rgtp_get_ticket(s, t, sizeof t, &need), RGTP_OK);
    const char* colon = strchr(t + strlen("rgtp://"), ':');
    CHECK(colon);
    return (uint16_t)atoi(colon + 1);
}

static void server_start(server_t* s, const unsigned char* data, size_t len,
                         const rgtp_config_t* cfg, int threaded) {
    memset(s, 0, sizeof *s);
    CHECK_RC(rgtp_socket_create(NULL, &s->sock), RGTP_OK);
    CHECK_RC(rgtp_expose(s->sock, data, len, cfg, &s->surface), RGTP_OK);
    CHECK_RC(rgtp_get_exposure_id(s->surface, s->id), RGTP_OK);
    CHECK_RC(rgtp_get_key(s->surface, s->key), RGTP_OK);
    struct sockaddr_in* a = (struct sockaddr_in*)&s->addr;
    a->sin_family = AF_INET;
    a->sin_port = htons(ticket_port(s->surface));
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (threaded) CHECK(pthread_create(&s->thread, NULL, serve, s) == 0);
}

static void server_stop(server_t* s) {
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    rgtp_destroy_surface(s->surface);
    rgtp_socket_destroy(s->sock);
}

/* Pulls to completion; returns the reassembled bytes (len via *out_len). */
static unsigned char* pull_all(rgtp_surface_t* p, size_t total, size_t chunk_size) {
    unsigned char* out = calloc(total ? total : 1, 1);
    unsigned char buf[65536];
    size_t got_bytes = 0;
    for (;;) {
        size_t got = 0;
        uint32_t idx = 0;
        CHECK_RC(rgtp_pull_next(p, buf, sizeof buf, &got, &idx), RGTP_OK);
        if (got == 0) {
            CHECK(idx == RGTP_CHUNK_INDEX_NONE);
            break;
        }
        CHECK((size_t)idx * chunk_size + got <= total);
        memcpy(out + (size_t)idx * chunk_size, buf, got);
        got_bytes += got;
    }
    CHECK(got_bytes == total);
    CHECK(rgtp_progress(p) == 1.0f);
    return out;
}

/* ---- log capture */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_seen[8192];
static int log_events = 0, log_kv_max = 0, log_bad = 0;

static void on_log(const rgtp_log_event_t* ev, void* ctx) {
    pthread_mutex_lock(&log_mu);
    if (ctx != (void*)0x1234 || ev->level < RGTP_LOG_ERROR || ev->level > RGTP_LOG_DEBUG ||
        !ev->component || !ev->message || ev->kv_count < 0 || ev->kv_count > 8 ||
        ev->timestamp_ns < 1600000000ull * 1000000000ull)
        log_bad++;
    for (int i = 0; i < ev->kv_count; i++)
        if (!ev->kv[i].key || !ev->kv[i].value) log_bad++;
    if (ev->kv_count > log_kv_max) log_kv_max = ev->kv_count;
    log_events++;
    if (strlen(log_seen) + strlen(ev->message) + 2 < sizeof log_seen) {
        strcat(log_seen, ev->message);
        strcat(log_seen, "|");
    }
    pthread_mutex_unlock(&log_mu);
}

/* ------------------------------------------------------------ tests */

static int t_strerror(void) {
    const char* seen[16];
    for (int code = 0; code >= -15; code--) {
        const char* s = rgtp_strerror(code);
        CHECK(s && *s);
        CHECK(strcmp(s, rgtp_strerror(-999)) != 0);
        for (int j = 0; j < -code; j++) CHECK(strcmp(seen[j], s) != 0);
        seen[-code] = s;
    }
    int unknown[] = {1, 7, -16, -100, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof *unknown; i++) {
        const char* s = rgtp_strerror(unknown[i]);
        CHECK(s && *s);
    }
    const char* v = rgtp_version();
    int a, b, c;
    CHECK(v && sscanf(v, "%d.%d.%d", &a, &b, &c) == 3);
    return 0;
}

static void* fake_alloc(size_t n, void* ctx) {
    (void)ctx;
    return malloc(n);
}

static int t_handles(void) {
    CHECK_RC(rgtp_init(), RGTP_OK);
    CHECK_RC(rgtp_init(), RGTP_OK); /* idempotent */
    uint8_t id[16], key[32];
    rgtp_stats_t st;
    rgtp_latency_stats_t lat;
    size_t got, need;
    uint32_t idx;
    char buf[512];
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);

    /* NULL handles */
    CHECK_RC(rgtp_socket_create(NULL, NULL), RGTP_ERR_INVALID_ARG);
    CHECK_RC(rgtp_expose(NULL, "x", 1, NULL, NULL), RGTP_ERR_INVALID_ARG);
    CHECK_RC(rgtp_poll(NULL, 0), RGTP_ERR_INVALID_ARG);
    CHECK_RC(rgtp_get_exposure_id(NULL, id), RGTP_ERR_INVALID_ARG);
    CHECK_RC(rgtp_get_key(NULL, key), RGTP_ERR_INVALID_ARG);
    CHECK_RC(rgtp_get_ticket(NULL, buf, sizeof buf, &need), RGTP_ERR_INVALID_ARG);
    CHECK_RC(rgtp_get_stats(NULL, &st), RGTP_ERR_INVALID_ARG);
    CHECK_RC(rgtp_get_latency_stats(NULL, &lat), RGTP_ERR_INVALID_ARG);
    CHECK_RC(rgtp_pull_next(NULL, buf, sizeof buf, &got, &idx), RGTP_ERR_INVALID_ARG);
    CHECK_RC(rgtp_pull_start(NULL, &ss, id, NULL, NULL), RGTP_ERR_INVALID_ARG);
    CHECK_RC(rgtp_pull_start_ticket(NULL, "x", NULL, NULL), RGTP_ERR_INVALID_ARG);
    CHECK_RC(rgtp_pull_start_with_key(NULL, &ss, id, key, NULL, NULL), RGTP_ERR_INVALID_ARG);
    CHECK(rgtp_progress(NULL) == 0.0f);
    rgtp_destroy_surface(NULL);
    rgtp_socket_destroy(NULL);
    CHECK(rgtp_socket_create_ccsds("/dev/null", NULL) == NULL);

    /* allocator, log level, unsupported config */
    CHECK_RC(rgtp_set_allocator(NULL), RGTP_OK);
    rgtp_allocator_t al = {0};
    al.alloc = fake_alloc;
    CHECK_RC(rgtp_set_allocator(&al), RGTP_ERR_NOT_SUPPORTED);
    CHECK_RC(rgtp_set_log_level(4), RGTP_ERR_INVALID_ARG);
    CHECK_RC(rgtp_set_log_level(RGTP_LOG_INFO), RGTP_OK);
    rgtp_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.raw_ethernet = true;
    rgtp_socket_t* sock = NULL;
    CHECK_RC(rgtp_socket_create(&cfg, &sock), RGTP_ERR_NOT_SUPPORTED);
    CHECK(sock == NULL);

    /* wrong kinds */
    CHECK_RC(rgtp_socket_create(NULL, &sock), RGTP_OK);
    rgtp_surface_t* as_surface = (rgtp_surface_t*)sock;
    CHECK_RC(rgtp_poll(as_surface, 0), RGTP_ERR_INVALID_ARG);
    CHECK_RC(rgtp_get_stats(as_surface, &st), RGTP_ERR_INVALID_ARG);
    CHECK_RC(rgtp_pull_next(as_surface, buf, sizeof buf, &got, &idx), RGTP_ERR_INVALID_ARG);
    CHECK(rgtp_progress(as_surface) == 0.0f);
    rgtp_destroy_surface(as_surface); /* a socket: refused, not freed */
    CHECK_RC(rgtp_expose(sock, NULL, 5, NULL, NULL), RGTP_ERR_INVALID_ARG);
    rgtp_surface_t* ex = NULL;
    CHECK_RC(rgtp_expose(sock, "hello", 5, NULL, &ex), RGTP_OK);
    CHECK_RC(rgtp_expose((rgtp_socket_t*)ex, "hello", 5, NULL, &ex), RGTP_ERR_INVALID_ARG);
    rgtp_socket_destroy((rgtp_socket_t*)ex); /* a surface: refused, not freed */
    CHECK_RC(rgtp_pull_next(ex, buf, sizeof buf, &got, &idx), RGTP_ERR_INVALID_ARG);
    CHECK_RC(rgtp_pull_next(ex, buf, sizeof buf, NULL, &idx), RGTP_ERR_INVALID_ARG);
    CHECK_RC(rgtp_get_exposure_id(ex, NULL), RGTP_ERR_INVALID_ARG);
    CHECK_RC(rgtp_get_stats(ex, NULL), RGTP_ERR_INVALID_ARG);
    CHECK(rgtp_progress(ex) == 1.0f);
    /* ticket buffer protocol */
    need = 0;
    CHECK_RC(rgtp_get_ticket(ex, buf, 10, &need), RGTP_ERR_INVALID_ARG);
    CHECK(need > 100 && need < sizeof buf);
    CHECK_RC(rgtp_get_ticket(ex, NULL, 0, &need), RGTP_ERR_INVALID_ARG);
    CHECK_RC(rgtp_get_ticket(ex, buf, need, NULL), RGTP_OK);
    CHECK(strlen(buf) + 1 == need && strncmp(buf, "rgtp://127.0.0.1:", 17) == 0);
    CHECK(strstr(buf, "?cipher=chacha20-poly1305&hash=blake2b-256#"));
    /* the Manifest's shape */
    uint64_t total = 0;
    uint32_t chunk = 0, count = 0;
    CHECK_RC(rgtp_get_manifest_info(ex, &total, &chunk, &count), RGTP_OK);
    CHECK(total == 5 && chunk == 1200 && count == 1);
    CHECK_RC(rgtp_get_manifest_info(ex, NULL, NULL, &count), RGTP_OK);
    CHECK_RC(rgtp_get_manifest_info(NULL, &total, &chunk, &count), RGTP_ERR_INVALID_ARG);
    CHECK_RC(rgtp_get_manifest_info(as_surface, &total, &chunk, &count), RGTP_ERR_INVALID_ARG);
    /* an exposure needs no key argument; empty data is allowed */
    rgtp_surface_t* empty = NULL;
    CHECK_RC(rgtp_expose(sock, NULL, 0, NULL, &empty), RGTP_OK);
    rgtp_destroy_surface(empty);
    /* the socket may go first: its surfaces own their UDP sockets */
    rgtp_socket_destroy(sock);
    CHECK_RC(rgtp_poll(ex, 0), RGTP_ERR_TIMEOUT);
    rgtp_destroy_surface(ex);
    rgtp_cleanup();
    return 0;
}

static int t_poll_timeout(void) {
    rgtp_socket_t* sock = NULL;
    rgtp_surface_t* ex = NULL;
    CHECK_RC(rgtp_socket_create(NULL, &sock), RGTP_OK);
    CHECK_RC(rgtp_expose(sock, "data", 4, NULL, &ex), RGTP_OK);
    int waits[] = {0, 10, 200, 500};
    for (size_t i = 0; i < sizeof waits / sizeof *waits; i++) {
        double t0 = now_s();
        CHECK_RC(rgtp_poll(ex, waits[i]), RGTP_ERR_TIMEOUT);
        double el = (now_s() - t0) * 1000.0;
        fprintf(stderr, "poll(%d) took %.1f ms\n", waits[i], el);
        CHECK(el >= waits[i] * 0.9 - 1 && el <= waits[i] + 100);
    }
    rgtp_destroy_surface(ex);
    rgtp_socket_destroy(sock);
    return 0;
}

/* A whole transfer: too-small buffer, reassembly, stats, latency, logs, proofs + FEC. */
static int t_transfer(void) {
    CHECK_RC(rgtp_init(), RGTP_OK);
    CHECK_RC(rgtp_set_log_level(RGTP_LOG_INFO), RGTP_OK);
    CHECK_RC(rgtp_set_log_callback(on_log, (void*)0x1234), RGTP_OK);
    for (int variant = 0; variant < 2; variant++) {
        size_t total = 1000000 + 77;
        unsigned char* data = random_bytes(total, 1 + variant);
        rgtp_config_t cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.chunk_size = variant ? 1000 : 0;
        cfg.merkle_proofs = variant;
        cfg.fec_enabled = variant;
        cfg.fec_n = variant ? 20 : 0;
        cfg.fec_k = variant ? 16 : 0;
        size_t chunk = variant ? 1000 : 1200;
        server_t s;
        server_start(&s, data, total, &cfg, 1);

        rgtp_socket_t* ps = NULL;
        rgtp_surface_t* p = NULL;
        rgtp_config_t pcfg;
        memset(&pcfg, 0, sizeof pcfg);
        pcfg.merkle_proofs = variant;
        pcfg.timeout_ms = 5000;
        CHECK_RC(rgtp_socket_create(NULL, &ps), RGTP_OK);
        CHECK_RC(rgtp_pull_start_with_key(ps, &s.addr, s.id, s.key, &pcfg, &p), RGTP_OK);
        uint8_t pid[16];
        CHECK_RC(rgtp_get_exposure_id(p, pid), RGTP_OK);
        CHECK(memcmp(pid, s.id, 16) == 0);
        CHECK(rgtp_progress(p) < 1.0f);
        uint64_t ptotal = 0;
        uint32_t pchunk = 0, pcount = 0;
        CHECK_RC(rgtp_get_manifest_info(p, &ptotal, &pchunk, &pcount), RGTP_OK);
        CHECK(ptotal > 0 && pchunk > 0 && pcount == (uint32_t)((ptotal + pchunk - 1) / pchunk));
        /* too small: -2, size needed reported, chunk kept */
        unsigned char tiny[10];
        size_t got = 0;
        uint32_t idx = 0;
        CHECK_RC(rgtp_pull_next(p, tiny, sizeof tiny, &got, &idx), RGTP_ERR_INVALID_ARG);
        CHECK(got == chunk || got == total % chunk);
        size_t wanted = got;
        unsigned char* big = malloc(65536);
        CHECK_RC(rgtp_pull_next(p, big, 65536, &got, &idx), RGTP_OK);
        CHECK(got == wanted);
        CHECK(memcmp(big, data + (size_t)idx * chunk, got) == 0);
        /* ... and the rest, checking stats concurrently with the serving thread */
        unsigned char* out = calloc(total, 1);
        memcpy(out + (size_t)idx * chunk, big, got);
        size_t n = 1;
        for (;;) {
            CHECK_RC(rgtp_pull_next(p, big, 65536, &got, &idx), RGTP_OK);
            if (got == 0) break;
            memcpy(out + (size_t)idx * chunk, big, got);
            if (++n % 100 == 0) {
                rgtp_stats_t es;
                CHECK_RC(rgtp_get_stats(s.surface, &es), RGTP_OK);
                float pr = rgtp_progress(p);
                CHECK(pr >= 0.0f && pr < 1.0f);
            }
        }
        CHECK(idx == RGTP_CHUNK_INDEX_NONE);
        CHECK(memcmp(out, data, total) == 0);
        CHECK(rgtp_progress(p) == 1.0f);
        /* end of stream is sticky */
        CHECK_RC(rgtp_pull_next(p, big, 65536, &got, &idx), RGTP_OK);
        CHECK(got == 0 && idx == RGTP_CHUNK_INDEX_NONE);

        rgtp_stats_t es, ps_;
        rgtp_latency_stats_t el, pl;
        usleep(100000); /* let the snapshot catch up with the last send */
        CHECK_RC(rgtp_get_stats(s.surface, &es), RGTP_OK);
        CHECK_RC(rgtp_get_stats(p, &ps_), RGTP_OK);
        CHECK_RC(rgtp_get_latency_stats(s.surface, &el), RGTP_OK);
        CHECK_RC(rgtp_get_latency_stats(p, &pl), RGTP_OK);
        fprintf(stderr,
                "exposer: sent %llu B / %u chunks, recv %llu B, naks %u, pressure %u, "
                "service mean %u p99 %u n %u\n",
                (unsigned long long)es.bytes_sent, es.chunks_sent,
                (unsigned long long)es.bytes_received, es.nak_sent, es.pull_pressure,
                el.mean_us, el.p99_us, el.sample_count);
        fprintf(stderr,
                "puller: recv %llu B / %u chunks, sent %llu B, naks %u, rtt %u us, loss %.3f, "
                "window %u, fec %u, latency mean %u p99 %u min %u max %u n %u\n",
                (unsigned long long)ps_.bytes_received, ps_.chunks_received,
                (unsigned long long)ps_.bytes_sent, ps_.nak_sent, ps_.rtt_us,
                ps_.packet_loss_rate, ps_.pull_pressure, ps_.fec_recoveries, pl.mean_us,
                pl.p99_us, pl.min_us, pl.max_us, pl.sample_count);
        CHECK(es.bytes_sent >= total && es.chunks_sent >= total / chunk);
        CHECK(es.bytes_received > 0 && es.nak_sent > 0);
        CHECK(el.sample_count > 0 && el.max_us >= el.min_us && el.max_us > 0);
        CHECK(ps_.bytes_received >= total && ps_.chunks_received == (total + chunk - 1) / chunk);
        CHECK(ps_.bytes_sent > 0 && ps_.nak_sent > 0 && ps_.rtt_us > 0);
        CHECK(pl.sample_count > 0 && pl.mean_us > 0 && pl.max_us >= pl.p99_us);
        CHECK(ps_.auth_failures == 0);

        rgtp_destroy_surface(p);
        rgtp_socket_destroy(ps);
        server_stop(&s);
        free(big);
        free(out);
        free(data);
    }
    pthread_mutex_lock(&log_mu);
    fprintf(stderr, "log: %d events, max kv %d: %.300s\n", log_events, log_kv_max, log_seen);
    CHECK(log_bad == 0 && log_events > 0 && log_kv_max > 0);
    CHECK(strstr(log_seen, "surface created|"));
    CHECK(strstr(log_seen, "manifest received|"));
    CHECK(strstr(log_seen, "pull complete|"));
    pthread_mutex_unlock(&log_mu);
    /* removing the callback stops delivery */
    CHECK_RC(rgtp_set_log_callback(NULL, NULL), RGTP_OK);
    int before = log_events;
    rgtp_socket_t* sock = NULL;
    rgtp_surface_t* ex = NULL;
    CHECK_RC(rgtp_socket_create(NULL, &sock), RGTP_OK);
    CHECK_RC(rgtp_expose(sock, "x", 1, NULL, &ex), RGTP_OK);
    CHECK(log_events == before);
    rgtp_destroy_surface(ex);
    rgtp_socket_destroy(sock);
    return 0;
}

/* Two threads poll two exposers; a third thread reads their stats meanwhile;
 * the main thread interleaves two pulls, then lets the servers idle (each poll
 * then waits its whole 500 ms) until the reader has read some more. */
static atomic_int stats_stop;
static atomic_long stats_reads;
static server_t* stats_servers;

static void* stats_reader(void* arg) {
    (void)arg;
    while (!atomic_load(&stats_stop)) {
        for (int i = 0; i < 2; i++) {
            rgtp_stats_t st;
            rgtp_latency_stats_t lat;
            double t0 = now_s();
            CHECK_RC(rgtp_get_stats(stats_servers[i].surface, &st), RGTP_OK);
            CHECK_RC(rgtp_get_latency_stats(stats_servers[i].surface, &lat), RGTP_OK);
            /* never waits for a running poll: one that did would wait for most
             * of an idle 500 ms poll; a busy machine's scheduling stays far below */
            CHECK(now_s() - t0 < 0.25);
            atomic_fetch_add(&stats_reads, 1);
        }
        usleep(1000);
    }
    return NULL;
}

static int t_concurrent(void) {
    size_t total = 600000;
    unsigned char* d0 = random_bytes(total, 10);
    unsigned char* d1 = random_bytes(total, 11);
    server_t s[2];
    atomic_store(&serve_poll_ms, 500);
    server_start(&s[0], d0, total, NULL, 1);
    server_start(&s[1], d1, total, NULL, 1);
    stats_servers = s;
    pthread_t reader;
    CHECK(pthread_create(&reader, NULL, stats_reader, NULL) == 0);

    rgtp_socket_t* ps = NULL;
    rgtp_surface_t* p[2];
    CHECK_RC(rgtp_socket_create(NULL, &ps), RGTP_OK);
    for (int i = 0; i < 2; i++)
        CHECK_RC(rgtp_pull_start_with_key(ps, &s[i].addr, s[i].id, s[i].key, NULL, &p[i]), RGTP_OK);
    unsigned char* out[2] = {calloc(total, 1), calloc(total, 1)};
    int done[2] = {0, 0};
    unsigned char buf[2048];
    while (!done[0] || !done[1]) {
        for (int i = 0; i < 2; i++) {
            if (done[i]) continue;
            size_t got;
            uint32_t idx;
            CHECK_RC(rgtp_pull_next(p[i], buf, sizeof buf, &got, &idx), RGTP_OK);
            if (got == 0) done[i] = 1;
            else memcpy(out[i] + (size_t)idx * 1200, buf, got);
        }
    }
    CHECK(memcmp(out[0], d0, total) == 0 && memcmp(out[1], d1, total) == 0);
    CHECK(rgtp_progress(p[0]) == 1.0f && rgtp_progress(p[1]) == 1.0f);
    long during = atomic_load(&stats_reads);
    /* Reads while the servers idle in their polls: count work, not time (the
     * bound only stops a hung reader). */
    for (int waited = 0; atomic_load(&stats_reads) < during + 20 && waited < 30000; waited++)
        usleep(1000);
    atomic_store(&stats_stop, 1);
    pthread_join(reader, NULL);
    fprintf(stderr, "stats reads: %ld during the pulls, %ld in all; polls %ld + %ld\n", during,
            atomic_load(&stats_reads), atomic_load(&s[0].polls), atomic_load(&s[1].polls));
    CHECK(atomic_load(&stats_reads) >= during + 20);
    for (int i = 0; i < 2; i++) {
        rgtp_destroy_surface(p[i]);
        server_stop(&s[i]);
    }
    atomic_store(&serve_poll_ms, 50);
    rgtp_socket_destroy(ps);
    /* two threads polling ONE surface serialize, each within its timeout */
    server_t one;
    server_start(&one, d0, 1000, NULL, 0);
    pthread_t a, b;
    one.stop = 0;
    double t0 = now_s();
    atomic_store(&one.stop, 0);
    CHECK(pthread_create(&a, NULL, serve, &one) == 0);
    CHECK(pthread_create(&b, NULL, serve, &one) == 0);
    usleep(300000);
    atomic_store(&one.stop, 1);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    /* 300 ms plus at most one 50 ms poll each; the margin is for a busy machine,
     * a deadlock would never return */
    CHECK(now_s() - t0 < 3.0);
    rgtp_destroy_surface(one.surface);
    rgtp_socket_destroy(one.sock);
    free(out[0]);
    free(out[1]);
    free(d0);
    free(d1);
    return 0;
}

static int t_wrong_id(void) {
    unsigned char* data = random_bytes(5000, 3);
    server_t s;
    server_start(&s, data, 5000, NULL, 1);
    uint8_t wrong[16];
    memcpy(wrong, s.id, 16);
    wrong[0] ^= 1;
    rgtp_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.timeout_ms = 800;
    rgtp_socket_t* ps = NULL;
    rgtp_surface_t* p = NULL;
    CHECK_RC(rgtp_socket_create(NULL, &ps), RGTP_OK);
    double t0 = now_s();
    CHECK_RC(rgtp_pull_start_with_key(ps, &s.addr, wrong, s.key, &cfg, &p), RGTP_ERR_TIMEOUT);
    double el = now_s() - t0;
    CHECK(p == NULL && el >= 0.7 && el < 2.0);
    /* RGTP_KEY is the key of rgtp_pull_start; the runner unset it */
    CHECK_RC(rgtp_pull_start(ps, &s.addr, s.id, &cfg, &p), RGTP_ERR_INVALID_ARG);
    char hex[65];
    for (int i = 0; i < 32; i++) sprintf(hex + 2 * i, "%02x", s.key[i]);
    setenv("RGTP_KEY", "not hex", 1);
    CHECK_RC(rgtp_pull_start(ps, &s.addr, s.id, &cfg, &p), RGTP_ERR_INVALID_ARG);
    setenv("RGTP_KEY", hex, 1);
    CHECK_RC(rgtp_pull_start(ps, &s.addr, wrong, &cfg, &p), RGTP_ERR_TIMEOUT);
    CHECK_RC(rgtp_pull_start(ps, &s.addr, s.id, &cfg, &p), RGTP_OK);
    unsigned char* out = pull_all(p, 5000, 1200);
    CHECK(memcmp(out, data, 5000) == 0);
    rgtp_destroy_surface(p);
    /* unsupported address family */
    struct sockaddr_storage bad;
    memset(&bad, 0, sizeof bad);
    bad.ss_family = AF_UNIX;
    CHECK_RC(rgtp_pull_start(ps, &bad, s.id, &cfg, &p), RGTP_ERR_INVALID_ARG);
    CHECK_RC(rgtp_pull_start_ticket(ps, "rgtp://nonsense", &cfg, &p), RGTP_ERR_INVALID_ARG);
    rgtp_socket_destroy(ps);
    server_stop(&s);
    free(out);
    free(data);
    return 0;
}

static int t_wrong_key(void) {
    unsigned char* data = random_bytes(200000, 4);
    server_t s;
    server_start(&s, data, 200000, NULL, 1);
    uint8_t key[32];
    memcpy(key, s.key, 32);
    key[31] ^= 0x80;
    rgtp_socket_t* ps = NULL;
    rgtp_surface_t* p = NULL;
    CHECK_RC(rgtp_socket_create(NULL, &ps), RGTP_OK);
    /* A wrong key is told from forged traffic by time: no chunk authenticates
       within the idle timeout (spec 8.11), here 1.5 s. */
    rgtp_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.timeout_ms = 1500;
    /* the Manifest is not keyed: the handshake succeeds */
    CHECK_RC(rgtp_pull_start_with_key(ps, &s.addr, s.id, key, &cfg, &p), RGTP_OK);
    unsigned char buf[2048];
    size_t got = 0;
    uint32_t idx = 0;
    double t0 = now_s();
    CHECK_RC(rgtp_pull_next(p, buf, sizeof buf, &got, &idx), RGTP_ERR_AUTH_FAIL);
    /* reported, not hung: well inside the 10 s default */
    CHECK(now_s() - t0 < 9.0);
    CHECK_RC(rgtp_pull_next(p, buf, sizeof buf, &got, &idx), RGTP_ERR_AUTH_FAIL); /* sticky */
    rgtp_stats_t st;
    CHECK_RC(rgtp_get_stats(p, &st), RGTP_OK);
    CHECK(st.auth_failures > 0 && st.chunks_received == 0);
    CHECK(rgtp_progress(p) < 1.0f);
    rgtp_destroy_surface(p);
    rgtp_socket_destroy(ps);
    server_stop(&s);
    free(data);
    return 0;
}

/* A pre-shared key given to the exposer: the puller holding it pulls; the key wins
 * over RGTP_KEY and over a config; a NULL key is refused. */
static int t_expose_with_key(void) {
    uint8_t psk[32];
    for (int i = 0; i < 32; i++) psk[i] = (uint8_t)(0xa0 + i);
    setenv("RGTP_KEY", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", 1);
    unsigned char* data = random_bytes(100000, 9);
    server_t s;
    memset(&s, 0, sizeof s);
    CHECK_RC(rgtp_socket_create(NULL, &s.sock), RGTP_OK);
    CHECK_RC(rgtp_expose_with_key(s.sock, data, 100000, NULL, NULL, &s.surface),
             RGTP_ERR_INVALID_ARG);
    CHECK(s.surface == NULL);
    CHECK_RC(rgtp_expose_with_key(NULL, data, 100000, psk, NULL, &s.surface),
             RGTP_ERR_INVALID_ARG);
    /* NULL configs: the given key wins over RGTP_KEY */
    CHECK_RC(rgtp_expose_with_key(s.sock, data, 100000, psk, NULL, &s.surface), RGTP_OK);
    unsetenv("RGTP_KEY");
    CHECK_RC(rgtp_get_key(s.surface, s.key), RGTP_OK);
    CHECK(memcmp(s.key, psk, 32) == 0);
    CHECK_RC(rgtp_get_exposure_id(s.surface, s.id), RGTP_OK);
    struct sockaddr_in* a = (struct sockaddr_in*)&s.addr;
    a->sin_family = AF_INET;
    a->sin_port = htons(ticket_port(s.surface));
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(pthread_create(&s.thread, NULL, serve, &s) == 0);
    /* the puller holding the pre-shared key pulls it byte for byte */
    rgtp_socket_t* ps = NULL;
    rgtp_surface_t* p = NULL;
    CHECK_RC(rgtp_socket_create(NULL, &ps), RGTP_OK);
    CHECK_RC(rgtp_pull_start_with_key(ps, &s.addr, s.id, psk, NULL, &p), RGTP_OK);
    unsigned char* out = pull_all(p, 100000, 1200);
    CHECK(memcmp(out, data, 100000) == 0);
    rgtp_destroy_surface(p);
    rgtp_socket_destroy(ps);
    server_stop(&s);
    /* with a config too */
    rgtp_socket_t* xs = NULL;
    rgtp_surface_t* ex = NULL;
    rgtp_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    CHECK_RC(rgtp_socket_create(NULL, &xs), RGTP_OK);
    CHECK_RC(rgtp_expose_with_key(xs, "abc", 3, psk, &cfg, &ex), RGTP_OK);
    uint8_t k2[32];
    CHECK_RC(rgtp_get_key(ex, k2), RGTP_OK);
    CHECK(memcmp(k2, psk, 32) == 0);
    rgtp_destroy_surface(ex);
    rgtp_socket_destroy(xs);
    free(out);
    free(data);
    return 0;
}

/* RGTP_KEY / RGTP_PORT / RGTP_CRYPTO_BACKEND with NULL configs. */
static int t_env(void) {
    const char* hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    setenv("RGTP_KEY", hex, 1);
    rgtp_socket_t* sock = NULL;
    rgtp_surface_t* ex = NULL;
    CHECK_RC(rgtp_socket_create(NULL, &sock), RGTP_OK);
    CHECK_RC(rgtp_expose(sock, "abc", 3, NULL, &ex), RGTP_OK);
    uint8_t key[32];
    CHECK_RC(rgtp_get_key(ex, key), RGTP_OK);
    for (int i = 0; i < 32; i++) CHECK(key[i] == i);
    const char* port = getenv("RGTP_PORT");
    CHECK(port);
    if (atoi(port) != 0) CHECK(ticket_port(ex) == atoi(port));
    rgtp_destroy_surface(ex);
    /* a non-NULL config: random key */
    rgtp_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    CHECK_RC(rgtp_expose(sock, "abc", 3, &cfg, &ex), RGTP_OK);
    CHECK_RC(rgtp_get_key(ex, key), RGTP_OK);
    CHECK(key[0] != 0 || key[1] != 1 || key[2] != 2);
    rgtp_destroy_surface(ex);
    setenv("RGTP_KEY", "abcd", 1);
    CHECK_RC(rgtp_expose(sock, "abc", 3, NULL, &ex), RGTP_ERR_INVALID_ARG);
    unsetenv("RGTP_KEY");
    setenv("RGTP_CRYPTO_BACKEND", "openssl", 1);
    CHECK_RC(rgtp_expose(sock, "abc", 3, NULL, &ex), RGTP_OK);
    char t[512];
    CHECK_RC(rgtp_get_ticket(ex, t, sizeof t, NULL), RGTP_OK);
    CHECK(strstr(t, "cipher=aes-256-gcm&hash=sha256#"));
    rgtp_destroy_surface(ex);
    setenv("RGTP_CRYPTO_BACKEND", "rot13", 1);
    CHECK_RC(rgtp_expose(sock, "abc", 3, NULL, &ex), RGTP_ERR_CRYPTO_INIT);
    unsetenv("RGTP_CRYPTO_BACKEND");
    setenv("RGTP_PORT", "seventy", 1);
    CHECK_RC(rgtp_expose(sock, "abc", 3, NULL, &ex), RGTP_ERR_INVALID_ARG);
    rgtp_socket_destroy(sock);
    return 0;
}

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    const char* n = argv[1];
    if (!strcmp(n, "strerror")) return t_strerror();
    if (!strcmp(n, "handles")) return t_handles();
    if (!strcmp(n, "poll_timeout")) return t_poll_timeout();
    if (!strcmp(n, "transfer")) return t_transfer();
    if (!strcmp(n, "concurrent")) return t_concurrent();
    if (!strcmp(n, "wrong_id")) return t_wrong_id();
    if (!strcmp(n, "wrong_key")) return t_wrong_key();
    if (!strcmp(n, "env")) return t_env();
    if (!strcmp(n, "expose_with_key")) return t_expose_with_key();
    fprintf(stderr, "unknown test %s\n", n);
    return 2;
}
