/*
 * Cached time.  The loop updates it once per iteration (after epoll_wait), so
 * handlers read a consistent "now" without a system call each time.
 */

#ifndef FA_TIMES_H
#define FA_TIMES_H

extern volatile fa_msec_t  fa_current_msec;   /* monotonic, for timers */
extern volatile time_t     fa_time_now;       /* wall clock, seconds */

void fa_time_update(void);

/* "2026/11/22 04:21:17" for the log, into buf of at least 20 bytes */
void fa_time_log_format(char *buf, time_t t);

#endif /* FA_TIMES_H */
