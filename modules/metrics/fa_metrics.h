/*
 * The metrics module: a Prometheus text endpoint on its own listeners.
 *
 *   metrics {
 *       listen 127.0.0.1:9025;          # "listen ADDR:PORT ssl;" for HTTPS
 *       metrics_timeout 30s;            # idle keep-alive and request timeout
 *   }
 *
 * GET or HEAD /metrics answers every counter of fa_stats (all workers share
 * the table), facteur_uptime_seconds and facteur_build_info.  The HTTP side
 * is deliberately small: HTTP/1.0 and 1.1, keep-alive, pipelining, no
 * request bodies, no chunked encoding.
 */

#ifndef FA_METRICS_H
#define FA_METRICS_H

#include "fa_core.h"

#define FA_METRICS_MAX_LINE     8192      /* request line and each header */
#define FA_METRICS_MAX_HEADERS  100

typedef struct {
    fa_msec_t     timeout;
    fa_array_t   *listen;                 /* of fa_listen_opt_t, NULL if none */
} fa_metrics_conf_t;

extern fa_module_t   fa_metrics_module;
extern fa_stat_t    *fa_metrics_requests;  /* facteur_metrics_requests_total */

void fa_metrics_http_init(fa_connection_t *c);

#endif /* FA_METRICS_H */
