/* Prints the size, alignment and every field offset of the public structs. */
#include <rgtp.h>
#include <stdalign.h>
#include <stdio.h>

#define S(T) printf("size " #T " %zu\nalign " #T " %zu\n", sizeof(T), alignof(T))
#define F(T, f) printf("offset " #T "." #f " %zu\n", offsetof(T, f))

int main(void) {
    S(rgtp_allocator_t);
    F(rgtp_allocator_t, alloc); F(rgtp_allocator_t, free); F(rgtp_allocator_t, ctx);
    S(rgtp_config_t);
    F(rgtp_config_t, chunk_size); F(rgtp_config_t, window_size); F(rgtp_config_t, fec_enabled);
    F(rgtp_config_t, fec_k); F(rgtp_config_t, fec_n); F(rgtp_config_t, merkle_proofs);
    F(rgtp_config_t, raw_ethernet); F(rgtp_config_t, eth_iface); F(rgtp_config_t, eth_vlan_id);
    F(rgtp_config_t, eth_vlan_pcp); F(rgtp_config_t, port); F(rgtp_config_t, timeout_ms);
    F(rgtp_config_t, memory_profile); F(rgtp_config_t, allocator);
    S(rgtp_stats_t);
    F(rgtp_stats_t, bytes_sent); F(rgtp_stats_t, bytes_received); F(rgtp_stats_t, chunks_sent);
    F(rgtp_stats_t, chunks_received); F(rgtp_stats_t, auth_failures);
    F(rgtp_stats_t, malformed_packets); F(rgtp_stats_t, fec_recoveries); F(rgtp_stats_t, nak_sent);
    F(rgtp_stats_t, packet_loss_rate); F(rgtp_stats_t, rtt_us); F(rgtp_stats_t, pull_pressure);
    S(rgtp_latency_stats_t);
    F(rgtp_latency_stats_t, mean_us); F(rgtp_latency_stats_t, jitter_us);
    F(rgtp_latency_stats_t, p99_us); F(rgtp_latency_stats_t, min_us);
    F(rgtp_latency_stats_t, max_us); F(rgtp_latency_stats_t, sample_count);
    S(rgtp_log_event_t);
    F(rgtp_log_event_t, timestamp_ns); F(rgtp_log_event_t, level); F(rgtp_log_event_t, component);
    F(rgtp_log_event_t, message); F(rgtp_log_event_t, kv); F(rgtp_log_event_t, kv[1].value);
    F(rgtp_log_event_t, kv_count);
    S(rgtp_send_options_t);
    F(rgtp_send_options_t, bind); F(rgtp_send_options_t, advertise); F(rgtp_send_options_t, key);
    F(rgtp_send_options_t, max_rate); F(rgtp_send_options_t, max_rate_per_connection);
    F(rgtp_send_options_t, max_rate_per_file); F(rgtp_send_options_t, chunk_size);
    F(rgtp_send_options_t, keep_symlinks);
    S(rgtp_get_options_t);
    F(rgtp_get_options_t, parallel_files); F(rgtp_get_options_t, retries);
    F(rgtp_get_options_t, restart); F(rgtp_get_options_t, max_rate);
    F(rgtp_get_options_t, max_rate_per_file); F(rgtp_get_options_t, max_rate_per_connection);
    F(rgtp_get_options_t, connect_timeout_ms); F(rgtp_get_options_t, idle_timeout_ms);
    F(rgtp_get_options_t, sources); F(rgtp_get_options_t, n_sources);
    S(rgtp_files_event_t);
    F(rgtp_files_event_t, kind); F(rgtp_files_event_t, index); F(rgtp_files_event_t, path);
    F(rgtp_files_event_t, done); F(rgtp_files_event_t, total); F(rgtp_files_event_t, files);
    F(rgtp_files_event_t, entries); F(rgtp_files_event_t, total_done);
    F(rgtp_files_event_t, seconds); F(rgtp_files_event_t, skipped);
    F(rgtp_files_event_t, message);
    S(rgtp_get_result_t);
    F(rgtp_get_result_t, files); F(rgtp_get_result_t, entries); F(rgtp_get_result_t, bytes);
    F(rgtp_get_result_t, seconds);
    S(rgtp_sender_stats_t);
    F(rgtp_sender_stats_t, datagrams_in); F(rgtp_sender_stats_t, bytes_in);
    F(rgtp_sender_stats_t, datagrams_out); F(rgtp_sender_stats_t, bytes_out);
    F(rgtp_sender_stats_t, pulls); F(rgtp_sender_stats_t, requests);
    F(rgtp_sender_stats_t, chunks_sent); F(rgtp_sender_stats_t, parity_sent);
    F(rgtp_sender_stats_t, dropped); F(rgtp_sender_stats_t, seconds);
    F(rgtp_sender_stats_t, serving);
    printf("const RGTP_FILES_STOPPED %d\n", RGTP_FILES_STOPPED);
    printf("const RGTP_FILES_FAILED %d\n", RGTP_FILES_FAILED);
    printf("const RGTP_CHUNK_INDEX_NONE %lu\n", (unsigned long)RGTP_CHUNK_INDEX_NONE);
    printf("const RGTP_ERR_INTERNAL %d\n", RGTP_ERR_INTERNAL);
    printf("const RGTP_ERR_TIMEOUT %d\n", RGTP_ERR_TIMEOUT);
    printf("const RGTP_LOG_DEBUG %d\n", RGTP_LOG_DEBUG);
    printf("const RGTP_MEMORY_PROFILE_MINIMAL %d\n", RGTP_MEMORY_PROFILE_MINIMAL);
    return 0;
}
