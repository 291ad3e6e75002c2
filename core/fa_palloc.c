/*
 * Memory pools (see fa_palloc.h).  A pool is a chain of blocks; allocation is
 * a pointer bump in the current block.  A block that failed to satisfy four
 * requests is skipped from then on, so a long-lived pool does not rescan full
 * blocks on every allocation.
 */

#include "fa_core.h"

void *
fa_alloc(size_t size, fa_log_t *log)
{
    void  *p = malloc(size);

    if (p == NULL && log) {
        fa_log_error(FA_LOG_EMERG, log, errno, "malloc(%zu) failed", size);
    }
    return p;
}

void *
fa_calloc(size_t size, fa_log_t *log)
{
    void  *p = calloc(1, size);

    if (p == NULL && log) {
        fa_log_error(FA_LOG_EMERG, log, errno, "calloc(%zu) failed", size);
    }
    return p;
}

fa_pool_t *
fa_pool_create(size_t size, fa_log_t *log)
{
    fa_pool_t  *p;

    size = fa_max(size, sizeof(fa_pool_t) + 64);
    p = fa_alloc(size, log);
    if (p == NULL) {
        return NULL;
    }
    p->first.last = (u_char *) p + sizeof(fa_pool_t);
    p->first.end = (u_char *) p + size;
    p->first.next = NULL;
    p->first.failed = 0;
    p->max = fa_min(size - sizeof(fa_pool_t), (size_t) 4096);
    p->current = &p->first;
    p->large = NULL;
    p->cleanup = NULL;
    p->log = log;
    return p;
}

static void
fa_pool_run_cleanups(fa_pool_t *pool)
{
    fa_pool_cleanup_t  *c;

    for (c = pool->cleanup; c; c = c->next) {
        if (c->handler) {
            c->handler(c->data);
        }
    }
    pool->cleanup = NULL;
}

static void
fa_pool_free_large(fa_pool_t *pool)
{
    for (fa_pool_large_t *l = pool->large; l; l = l->next) {
        free(l->alloc);
        l->alloc = NULL;
    }
    pool->large = NULL;
}

void
fa_pool_destroy(fa_pool_t *pool)
{
    fa_pool_block_t  *b, *next;

    if (pool == NULL) {
        return;
    }
    fa_pool_run_cleanups(pool);
    fa_pool_free_large(pool);
    for (b = pool->first.next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(pool);
}

void
fa_pool_reset(fa_pool_t *pool)
{
    fa_pool_block_t  *b;

    fa_pool_run_cleanups(pool);
    fa_pool_free_large(pool);
    pool->first.last = (u_char *) pool + sizeof(fa_pool_t);
    pool->first.failed = 0;
    for (b = pool->first.next; b; b = b->next) {
        b->last = (u_char *) b + sizeof(fa_pool_block_t);
        b->failed = 0;
    }
    pool->current = &pool->first;
}

static void *
fa_pool_block_alloc(fa_pool_t *pool, size_t size)
{
    size_t            bsize = (size_t) (pool->first.end - (u_char *) pool);
    fa_pool_block_t  *b, *nb;
    u_char           *m;

    m = fa_alloc(bsize, pool->log);
    if (m == NULL) {
        return NULL;
    }
    nb = (fa_pool_block_t *) m;
    nb->end = m + bsize;
    nb->next = NULL;
    nb->failed = 0;
    m = (u_char *) fa_align((uintptr_t) (m + sizeof(fa_pool_block_t)), FA_POOL_ALIGN);
    nb->last = m + size;

    for (b = pool->current; b->next; b = b->next) {
        if (b->failed++ > 4) {
            pool->current = b->next;
        }
    }
    b->next = nb;
    return m;
}

static void *
fa_pool_large_alloc(fa_pool_t *pool, size_t size)
{
    fa_pool_large_t  *l;
    void             *p;

    p = fa_alloc(size, pool->log);
    if (p == NULL) {
        return NULL;
    }
    for (l = pool->large; l; l = l->next) {       /* reuse a freed slot */
        if (l->alloc == NULL) {
            l->alloc = p;
            return p;
        }
    }
    l = fa_palloc(pool, sizeof(fa_pool_large_t));
    if (l == NULL) {
        free(p);
        return NULL;
    }
    l->alloc = p;
    l->next = pool->large;
    pool->large = l;
    return p;
}

static void *
fa_pool_small(fa_pool_t *pool, size_t size, int align)
{
    fa_pool_block_t  *b;
    u_char           *m;

    for (b = pool->current; b; b = b->next) {
        m = b->last;
        if (align) {
            m = (u_char *) fa_align((uintptr_t) m, FA_POOL_ALIGN);
        }
        if (m <= b->end && (size_t) (b->end - m) >= size) {
            b->last = m + size;
            return m;
        }
    }
    return fa_pool_block_alloc(pool, size);
}

void *
fa_palloc(fa_pool_t *pool, size_t size)
{
    if (size <= pool->max) {
        return fa_pool_small(pool, size, 1);
    }
    return fa_pool_large_alloc(pool, size);
}

void *
fa_pnalloc(fa_pool_t *pool, size_t size)
{
    if (size <= pool->max) {
        return fa_pool_small(pool, size, 0);
    }
    return fa_pool_large_alloc(pool, size);
}

void *
fa_pcalloc(fa_pool_t *pool, size_t size)
{
    void  *p = fa_palloc(pool, size);

    if (p) {
        memset(p, 0, size);
    }
    return p;
}

fa_int_t
fa_pfree(fa_pool_t *pool, void *p)
{
    for (fa_pool_large_t *l = pool->large; l; l = l->next) {
        if (l->alloc == p) {
            free(p);
            l->alloc = NULL;
            return FA_OK;
        }
    }
    return FA_DECLINED;
}

fa_pool_cleanup_t *
fa_pool_cleanup_add(fa_pool_t *p, fa_pool_cleanup_pt h, void *data)
{
    fa_pool_cleanup_t  *c;

    c = fa_palloc(p, sizeof(fa_pool_cleanup_t));
    if (c == NULL) {
        return NULL;
    }
    c->handler = h;
    c->data = data;
    c->next = p->cleanup;
    p->cleanup = c;
    return c;
}
