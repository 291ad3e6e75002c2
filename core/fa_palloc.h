/*
 * Memory pools.  A connection gets a pool at accept and a transaction gets a
 * sub-pool; session code allocates from them and never frees piece by piece.
 * Destroying the pool runs its cleanup handlers (closing files, releasing
 * foreign objects) and frees everything at once.
 *
 * Small requests are carved from chained blocks of the pool's block size;
 * larger ones are malloc'd and tracked so fa_pfree() can give one back early
 * (e.g. a big read buffer after a literal).
 */

#ifndef FA_PALLOC_H
#define FA_PALLOC_H

#define FA_POOL_DEFAULT_SIZE  1024
#define FA_POOL_ALIGN         16

typedef void (*fa_pool_cleanup_pt)(void *data);

typedef struct fa_pool_cleanup_s  fa_pool_cleanup_t;
struct fa_pool_cleanup_s {
    fa_pool_cleanup_pt   handler;
    void                *data;
    fa_pool_cleanup_t   *next;
};

typedef struct fa_pool_large_s  fa_pool_large_t;
struct fa_pool_large_s {
    fa_pool_large_t  *next;
    void             *alloc;
};

typedef struct fa_pool_block_s  fa_pool_block_t;
struct fa_pool_block_s {
    u_char           *last;
    u_char           *end;
    fa_pool_block_t  *next;
    fa_uint_t         failed;     /* times an allocation did not fit here */
};

struct fa_pool_s {
    fa_pool_block_t     first;    /* must be first: the pool is its first block */
    size_t              max;      /* larger requests go to the large list */
    fa_pool_block_t    *current;
    fa_pool_large_t    *large;
    fa_pool_cleanup_t  *cleanup;
    fa_log_t           *log;
};

void *fa_alloc(size_t size, fa_log_t *log);       /* malloc that logs failure */
void *fa_calloc(size_t size, fa_log_t *log);

fa_pool_t *fa_pool_create(size_t size, fa_log_t *log);
void fa_pool_destroy(fa_pool_t *pool);
void fa_pool_reset(fa_pool_t *pool);

void *fa_palloc(fa_pool_t *pool, size_t size);
void *fa_pcalloc(fa_pool_t *pool, size_t size);
void *fa_pnalloc(fa_pool_t *pool, size_t size);   /* unaligned, for strings */
fa_int_t fa_pfree(fa_pool_t *pool, void *p);      /* large allocations only */

fa_pool_cleanup_t *fa_pool_cleanup_add(fa_pool_t *p, fa_pool_cleanup_pt h, void *data);

#endif /* FA_PALLOC_H */
