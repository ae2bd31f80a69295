/*
 * rgtp_expose_file FILE [PORT [SECONDS]]
 *
 * Exposes FILE over RGTP on UDP PORT (absent or 0: the RGTP_PORT environment
 * variable, else 9000; RGTP_PORT=0 picks any free port), prints the ticket on the first line of standard output, and serves
 * until SIGINT/SIGTERM or for SECONDS seconds. Written against rgtp.h only.
 */
#define _POSIX_C_SOURCE 200809L
#include <rgtp.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stop = 0;

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static unsigned char* read_file(const char* path, size_t* len) {
    FILE* f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char* buf = malloc(cap);
    for (;;) {
        if (!buf) break;
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        unsigned char* bigger = realloc(buf, cap * 2);
        if (!bigger) { free(buf); buf = NULL; break; }
        buf = bigger;
        cap *= 2;
    }
    if (ferror(f)) { free(buf); buf = NULL; }
    fclose(f);
    *len = n;
    return buf;
}

int main(int argc, char** argv) {
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s FILE [PORT [SECONDS]]\n", argv[0]);
        return 2;
    }
    size_t len = 0;
    unsigned char* data = read_file(argv[1], &len);
    if (!data) {
        perror(argv[1]);
        return 1;
    }
    rgtp_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    const rgtp_config_t* pcfg = NULL;
    if (argc >= 3) {
        cfg.port = (uint16_t)atoi(argv[2]);
        pcfg = &cfg;
    }
    double seconds = argc >= 4 ? atof(argv[3]) : 0.0;

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    int rc = rgtp_init();
    rgtp_socket_t* sock = NULL;
    if (rc == RGTP_OK) rc = rgtp_socket_create(pcfg, &sock);
    rgtp_surface_t* surface = NULL;
    if (rc == RGTP_OK) rc = rgtp_expose(sock, data, len, pcfg, &surface);
    free(data); /* the library sealed its own copy */
    if (rc != RGTP_OK) {
        fprintf(stderr, "rgtp_expose_file: %s (%d)\n", rgtp_strerror(rc), rc);
        rgtp_socket_destroy(sock);
        return 1;
    }

    size_t need = 0;
    char small[8];
    rc = rgtp_get_ticket(surface, small, sizeof small, &need); /* learn the size */
    char* ticket = malloc(need);
    if (!ticket || rgtp_get_ticket(surface, ticket, need, NULL) != RGTP_OK) {
        fprintf(stderr, "rgtp_expose_file: cannot read the ticket\n");
        return 1;
    }
    printf("%s\n", ticket);
    fflush(stdout);
    memset(ticket, 0, need); /* it holds the key */
    free(ticket);

    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!stop) {
        rc = rgtp_poll(surface, 100);
        if (rc != RGTP_OK && rc != RGTP_ERR_TIMEOUT) {
            fprintf(stderr, "rgtp_expose_file: poll: %s (%d)\n", rgtp_strerror(rc), rc);
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (seconds > 0 && (t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 >= seconds)
            break;
    }

    rgtp_stats_t st;
    if (rgtp_get_stats(surface, &st) == RGTP_OK)
        fprintf(stderr, "served %llu bytes in %u chunks\n",
                (unsigned long long)st.bytes_sent, st.chunks_sent);
    rgtp_destroy_surface(surface);
    rgtp_socket_destroy(sock);
    rgtp_cleanup();
    return 0;
}
