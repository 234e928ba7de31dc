/* Max-IoU assignment against a brute-force full-matrix statement of mmdet's rule. */
#include "tasklle.h"
#include "tll_test.h"
#include <stdlib.h>
#include <string.h>

/* mmdet assign_wrt_overlaps on the full matrix (our encoding), for checking. */
static void brute(int64_t *out, double *mx, const double *an, int64_t na, const double *gt, int64_t ng,
                  const uint8_t *ign, double pos, double neg, double minpos, int all, int lowq)
{
    double *iou = malloc(sizeof(double) * (ng ? ng : 1) * (na ? na : 1));
    tll_box_iou_forward_f64(iou, gt, ng, an, na); /* (g, a), gts first */
    int64_t nv = 0;
    for (int64_t g = 0; g < ng; g++)
        nv += !(ign && ign[g]);
    for (int64_t a = 0; a < na; a++) {
        double m = 0;
        int64_t arg = -1;
        for (int64_t g = 0; g < ng; g++) {
            if (ign && ign[g])
                continue;
            if (arg < 0 || iou[g * na + a] > m) {
                m = iou[g * na + a];
                arg = g;
            }
        }
        mx[a] = m;
        out[a] = TLL_ASSIGN_IGNORED;
        if (nv == 0 || (m >= 0 && m < neg))
            out[a] = TLL_ASSIGN_NEGATIVE;
        if (nv > 0 && m >= pos)
            out[a] = arg;
    }
    if (lowq) {
        for (int64_t g = 0; g < ng && na > 0; g++) {
            if (ign && ign[g])
                continue;
            double gm = 0;
            int64_t ga = 0;
            for (int64_t a = 0; a < na; a++)
                if (iou[g * na + a] > gm) {
                    gm = iou[g * na + a];
                    ga = a;
                }
            if (gm < minpos)
                continue;
            if (all) {
                for (int64_t a = 0; a < na; a++)
                    if (iou[g * na + a] == gm)
                        out[a] = g;
            } else {
                out[ga] = g;
            }
        }
    }
    free(iou);
}

static void grid_boxes(double *b, int64_t n, double size, double grid)
{
    for (int64_t i = 0; i < 4 * n; i += 4) {
        double x = tll_test_uniform() * size, y = tll_test_uniform() * size;
        double w = tll_test_uniform() * size / 3, h = tll_test_uniform() * size / 3;
        double v[4] = {x, y, x + w, y + h};
        for (int k = 0; k < 4; k++) /* grid > 0 snaps to it: exact ties; else plain reals */
            b[i + k] = grid > 0 ? round(v[k] / grid) * grid : v[k];
    }
}

static void compare(int64_t na, int64_t ng, double grid, int with_ignore, double pos, double neg, double minpos,
                    int all, int lowq)
{
    double *an = malloc(sizeof(double) * 4 * (na + 1)), *gt = malloc(sizeof(double) * 4 * (ng + 1));
    grid_boxes(an, na, 80, grid);
    grid_boxes(gt, ng, 80, grid);
    if (ng > 2 && na > 3) {
        memcpy(gt + 4, an + 12, 4 * sizeof(double)); /* a gt equal to an anchor */
        memcpy(gt + 8, gt + 4, 4 * sizeof(double));  /* and a duplicate gt */
    }
    uint8_t *ign = calloc(ng + 1, 1);
    if (with_ignore)
        for (int64_t g = 0; g < ng; g += 3)
            ign[g] = 1;
    int64_t *o1 = malloc(sizeof(int64_t) * (na + 1)), *o2 = malloc(sizeof(int64_t) * (na + 1));
    double *m1 = malloc(sizeof(double) * (na + 1)), *m2 = malloc(sizeof(double) * (na + 1));
    for (int threads = 1; threads <= 3; threads++) {
        tll_set_num_threads(threads);
        CHECK(tll_assign_max_iou_f64(o1, m1, an, na, gt, ng, with_ignore ? ign : NULL, pos, neg, minpos, all,
                                     lowq) == TLL_OK);
        brute(o2, m2, an, na, gt, ng, with_ignore ? ign : NULL, pos, neg, minpos, all, lowq);
        int same = 1;
        for (int64_t a = 0; a < na; a++)
            same &= o1[a] == o2[a] && m1[a] == m2[a];
        CHECK(same);
    }
    tll_set_num_threads(0);
    free(an);
    free(gt);
    free(ign);
    free(o1);
    free(o2);
    free(m1);
    free(m2);
}

