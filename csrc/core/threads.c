/* Process-wide thread count and status strings for the tasklle core. */
#include "tasklle.h"
#ifdef _OPENMP
#include <omp.h>
#endif

static int tll_num_threads = 0; /* 0 = default */

static int default_threads(void)
{
#ifdef _OPENMP
    int n = omp_get_max_threads(); /* honours OMP_NUM_THREADS */
    return n > 0 ? n : 1;
#else
    return 1;
#endif
}

void tll_set_num_threads(int n) { tll_num_threads = n > 0 ? n : 0; }

int tll_get_num_threads(void) { return tll_num_threads > 0 ? tll_num_threads : default_threads(); }

int tll_have_openmp(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* The calling thread's poll function (C11 thread-local: threads that run other
   kernels meanwhile are not affected, OpenMP worker threads see none). */
static _Thread_local tll_poll_fn poll_fn = NULL;
static _Thread_local void *poll_ctx = NULL;

void tll_set_poll(tll_poll_fn fn, void *ctx)
{
    poll_fn = fn;
    poll_ctx = ctx;
}

int tll_poll(void) { return poll_fn ? poll_fn(poll_ctx) != 0 : 0; }

const char *tll_status_string(tll_status s)
{
    switch (s) {
    case TLL_OK: return "ok";
    case TLL_ERR_NOMEM: return "out of memory";
    case TLL_ERR_ARG: return "invalid argument";
    case TLL_ERR_OVERFLOW: return "size overflow";
    case TLL_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown status";
}
