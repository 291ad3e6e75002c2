/*
 * Master and workers (see fa_process.h).
 *
 * Signals are blocked everywhere except while a process waits: the master in
 * sigsuspend(), a worker inside epoll_pwait() (fa_event_process).  That closes
 * the race where a signal lands between a flag check and a blocking wait.
 */

#include "fa_core.h"
#include <sys/wait.h>
#include <sys/prctl.h>
#include <grp.h>

#define FA_STOP_GRACE_MS  5000     /* fast stop: SIGKILL workers after this */

volatile sig_atomic_t  fa_sig_quit;
volatile sig_atomic_t  fa_sig_terminate;
volatile sig_atomic_t  fa_sig_reload;
volatile sig_atomic_t  fa_sig_reopen;
volatile sig_atomic_t  fa_sig_child;

fa_uint_t  fa_process_is_worker;
fa_uint_t  fa_worker_exiting;

typedef struct {
    pid_t       pid;
    fa_uint_t   generation;
    fa_uint_t   slot;          /* "#N" in the log */
} fa_worker_t;

static fa_worker_t  fa_workers[FA_MAX_WORKERS * 4];
static fa_uint_t    fa_generation;

static const struct {
    const char  *name;
    int          signo;
} fa_signal_names[] = {
    { "reload", SIGHUP }, { "quit", SIGQUIT }, { "stop", SIGTERM }, { "reopen", SIGUSR1 },
};

static void
fa_signal_handler(int signo)
{
    int  saved = errno;

    switch (signo) {
    case SIGQUIT: fa_sig_quit = 1; break;
    case SIGTERM:
    case SIGINT:  fa_sig_terminate = 1; break;
    case SIGHUP:  fa_sig_reload = 1; break;
    case SIGUSR1: fa_sig_reopen = 1; break;
    case SIGCHLD: fa_sig_child = 1; break;
    }
    errno = saved;
}

sigset_t  fa_signals_blocked;

fa_int_t
fa_signals_init(fa_log_t *log)
{
    struct sigaction  sa;
    int               sigs[] = { SIGQUIT, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGCHLD };

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = fa_signal_handler;
    sigemptyset(&sa.sa_mask);
    sigemptyset(&fa_signals_blocked);
    for (size_t i = 0; i < fa_nelems(sigs); i++) {
        if (sigaction(sigs[i], &sa, NULL) == -1) {
            fa_log_error(FA_LOG_EMERG, log, errno, "sigaction(%d) failed", sigs[i]);
            return FA_ERROR;
        }
        sigaddset(&fa_signals_blocked, sigs[i]);
    }
    signal(SIGPIPE, SIG_IGN);
    return sigprocmask(SIG_BLOCK, &fa_signals_blocked, NULL) == 0 ? FA_OK : FA_ERROR;
}

fa_int_t
fa_signal_send(fa_cycle_t *cycle, const char *name)
{
    char   buf[32] = "";
    int    fd, signo = 0;
    long   pid;
    const char *path = (const char *) cycle->core_conf->pid.data;

    for (size_t i = 0; i < fa_nelems(fa_signal_names); i++) {
        if (strcmp(fa_signal_names[i].name, name) == 0) {
            signo = fa_signal_names[i].signo;
        }
    }
    if (signo == 0) {
        fprintf(stderr, "facteur: unknown signal \"%s\" (reload, quit, stop or reopen)\n", name);
        return FA_ERROR;
    }
    fd = open(path, O_RDONLY);
    if (fd == -1 || read(fd, buf, sizeof(buf) - 1) <= 0) {
        fprintf(stderr, "facteur: cannot read the pid file \"%s\": %s (is facteur running?)\n",
                path, strerror(errno));
        if (fd != -1) {
            close(fd);
        }
        return FA_ERROR;
    }
    close(fd);
    pid = strtol(buf, NULL, 10);
    if (pid <= 1 || kill((pid_t) pid, signo) == -1) {
        fprintf(stderr, "facteur: kill(%ld, %s) failed: %s\n", pid, name, strerror(errno));
        return FA_ERROR;
    }
    return FA_OK;
}

