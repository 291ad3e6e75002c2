/*
 * Growable arrays of fixed-size elements, allocated from a pool.  Growing
 * copies the elements, so do not keep pointers into an array that still grows.
 */

#ifndef FA_ARRAY_H
#define FA_ARRAY_H

typedef struct {
    void       *elts;
    fa_uint_t   nelts;
    size_t      size;
    fa_uint_t   nalloc;
    fa_pool_t  *pool;
} fa_array_t;

fa_array_t *fa_array_create(fa_pool_t *p, fa_uint_t n, size_t size);
fa_int_t fa_array_init(fa_array_t *a, fa_pool_t *p, fa_uint_t n, size_t size);
void *fa_array_push(fa_array_t *a);   /* zeroed slot, NULL on no memory */

#endif /* FA_ARRAY_H */
