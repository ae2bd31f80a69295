/*
 * adapter — an rgtp-conformance endpoint for a C implementation of the upstream ABI.
 *
 *   adapter pull TICKET OUT [--proofs]
 *                              pull TICKET (rgtp://HOST:PORT/ID#KEY) into OUT, asking
 *                              for Merkle proofs with --proofs
 *   adapter expose FILE PORT   serve FILE on UDP PORT, print its ticket, serve until killed
 *
 * Exit status: 0 done, 1 failed, 2 usage, 127 unsupported (a ticket that is not
 * IPv4 HOST:PORT, e.g. raw Ethernet). Plug it in with
 *
 *   rgtp-conformance puller --cmd "adapter pull {ticket} {out} {proofs}"
 *   rgtp-conformance exposer --cmd "adapter expose {file} {port}"
 *
 * It calls only the symbols of the upstream header (include/rgtp/rgtp.h of the red-giant
 * project): keys and ports travel the only way that header allows, through the
 * environment the library reads (RGTP_KEY, RGTP_PORT) with NULL configs. The upstream
 * header cannot tell a puller the chunk size, so pulled chunks are kept until the end
 * and placed at index × the largest chunk seen (every chunk but the last is full).
 * Nor can it pass the suite a ticket pins (?cipher=…&hash=…): those are ignored, and
 * a conformance run shows it (PUL-025).
 */
#define _POSIX_C_SOURCE 200809L
#include <rgtp.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define UNSUPPORTED 127

static int hex_decode(const char *s, size_t n, uint8_t *out) {
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

static void hex_encode(const uint8_t *b, size_t n, char *out) {
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", b[i]);
    out[2 * n] = '\0';
}

/* rgtp://HOST:PORT/ID32[?...]#KEY64 with an IPv4 HOST. Returns 0, -1 (malformed) or
 * UNSUPPORTED (a valid ticket this adapter cannot use). */
static int parse_ticket(const char *t, struct sockaddr_in *addr, uint8_t id[16], char key[65]) {
    if (strncmp(t, "rgtp://", 7) != 0) return -1;
    const char *host = t + 7;
    const char *slash = strchr(host, '/');
    const char *hash = strchr(host, '#');
    if (!slash || !hash || hash < slash) return -1;
    const char *colon = memchr(host, ':', (size_t)(slash - host));
    if (host[0] == '[' || !colon) return UNSUPPORTED; /* IPv6 or a MAC address */
    char h[64];
    size_t hl = (size_t)(colon - host);
    if (hl == 0 || hl >= sizeof h) return -1;
    memcpy(h, host, hl);
    h[hl] = '\0';
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, h, &addr->sin_addr) != 1) return UNSUPPORTED;
    if (hex_decode(slash + 1, 16, id) != 0) return -1;
    if (strlen(hash + 1) != 64) return -1;
    memcpy(key, hash + 1, 65);
    return 0;
}

struct chunk {
    uint32_t index;
    size_t len;
    unsigned char *data;
};