fa_int_t
fa_pidfile_write(fa_cycle_t *cycle)
{
    char        buf[32];
    const char *path = (const char *) cycle->core_conf->pid.data;
    int         fd;
    size_t      n;

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1) {
        fa_log_error(FA_LOG_EMERG, cycle->log, errno, "open() pid file \"%s\" failed", path);
        return FA_ERROR;
    }
    n = fa_snprintf(buf, sizeof(buf), "%d\n", (int) getpid());
    if (write(fd, buf, n) != (ssize_t) n) {
        fa_log_error(FA_LOG_EMERG, cycle->log, errno, "write() pid file \"%s\" failed", path);
        close(fd);
        return FA_ERROR;
    }
    close(fd);
    return FA_OK;
}

void
fa_pidfile_remove(fa_cycle_t *cycle)
{
    unlink((const char *) cycle->core_conf->pid.data);
}

/* ---- worker ---- */

static fa_int_t
fa_worker_drop_privileges(fa_cycle_t *cycle)
{
    fa_core_conf_t  *ccf = cycle->core_conf;

    if (geteuid() != 0 || ccf->uid == (uid_t) -1) {
        return FA_OK;
    }
    if (setgid(ccf->gid) == -1 || initgroups((char *) ccf->user.data, ccf->gid) == -1
        || setuid(ccf->uid) == -1)
    {
        fa_log_error(FA_LOG_EMERG, cycle->log, errno, "cannot switch to user \"%.*s\"",
                     (int) ccf->user.len, ccf->user.data);
        return FA_ERROR;
    }
    return FA_OK;
}

static void
fa_worker_shutdown_timer(fa_event_t *ev)
{
    fa_log_error(FA_LOG_NOTICE, ev->log, 0, "worker_shutdown_timeout expired, "
                 "closing %lu sessions", (unsigned long) fa_connections_active());
    fa_connections_close_all();
}

static void
fa_worker_begin_quit(fa_cycle_t *cycle, fa_event_t *shutdown_ev)
{
    fa_worker_exiting = 1;
    fa_listen_disable(cycle);
    fa_connections_close_idle();
    fa_event_cancel_timers();
    if (cycle->core_conf->shutdown_timeout > 0) {
        shutdown_ev->handler = fa_worker_shutdown_timer;
        shutdown_ev->log = cycle->log;
        fa_event_add_timer(shutdown_ev, cycle->core_conf->shutdown_timeout);
    }
}

static void
fa_worker_loop(fa_cycle_t *cycle)
{
    fa_event_t  shutdown_ev;

    memset(&shutdown_ev, 0, sizeof(shutdown_ev));
    for ( ;; ) {
        if (fa_worker_exiting && fa_connections_active() == 0) {
            return;
        }
        fa_event_process(cycle);

        if (fa_sig_terminate) {
            fa_connections_close_all();
            return;
        }
        if (fa_sig_quit && !fa_worker_exiting) {
            fa_worker_begin_quit(cycle, &shutdown_ev);
        }
        if (fa_sig_reopen) {
            fa_sig_reopen = 0;
            fa_log_file_reopen(cycle->log_file, cycle->log);
        }
    }
}

static void
fa_worker_run(fa_cycle_t *cycle, fa_uint_t slot)
{
    fa_process_is_worker = 1;
    fa_log_worker = slot;
    fa_sig_reload = fa_sig_child = 0;

    /* a worker must not outlive its master (for example after SIGKILL) */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() == 1) {
        exit(2);
    }
    if (fa_worker_drop_privileges(cycle) != FA_OK
        || fa_event_init(cycle) != FA_OK
        || fa_modules_init_worker(cycle) != FA_OK
        || fa_listen_enable(cycle) != FA_OK)
    {
        exit(2);                    /* 2: do not respawn, the setup is broken */
    }
    fa_worker_loop(cycle);
    fa_modules_exit_worker(cycle);
    fa_event_done(cycle);
    exit(0);
}

/* ---- master ---- */

