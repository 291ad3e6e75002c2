/*
 * Connections per client address and server, counted across all the
 * workers: a table in shared memory mapped by the master while the
 * configuration loads (so every worker forked from it shares it), one slot
 * per address and server in use.  Each server has its own count, as each
 * has its own limit: the connections a client holds on the MX do not use
 * up what it may open on submission (Postfix counts per service too).  A
 * server is known by its configuration's address, the same in every
 * worker since they are all forked from the master that loaded it.
 *
 * A slot is taken at accept and given back when the session ends.  The
 * table is small and each operation is a few comparisons under a spinlock
 * (an atomic flag): cheaper than a syscall, and the lock is never held
 * across anything that can block.  When the table is full the connection
 * is let in (and counted nowhere): a busy table must not turn into a
 * denial of service for everybody.
 *
 * A reload maps a new table; sessions of the old workers give their slots
 * back to the old one, which goes when the last of them exits.
 */

#include "fa_smtp_int.h"
#include <sys/mman.h>

#define FA_SMTP_LIMIT_SLOTS  16384

typedef struct {
    int32_t     count;
    uint8_t     family;
    u_char      addr[16];
    uintptr_t   server;          /* the fa_smtp_conf_t, compared only */
} fa_smtp_ip_slot_t;

typedef struct {
    uint32_t            lock;
    fa_smtp_ip_slot_t   slots[FA_SMTP_LIMIT_SLOTS];
} fa_smtp_ip_table_t;

static fa_smtp_ip_table_t  *fa_smtp_ip_table;

fa_int_t
fa_smtp_limit_init(fa_conf_t *cf)
{
    void  *p = mmap(NULL, sizeof(fa_smtp_ip_table_t), PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED) {
        fa_log_error(FA_LOG_EMERG, cf->log, errno, "smtp: mmap() of the connection table "
                     "failed");
        return FA_ERROR;
    }
    /*
     * The previous cycle's table stays mapped in this process (the master):
     * it is 512 KB, and its workers may still use theirs.
     */
    fa_smtp_ip_table = p;
    return FA_OK;
}

static void
fa_smtp_limit_lock(fa_smtp_ip_table_t *t)
{
    while (__atomic_exchange_n(&t->lock, 1, __ATOMIC_ACQUIRE)) {
        while (__atomic_load_n(&t->lock, __ATOMIC_RELAXED)) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        }
    }
}

static void
fa_smtp_limit_unlock(fa_smtp_ip_table_t *t)
{
    __atomic_store_n(&t->lock, 0, __ATOMIC_RELEASE);
}

/* the client's address as family + 16 bytes; 0 for a unix socket */
static int
fa_smtp_limit_key(fa_connection_t *c, uint8_t *family, u_char *addr)
{
    const struct sockaddr  *sa = (const struct sockaddr *) &c->sockaddr;

    memset(addr, 0, 16);
    if (sa->sa_family == AF_INET) {
        memcpy(addr, &((const struct sockaddr_in *) sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        memcpy(addr, &((const struct sockaddr_in6 *) sa)->sin6_addr, 16);
    } else {
        return 0;
    }
    *family = (uint8_t) sa->sa_family;
    return 1;
}

static uint32_t
fa_smtp_limit_hash(uint8_t family, const u_char *addr, uintptr_t server)
{
    uint32_t  h = 2166136261u ^ family;

    for (int i = 0; i < 16; i++) {
        h = (h ^ addr[i]) * 16777619u;     /* FNV-1a */
    }
    for (size_t i = 0; i < sizeof(server); i++) {
        h = (h ^ (uint8_t) (server >> (8 * i))) * 16777619u;
    }
    return h;
}

/*
 * Count the connection to this server; *over when its address already has
 * the server's max_connections_per_ip (0: no limit).  Returns the slot to
 * give back, or NULL when it is not counted.
 */
void *
fa_smtp_limit_enter(fa_connection_t *c, fa_smtp_conf_t *conf, int *over)
{
    fa_smtp_ip_table_t  *t = fa_smtp_ip_table;
    fa_smtp_ip_slot_t   *slot = NULL, *free_slot = NULL, *e;
    fa_int_t             max = conf->max_connections_per_ip;
    uintptr_t            server = (uintptr_t) conf;
    uint8_t              family = 0;
    u_char               addr[16];
    uint32_t             h;

    *over = 0;
    if (t == NULL || max <= 0 || !fa_smtp_limit_key(c, &family, addr)) {
        return NULL;
    }
    h = fa_smtp_limit_hash(family, addr, server);
    fa_smtp_limit_lock(t);
    for (uint32_t i = 0; i < FA_SMTP_LIMIT_SLOTS; i++) {
        e = &t->slots[(h + i) % FA_SMTP_LIMIT_SLOTS];
        if (e->count > 0 && e->family == family && e->server == server
            && memcmp(e->addr, addr, 16) == 0)
        {
            slot = e;
            break;
        }
        if (e->count == 0 && free_slot == NULL) {
            free_slot = e;
        }
        if (e->count == 0 && e->family == 0) {
            break;                       /* never used: the address is not further on */
        }
    }
    if (slot == NULL && free_slot) {
        slot = free_slot;
        slot->family = family;
        slot->server = server;
        memcpy(slot->addr, addr, 16);
        slot->count = 0;
    }
    if (slot && slot->count >= max) {
        *over = 1;
        slot = NULL;
    } else if (slot) {
        slot->count++;
    }
    fa_smtp_limit_unlock(t);
    return slot;
}

void
fa_smtp_limit_leave(void *p)
{
    fa_smtp_ip_slot_t  *slot = p;

    if (slot) {
        __atomic_sub_fetch(&slot->count, 1, __ATOMIC_RELEASE);
    }
}