static int pull(const char *ticket, const char *out, int proofs) {
    struct sockaddr_in in;
    uint8_t id[16];
    char key[65];
    int p = parse_ticket(ticket, &in, id, key);
    if (p == UNSUPPORTED) return UNSUPPORTED;
    if (p != 0) {
        fprintf(stderr, "adapter: malformed ticket\n");
        return 2;
    }
    /* rgtp_pull_start takes no key: the library reads RGTP_KEY. */
    setenv("RGTP_KEY", key, 1);
    struct sockaddr_storage server;
    memset(&server, 0, sizeof server);
    memcpy(&server, &in, sizeof in);

    rgtp_init();
    rgtp_socket_t *sock = NULL;
    rgtp_surface_t *surf = NULL;
    int rc = rgtp_socket_create(NULL, &sock);
    /* A zeroed config means defaults; the key still comes from RGTP_KEY. */
    rgtp_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.merkle_proofs = proofs != 0;
    if (rc == RGTP_OK) rc = rgtp_pull_start(sock, &server, id, proofs ? &cfg : NULL, &surf);
    if (rc != RGTP_OK) {
        fprintf(stderr, "adapter: rgtp_pull_start: %s (%d)\n", rgtp_strerror(rc), rc);
        rgtp_socket_destroy(sock);
        return 1;
    }
    size_t cap = 65536, n = 0, room = 1024, largest = 0;
    unsigned char *buf = malloc(cap);
    struct chunk *chunks = malloc(room * sizeof *chunks);
    for (;;) {
        size_t got = 0;
        uint32_t index = 0;
        rc = rgtp_pull_next(surf, buf, cap, &got, &index);
        if (rc != RGTP_OK) break; /* failures are final */
        if (got == 0 && index == RGTP_CHUNK_INDEX_NONE) break; /* end of stream */
        if (n == room) {
            room *= 2;
            chunks = realloc(chunks, room * sizeof *chunks);
        }
        chunks[n].index = index;
        chunks[n].len = got;
        chunks[n].data = malloc(got ? got : 1);
        memcpy(chunks[n].data, buf, got);
        if (got > largest) largest = got;
        n++;
    }
    float progress = rgtp_progress(surf);
    rgtp_destroy_surface(surf);
    rgtp_socket_destroy(sock);
    rgtp_cleanup();
    free(buf);
    int status = 0;
    if (rc != RGTP_OK || progress != 1.0f) {
        fprintf(stderr, "adapter: pull failed: %s (%d), progress %.3f\n", rgtp_strerror(rc), rc,
                progress);
        status = 1;
    } else {
        /* Written beside OUT and renamed: OUT appears only complete. */
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.part", out);
        FILE *f = fopen(tmp, "wb");
        for (size_t i = 0; f && i < n; i++) {
            if (fseek(f, (long)chunks[i].index * (long)largest, SEEK_SET) != 0 ||
                fwrite(chunks[i].data, 1, chunks[i].len, f) != chunks[i].len) {
                fclose(f);
                f = NULL;
            }
        }
        if (!f || fclose(f) != 0 || rename(tmp, out) != 0) {
            perror(out);
            remove(tmp);
            status = 1;
        }
    }
    for (size_t i = 0; i < n; i++) free(chunks[i].data);
    free(chunks);
    return status;
}

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        unsigned char *bigger = realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    if (ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

static int expose(const char *path, const char *port) {
    size_t len = 0;
    unsigned char *data = read_file(path, &len);
    if (!data) {
        perror(path);
        return 1;
    }
    /* A fresh key for this exposure, handed to the library through RGTP_KEY. */
    uint8_t k[32];
    FILE *r = fopen("/dev/urandom", "rb");
    if (!r || fread(k, 1, sizeof k, r) != sizeof k) {
        fprintf(stderr, "adapter: no random bytes for the key\n");
        return 1;
    }
    fclose(r);
    char key[65];
    hex_encode(k, sizeof k, key);
    setenv("RGTP_KEY", key, 1);
    setenv("RGTP_PORT", port, 1);

    rgtp_init();
    rgtp_socket_t *sock = NULL;
    rgtp_surface_t *surf = NULL;
    int rc = rgtp_socket_create(NULL, &sock);
    if (rc == RGTP_OK) rc = rgtp_expose(sock, data, len, NULL, &surf);
    uint8_t id[16];
    if (rc == RGTP_OK) rc = rgtp_get_exposure_id(surf, id);
    if (rc != RGTP_OK) {
        fprintf(stderr, "adapter: rgtp_expose: %s (%d)\n", rgtp_strerror(rc), rc);
        return 1;
    }
    free(data);
    char idhex[33];
    hex_encode(id, sizeof id, idhex);
    printf("rgtp://127.0.0.1:%s/%s#%s\n", port, idhex, key);
    fflush(stdout);
    for (;;) {
        rc = rgtp_poll(surf, 100);
        if (rc != RGTP_OK && rc != RGTP_ERR_TIMEOUT) {
            fprintf(stderr, "adapter: rgtp_poll: %s (%d)\n", rgtp_strerror(rc), rc);
            return 1;
        }
    }
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "pull") == 0) return pull(argv[2], argv[3], 0);
    if (argc == 5 && strcmp(argv[1], "pull") == 0 && strcmp(argv[4], "--proofs") == 0)
        return pull(argv[2], argv[3], 1);
    if (argc == 4 && strcmp(argv[1], "expose") == 0) return expose(argv[2], argv[3]);
    fprintf(stderr, "usage: %s pull TICKET OUT [--proofs] | %s expose FILE PORT\n", argv[0],
            argv[0]);
    return 2;
}
