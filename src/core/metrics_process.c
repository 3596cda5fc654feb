/*
 * metrics_process.c - the standard Prometheus process_* metrics, read from
 * /proc/self at scrape time (see metrics_register_process in metrics.h).
 *
 * Linux only. Values that cannot be read are left at their previous value
 * rather than failing the scrape. Not for: per-thread or cgroup statistics.
 */
#include "core/err.h"
#include "core/metrics.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

struct proc_metrics {
    struct metric *cpu, *rss, *vsize, *open_fds, *max_fds, *start;
    double boot_time; /* seconds since the epoch, from /proc/stat btime */
};

static double read_boot_time(void)
{
    char line[256];
    double bt = 0;
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "btime ", 6) == 0) {
            bt = strtod(line + 6, NULL);
            break;
        }
    fclose(f);
    return bt;
}

static void collect_process(void *ud)
{
    struct proc_metrics *p = ud;
    char buf[1024];
    long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/stat", "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* Fields after the command name, which may contain spaces: start past the last ')'. */
        char *s = strrchr(buf, ')');
        unsigned long long utime, stime, start, vsize;
        long long rss;
        if (s && ticks > 0 &&
            sscanf(s + 1,
                   " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d "
                   "%*d %llu %llu %lld",
                   &utime, &stime, &start, &vsize, &rss) == 5) {
            metric_set(p->cpu, (double)(utime + stime) / (double)ticks);
            metric_set(p->vsize, (double)vsize);
            metric_set(p->rss, (double)rss * (double)page);
            if (p->boot_time > 0)
                metric_set(p->start, p->boot_time + (double)start / (double)ticks);
        }
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        long n = 0;
        while (readdir(d))
            n++;
        closedir(d);
        metric_set(p->open_fds, (double)(n > 3 ? n - 3 : 0)); /* ".", ".." and the DIR's own fd */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        metric_set(p->max_fds, rl.rlim_cur == RLIM_INFINITY ? -1.0 : (double)rl.rlim_cur);
}

int metrics_register_process(struct metrics_registry *r)
{
    if (!r)
        r = metrics_default();
    if (!metrics__claim_process(r))
        return 0;
    /* Owned by the registry from here on (released with it). */
    struct proc_metrics *p = calloc(1, sizeof *p);
    if (!p)
        return AS_ENOMEM;
    p->cpu = metric_nolabels(metrics_counter_new(
        r, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", NULL));
    p->rss = metric_nolabels(metrics_gauge_new(r, "process_resident_memory_bytes",
                                               "Resident memory size in bytes.", NULL));
    p->vsize = metric_nolabels(metrics_gauge_new(r, "process_virtual_memory_bytes",
                                                 "Virtual memory size in bytes.", NULL));
    p->open_fds = metric_nolabels(
        metrics_gauge_new(r, "process_open_fds", "Number of open file descriptors.", NULL));
    p->max_fds = metric_nolabels(
        metrics_gauge_new(r, "process_max_fds", "Maximum number of open file descriptors.", NULL));
    p->start = metric_nolabels(
        metrics_gauge_new(r, "process_start_time_seconds",
                          "Start time of the process since unix epoch in seconds.", NULL));
    p->boot_time = read_boot_time();
    if (!p->cpu || !p->rss || !p->vsize || !p->open_fds || !p->max_fds || !p->start) {
        free(p);
        return AS_EINVAL;
    }
    int rc = metrics_registry_add_collector(r, collect_process, p, free);
    if (rc)
        free(p);
    return rc;
}
