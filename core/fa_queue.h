/*
 * Intrusive circular doubly linked list.  The sentinel is a fa_queue_t of its
 * own; elements embed a fa_queue_t and are recovered with fa_queue_data().
 */

#ifndef FA_QUEUE_H
#define FA_QUEUE_H

typedef struct fa_queue_s fa_queue_t;

struct fa_queue_s {
    fa_queue_t  *prev;
    fa_queue_t  *next;
};

#define fa_queue_init(q)      do { (q)->prev = (q); (q)->next = (q); } while (0)
#define fa_queue_empty(h)     ((h) == (h)->prev)
#define fa_queue_head(h)      ((h)->next)
#define fa_queue_last(h)      ((h)->prev)
#define fa_queue_sentinel(h)  (h)
#define fa_queue_next(q)      ((q)->next)

#define fa_queue_insert_tail(h, x)                                            \
    do { (x)->prev = (h)->prev; (x)->prev->next = (x);                        \
         (x)->next = (h); (h)->prev = (x); } while (0)

#define fa_queue_insert_head(h, x)                                            \
    do { (x)->next = (h)->next; (x)->next->prev = (x);                        \
         (x)->prev = (h); (h)->next = (x); } while (0)

#define fa_queue_remove(x)                                                    \
    do { (x)->next->prev = (x)->prev; (x)->prev->next = (x)->next;            \
         (x)->prev = NULL; (x)->next = NULL; } while (0)

#define fa_queue_data(q, type, link)                                          \
    ((type *) ((u_char *) (q) - offsetof(type, link)))

#endif /* FA_QUEUE_H */