static fa_worker_t *
fa_worker_slot_free(void)
{
    for (size_t i = 0; i < fa_nelems(fa_workers); i++) {
        if (fa_workers[i].pid == 0) {
            return &fa_workers[i];
        }
    }
    return NULL;
}

static fa_int_t
fa_master_spawn(fa_cycle_t *cycle, fa_uint_t slot)
{
    fa_worker_t  *w = fa_worker_slot_free();
    pid_t         pid;

    if (w == NULL) {
        fa_log_error(FA_LOG_ALERT, cycle->log, 0, "too many worker processes");
        return FA_ERROR;
    }
    pid = fork();
    if (pid == -1) {
        fa_log_error(FA_LOG_ALERT, cycle->log, errno, "fork() failed");
        return FA_ERROR;
    }
    if (pid == 0) {
        fa_worker_run(cycle, slot);
    }
    w->pid = pid;
    w->generation = fa_generation;
    w->slot = slot;
    return FA_OK;
}

static void
fa_master_start_workers(fa_cycle_t *cycle)
{
    fa_generation++;
    /* before the fork: a worker may serve /metrics before this line runs again */
    fa_stat_set(fa_core_stats.workers, cycle->core_conf->worker_processes);
    for (fa_int_t i = 0; i < cycle->core_conf->worker_processes; i++) {
        fa_master_spawn(cycle, (fa_uint_t) i);
    }
}

static fa_uint_t
fa_master_signal_workers(int signo, int old_only)
{
    fa_uint_t  n = 0;

    for (size_t i = 0; i < fa_nelems(fa_workers); i++) {
        if (fa_workers[i].pid && (!old_only || fa_workers[i].generation != fa_generation)) {
            kill(fa_workers[i].pid, signo);
            n++;
        }
    }
    return n;
}

static void
fa_master_log_exit(fa_cycle_t *cycle, fa_worker_t *w, int status)
{
    if (WIFSIGNALED(status)) {
        fa_log_error(FA_LOG_ALERT, cycle->log, 0, "worker process %d exited on signal %d%s",
                     (int) w->pid, WTERMSIG(status), WCOREDUMP(status) ? " (core dumped)" : "");
    } else if (WEXITSTATUS(status) != 0) {
        fa_log_error(FA_LOG_ALERT, cycle->log, 0, "worker process %d exited with code %d",
                     (int) w->pid, WEXITSTATUS(status));
    } else {
        fa_log_error(FA_LOG_NOTICE, cycle->log, 0, "worker process %d exited", (int) w->pid);
    }
}

/* collect exited workers; respawn current ones that died unexpectedly */
static void
fa_master_reap(fa_cycle_t *cycle, int stopping)
{
    pid_t  pid;
    int    status;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < fa_nelems(fa_workers); i++) {
            fa_worker_t *w = &fa_workers[i];
            if (w->pid != pid) {
                continue;
            }
            fa_master_log_exit(cycle, w, status);
            int respawn = !stopping && w->generation == fa_generation
                          && !(WIFEXITED(status) && WEXITSTATUS(status) == 2)
                          && !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
            w->pid = 0;
            if (respawn) {
                fa_master_spawn(cycle, w->slot);
            }
        }
    }
}

static fa_cycle_t *
fa_master_reload(fa_cycle_t *cycle)
{
    fa_cycle_t  *new_cycle;
    char        *error;

    fa_log_error(FA_LOG_NOTICE, cycle->log, 0, "reloading the configuration");
    new_cycle = fa_cycle_load(cycle, cycle->prefix, cycle->conf_file, 0, &error);
    if (new_cycle == NULL || fa_modules_init_master(new_cycle) != FA_OK) {
        fa_log_error(FA_LOG_ERR, cycle->log, 0, "reload failed, the running configuration "
                     "stays in force: %s", error ? error : "a module failed to start");
        free(error);
        if (new_cycle) {
            fa_listen_close_all(new_cycle);
            fa_cycle_free(new_cycle);
        }
        fa_stat_inc(fa_core_stats.reload_failures);
        return cycle;
    }
    fa_listen_close_unused(cycle);     /* before fork: new workers must not hold them */
    fa_cycle = new_cycle;
    fa_master_start_workers(new_cycle);
    fa_master_signal_workers(SIGQUIT, 1);
    if (strcmp((char *) new_cycle->core_conf->pid.data, (char *) cycle->core_conf->pid.data)) {
        fa_pidfile_remove(cycle);
    }
    fa_pidfile_write(new_cycle);
    fa_modules_exit_master(cycle);
    fa_cycle_free(cycle);
    fa_stat_inc(fa_core_stats.reloads);
    fa_log_error(FA_LOG_NOTICE, new_cycle->log, 0, "the new configuration is in force");
    return new_cycle;
}

