/*
 * Cached time (see fa_times.h).  The loop calls fa_time_update() once after
 * each epoll_wait(), so every handler of one iteration sees the same "now"
 * and timers armed in that iteration share one reference point.
 *
 * Timers use the monotonic clock: a wall clock stepped by NTP or by hand
 * must never make every session time out at once, or never.
 */

#include "fa_core.h"

volatile fa_msec_t  fa_current_msec;
volatile time_t     fa_time_now;

void
fa_time_update(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    fa_current_msec = (fa_msec_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;

    fa_time_now = time(NULL);
}

void
fa_time_log_format(char *buf, time_t t)
{
    struct tm  tm;

    /* localtime_r, not localtime: a log line may be written from a helper thread */
    if (localtime_r(&t, &tm) == NULL
        || strftime(buf, 20, "%Y/%m/%d %H:%M:%S", &tm) == 0)
    {
        memcpy(buf, "0000/00/00 00:00:00", 20);
    }
}
