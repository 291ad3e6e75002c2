/*
 * Processes: one master, N workers.
 *
 * The master loads the configuration, opens listeners, forks workers and then
 * only waits for signals: HUP reloads (new workers on the new cycle, old
 * workers told to QUIT), QUIT stops gracefully, TERM/INT stop fast, USR1
 * reopens logs, CHLD respawns a worker that died unexpectedly.  It never
 * touches a client.  Workers run the event loop; on QUIT a worker stops
 * accepting, closes idle sessions and exits when the others have finished.
 */

#ifndef FA_PROCESS_H
#define FA_PROCESS_H

#define FA_MAX_WORKERS  256

extern volatile sig_atomic_t  fa_sig_quit;
extern volatile sig_atomic_t  fa_sig_terminate;
extern volatile sig_atomic_t  fa_sig_reload;
extern volatile sig_atomic_t  fa_sig_reopen;
extern volatile sig_atomic_t  fa_sig_child;

extern fa_uint_t  fa_process_is_worker;
extern fa_uint_t  fa_worker_exiting;     /* set in a worker that stops accepting */

extern sigset_t  fa_signals_blocked;   /* what the worker unblocks only in epoll_pwait */

fa_int_t fa_signals_init(fa_log_t *log);
fa_int_t fa_signal_send(fa_cycle_t *cycle, const char *name);   /* facteur -s NAME */

int fa_master_run(fa_cycle_t *cycle);      /* returns the exit status */

fa_int_t fa_pidfile_write(fa_cycle_t *cycle);
void fa_pidfile_remove(fa_cycle_t *cycle);

#endif /* FA_PROCESS_H */