static int
fa_master_stop(fa_cycle_t *cycle, int signo)
{
    fa_msec_t  deadline;

    fa_master_signal_workers(signo, 0);
    deadline = fa_current_msec + FA_STOP_GRACE_MS;
    for ( ;; ) {
        fa_master_reap(cycle, 1);
        if (fa_master_signal_workers(0, 0) == 0) {
            break;
        }
        fa_time_update();
        if (signo != SIGQUIT && fa_current_msec > deadline) {
            fa_master_signal_workers(SIGKILL, 0);
            deadline = INT64_MAX;
        }
        /* wait for a signal or 50 ms; sigtimedwait consumes it, so look at it here */
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        int sig = sigtimedwait(&fa_signals_blocked, NULL, &ts);
        if ((sig == SIGTERM || sig == SIGINT) && signo == SIGQUIT) {
            signo = SIGTERM;                /* a quit turned into a fast stop */
            fa_master_signal_workers(SIGTERM, 0);
            deadline = fa_current_msec + FA_STOP_GRACE_MS;
        }
    }
    fa_pidfile_remove(cycle);
    fa_modules_exit_master(cycle);
    fa_log_error(FA_LOG_NOTICE, cycle->log, 0, "exiting");
    return 0;
}

static fa_int_t
fa_master_daemonize(fa_cycle_t *cycle)
{
    int  fd;

    switch (fork()) {
    case -1:
        fa_log_error(FA_LOG_EMERG, cycle->log, errno, "fork() failed");
        return FA_ERROR;
    case 0:
        break;
    default:
        exit(0);
    }
    setsid();
    fd = open("/dev/null", O_RDWR);
    if (fd != -1) {
        dup2(fd, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        if (cycle->log_file->path) {
            dup2(fd, STDERR_FILENO);
        }
        if (fd > STDERR_FILENO) {
            close(fd);
        }
    }
    return FA_OK;
}

int
fa_master_run(fa_cycle_t *cycle)
{
    sigset_t  empty;

    if (fa_signals_init(cycle->log) != FA_OK
        || (cycle->core_conf->daemon && fa_master_daemonize(cycle) != FA_OK)
        || fa_pidfile_write(cycle) != FA_OK
        || fa_modules_init_master(cycle) != FA_OK)
    {
        return 1;
    }
    fa_log_error(FA_LOG_NOTICE, cycle->log, 0, "facteur %s started, %ld workers",
                 FA_VERSION, (long) cycle->core_conf->worker_processes);
    fa_master_start_workers(cycle);

    sigemptyset(&empty);
    for ( ;; ) {
        sigsuspend(&empty);
        fa_time_update();
        if (fa_sig_child) {
            fa_sig_child = 0;
            fa_master_reap(cycle, 0);
        }
        if (fa_sig_terminate) {
            return fa_master_stop(cycle, SIGTERM);
        }
        if (fa_sig_quit) {
            return fa_master_stop(cycle, SIGQUIT);
        }
        if (fa_sig_reload) {
            fa_sig_reload = 0;
            cycle = fa_master_reload(cycle);
        }
        if (fa_sig_reopen) {
            fa_sig_reopen = 0;
            fa_log_file_reopen(cycle->log_file, cycle->log);
            fa_master_signal_workers(SIGUSR1, 0);
        }
    }
}