static int stop_now(void *ctx)
{
    (void)ctx;
    return 1;
}

/* A poll function that says stop ends the assignment with TLL_ERR_INTERRUPTED
   (also when the work runs on several threads: only the caller's thread polls,
   after TLL_POLL_WORK of its own work). Each pass is NA*(NG+1) = 32M units here,
   so the caller's thread polls if it gets 1/8 of the blocks of either pass; with
   8M units (NA = 20000) it needed half of them, which a loaded machine's
   dynamic schedule often did not give it. */
static void test_poll(void)
{
    enum { NA = 80000, NG = 400 };
    double *an = malloc(NA * 4 * sizeof(double)), *gt = malloc(NG * 4 * sizeof(double)), *mx = malloc(NA * sizeof(double));
    int64_t *out = malloc(NA * sizeof(int64_t));
    grid_boxes(an, NA, 4.0, 0);
    grid_boxes(gt, NG, 4.0, 0);
    tll_set_poll(stop_now, NULL);
    CHECK(tll_assign_max_iou_f64(out, mx, an, NA, gt, NG, NULL, 0.35, 0.35, 0.35, 1, 1) == TLL_ERR_INTERRUPTED);
    tll_set_poll(NULL, NULL);
    CHECK(tll_assign_max_iou_f64(out, mx, an, NA, gt, NG, NULL, 0.35, 0.35, 0.35, 1, 1) == TLL_OK);
    free(an);
    free(gt);
    free(mx);
    free(out);
}

int main(void)
{
    test_poll();
    compare(3000, 40, 4.0, 0, 0.35, 0.35, 0.35, 1, 1);  /* big enough to run in parallel */
    compare(500, 25, 4.0, 1, 0.35, 0.35, 0.35, 1, 1);
    compare(500, 25, 2.0, 1, 0.5, 0.4, 0.0, 1, 1);     /* ignored band, every gt eligible */
    compare(500, 25, 2.0, 0, 0.5, 0.3, 0.2, 0, 1);     /* first best anchor only */
    compare(500, 25, 0.0, 0, 0.35, 0.35, 0.35, 1, 0);  /* no low-quality matching, unsnapped */
    compare(200, 0, 4.0, 0, 0.35, 0.35, 0.35, 1, 1);   /* no gts */
    compare(0, 5, 4.0, 0, 0.35, 0.35, 0.35, 1, 1);     /* no anchors */
    compare(200, 6, 4.0, 0, 0.35, 0.35, 0.35, 1, 1);
    /* every gt ignored: all negative */
    double an[8] = {0, 0, 4, 4, 1, 1, 5, 5}, gt[4] = {0, 0, 4, 4};
    uint8_t ig[1] = {1};
    int64_t o[2];
    double m[2];
    CHECK(tll_assign_max_iou_f64(o, m, an, 2, gt, 1, ig, 0.35, 0.35, 0.35, 1, 1) == TLL_OK);
    CHECK(o[0] == TLL_ASSIGN_NEGATIVE && o[1] == TLL_ASSIGN_NEGATIVE && m[0] == 0 && m[1] == 0);
    CHECK(tll_assign_max_iou_f64(o, m, an, -1, gt, 1, ig, 0.35, 0.35, 0.35, 1, 1) == TLL_ERR_ARG);
    TEST_MAIN_END();
}
