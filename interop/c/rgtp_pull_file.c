/*
 * rgtp_pull_file TICKET OUT [CHUNK_SIZE]
 *
 * Pulls the exposure a ticket names and writes every verified chunk at
 * index * CHUNK_SIZE (default 1200, the exposer's default) in OUT. Exit status:
 * 0 complete and verified, 1 failure. Written against rgtp.h only.
 */
#define _XOPEN_SOURCE 700
#include <rgtp.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s TICKET OUT\n", argv[0]);
        return 2;
    }
    int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror(argv[2]);
        return 1;
    }
    rgtp_init();
    rgtp_socket_t* sock = NULL;
    rgtp_surface_t* pull = NULL;
    int rc = rgtp_socket_create(NULL, &sock);
    if (rc == RGTP_OK) rc = rgtp_pull_start_ticket(sock, argv[1], NULL, &pull);
    if (rc != RGTP_OK) {
        fprintf(stderr, "rgtp_pull_file: pull_start: %s (%d)\n", rgtp_strerror(rc), rc);
        return 1;
    }
    uint64_t total = 0;
    uint32_t chunk32 = 0, count = 0;
    rgtp_get_manifest_info(pull, &total, &chunk32, &count);
    size_t chunk_size = chunk32;
    fprintf(stderr, "rgtp_pull_file: %llu bytes in %u chunks of %zu\n",
            (unsigned long long)total, (unsigned)count, chunk_size);
    size_t cap = 65536;
    unsigned char* buf = malloc(cap);
    unsigned long chunks = 0;
    for (;;) {
        size_t got = 0;
        uint32_t index = 0;
        rc = rgtp_pull_next(pull, buf, cap, &got, &index);
        if (rc != RGTP_OK) break; /* failures (a stall included) are final */
        if (got == 0 && index == RGTP_CHUNK_INDEX_NONE) break; /* end of stream */
        if (got > chunk_size) {
            fprintf(stderr, "rgtp_pull_file: chunk of %zu bytes > chunk size %zu\n", got, chunk_size);
            rc = RGTP_ERR_INVALID_ARG;
            break;
        }
        if (pwrite(fd, buf, got, (off_t)index * (off_t)chunk_size) != (ssize_t)got) {
            perror("pwrite");
            rc = RGTP_ERR_INTERNAL;
            break;
        }
        chunks++;
    }
    float progress = rgtp_progress(pull);
    rgtp_stats_t st;
    rgtp_get_stats(pull, &st);
    rgtp_destroy_surface(pull);
    rgtp_socket_destroy(sock);
    rgtp_cleanup();
    free(buf);
    close(fd);
    if (rc != RGTP_OK || progress != 1.0f) {
        fprintf(stderr, "rgtp_pull_file: %s (%d), progress %.3f\n", rgtp_strerror(rc), rc, progress);
        return 1;
    }
    fprintf(stderr, "pulled %lu chunks, %llu bytes received\n", chunks,
            (unsigned long long)st.bytes_received);
    return 0;
}
