/*
 * Shared counters (see fa_stats.h).  One anonymous MAP_SHARED zone, mapped in
 * the master before the first fork, so every worker of every generation sees
 * the same table at the same address.  Slots are only ever added; the
 * spinlock serialises creation, and a slot is published by setting `used`
 * last, so readers (the metrics endpoint) never see a half-written name.
 */

#include "fa_core.h"
#include <sys/mman.h>
#include <sched.h>

typedef struct {
    uint32_t    lock;
    uint32_t    count;
    uint64_t    session_id;
    time_t      start_time;
    fa_stat_t   slots[FA_STATS_MAX];
} fa_stats_zone_t;

static fa_stats_zone_t  *fa_stats_zone;
fa_core_stats_t          fa_core_stats;

static void
fa_stats_lock(void)
{
    while (__atomic_exchange_n(&fa_stats_zone->lock, 1, __ATOMIC_ACQUIRE)) {
        sched_yield();
    }
}

static void
fa_stats_unlock(void)
{
    __atomic_store_n(&fa_stats_zone->lock, 0, __ATOMIC_RELEASE);
}

fa_int_t
fa_stats_init(fa_log_t *log)
{
    void  *p;

    if (fa_stats_zone) {
        return FA_OK;
    }
    p = mmap(NULL, sizeof(fa_stats_zone_t), PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        fa_log_error(FA_LOG_EMERG, log, errno, "mmap(%zu) for counters failed",
                     sizeof(fa_stats_zone_t));
        return FA_ERROR;
    }
    fa_stats_zone = p;
    fa_stats_zone->start_time = time(NULL);

    fa_core_stats.accepted = fa_stats_get("facteur_connections_accepted_total", "",
        FA_STATS_COUNTER, "Client connections accepted.");
    fa_core_stats.refused = fa_stats_get("facteur_connections_refused_total", "",
        FA_STATS_COUNTER, "Connections refused because worker_connections were all in use.");
    fa_core_stats.active = fa_stats_get("facteur_connections_active", "",
        FA_STATS_GAUGE, "Client connections open now.");
    fa_core_stats.workers = fa_stats_get("facteur_workers", "",
        FA_STATS_GAUGE, "Worker processes running the current configuration.");
    fa_core_stats.reloads = fa_stats_get("facteur_config_reloads_total", "",
        FA_STATS_COUNTER, "Configuration reloads that took effect.");
    fa_core_stats.reload_failures = fa_stats_get("facteur_config_reload_failures_total", "",
        FA_STATS_COUNTER, "Configuration reloads refused because the new configuration failed to load.");
    return FA_OK;
}

static fa_stat_t *
fa_stats_find(const char *name, const char *labels)
{
    fa_stat_t  *s;
    uint32_t    n = __atomic_load_n(&fa_stats_zone->count, __ATOMIC_ACQUIRE);

    for (uint32_t i = 0; i < n; i++) {
        s = &fa_stats_zone->slots[i];
        if (strcmp(s->name, name) == 0 && strcmp(s->labels, labels) == 0) {
            return s;
        }
    }
    return NULL;
}

fa_stat_t *
fa_stats_get(const char *name, const char *labels, fa_uint_t type, const char *help)
{
    fa_stat_t  *s;

    if (fa_stats_zone == NULL) {
        return NULL;
    }
    labels = labels ? labels : "";
    s = fa_stats_find(name, labels);
    if (s) {
        return s;
    }

    fa_stats_lock();
    s = fa_stats_find(name, labels);          /* another process may have won */
    if (s == NULL && fa_stats_zone->count < FA_STATS_MAX
        && strlen(name) < FA_STATS_NAME_MAX && strlen(labels) < FA_STATS_LABELS_MAX)
    {
        s = &fa_stats_zone->slots[fa_stats_zone->count];
        fa_snprintf(s->name, sizeof(s->name), "%s", name);
        fa_snprintf(s->labels, sizeof(s->labels), "%s", labels);
        fa_snprintf(s->help, sizeof(s->help), "%s", help ? help : "");
        s->type = (uint32_t) type;
        s->value = 0;
        s->used = 1;
        __atomic_store_n(&fa_stats_zone->count, fa_stats_zone->count + 1, __ATOMIC_RELEASE);
    }
    fa_stats_unlock();

    if (s == NULL) {
        fa_log_error(FA_LOG_WARN, &fa_log_stderr, 0,
                     "counter \"%s{%s}\" not created: table full or name too long",
                     name, labels);
    }
    return s;
}

void
fa_stats_each(fa_stats_each_pt fn, void *data)
{
    uint32_t  n;

    if (fa_stats_zone == NULL) {
        return;
    }
    n = __atomic_load_n(&fa_stats_zone->count, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < n; i++) {
        if (fn(&fa_stats_zone->slots[i], data)) {
            return;
        }
    }
}

uint64_t
fa_stats_next_session_id(void)
{
    static uint64_t  local;

    if (fa_stats_zone == NULL) {
        return ++local;
    }
    return __atomic_add_fetch(&fa_stats_zone->session_id, 1, __ATOMIC_RELAXED);
}

time_t
fa_stats_start_time(void)
{
    return fa_stats_zone ? fa_stats_zone->start_time : time(NULL);
}
