/*
 * Counters and gauges shared by every process of one master, in a shared
 * memory zone mapped by the master before it starts any worker and kept
 * across reloads (so counters do not reset when the configuration changes).
 *
 * Modules register what they count while their configuration loads
 * (init_conf) or lazily in a worker; both return the same slot for the same
 * name and labels.  Updates are lock-free atomics; only creating a slot takes
 * the zone's spinlock.  The metrics module prints the table in Prometheus
 * format; nothing else reads it.
 *
 * Names follow Prometheus conventions and start with "facteur_";
 * labels are written as they appear between braces: protocol="smtp".
 */

#ifndef FA_STATS_H
#define FA_STATS_H

#define FA_STATS_COUNTER   1
#define FA_STATS_GAUGE     2

#define FA_STATS_NAME_MAX    80
#define FA_STATS_LABELS_MAX  120
#define FA_STATS_HELP_MAX    120
#define FA_STATS_MAX         2048

struct fa_stat_s {
    int64_t     value;                      /* atomic */
    uint32_t    type;
    uint32_t    used;
    char        name[FA_STATS_NAME_MAX];
    char        labels[FA_STATS_LABELS_MAX];
    char        help[FA_STATS_HELP_MAX];
};

fa_int_t fa_stats_init(fa_log_t *log);      /* once, before the first configuration loads */

/* find or create; NULL (and a log line) when the table is full */
fa_stat_t *fa_stats_get(const char *name, const char *labels, fa_uint_t type,
    const char *help);

#define fa_stat_add(s, n)  __atomic_add_fetch(&(s)->value, (n), __ATOMIC_RELAXED)
#define fa_stat_inc(s)     fa_stat_add(s, 1)
#define fa_stat_dec(s)     fa_stat_add(s, -1)
#define fa_stat_set(s, n)  __atomic_store_n(&(s)->value, (n), __ATOMIC_RELAXED)
#define fa_stat_value(s)   __atomic_load_n(&(s)->value, __ATOMIC_RELAXED)

/* walk the table in creation order; stop when fn returns non-zero */
typedef int (*fa_stats_each_pt)(const fa_stat_t *s, void *data);
void fa_stats_each(fa_stats_each_pt fn, void *data);

uint64_t fa_stats_next_session_id(void);     /* unique across workers */
time_t fa_stats_start_time(void);            /* when the master started */

/* the core's own counters, created by fa_stats_init */
typedef struct {
    fa_stat_t  *accepted;       /* facteur_connections_accepted_total */
    fa_stat_t  *refused;        /* facteur_connections_refused_total */
    fa_stat_t  *active;         /* facteur_connections_active */
    fa_stat_t  *workers;        /* facteur_workers */
    fa_stat_t  *reloads;        /* facteur_config_reloads_total */
    fa_stat_t  *reload_failures;/* facteur_config_reload_failures_total */
} fa_core_stats_t;

extern fa_core_stats_t  fa_core_stats;

#endif /* FA_STATS_H */
