/* SPDX-License-Identifier: Apache-2.0 */
/* Merging and summarising the fio-compatible latency statistics of lathist.h. */
#include "lathist.h"

#include <math.h>
#include <string.h>

void bffio_lat_merge(struct bffio_lat *into, const struct bffio_lat *from)
{
    if (from->n == 0)
        return;
    if (into->n == 0 || from->min < into->min)
        into->min = from->min;
    if (from->max > into->max)
        into->max = from->max;
    into->n += from->n;
    into->sum += from->sum;
    into->sumsq += from->sumsq;
}

double bffio_lat_mean(const struct bffio_lat *l)
{
    return l->n ? l->sum / (double)l->n : 0.0;
}

/* fio prints the sample standard deviation (n - 1). */
double bffio_lat_stddev(const struct bffio_lat *l)
{
    if (l->n < 2)
        return 0.0;
    double mean = l->sum / (double)l->n;
    double var = (l->sumsq - (double)l->n * mean * mean) / (double)(l->n - 1);
    return var > 0 ? sqrt(var) : 0.0;
}

void bffio_hist_merge(struct bffio_hist *into, const struct bffio_hist *from)
{
    for (unsigned i = 0; i < BFFIO_PLAT_NR; i++)
        into->bins[i] += from->bins[i];
}

void bffio_hist_percentiles(const struct bffio_hist *h, uint64_t nr, const double *plist, unsigned len,
                            uint64_t *out)
{
    memset(out, 0, len * sizeof(*out));
    if (nr == 0 || len == 0)
        return;
    /* fio walks the buckets once with the list sorted ascending; ours may be in any order. */
    for (unsigned j = 0; j < len; j++) {
        long double want = (long double)plist[j] / 100.0L * (long double)nr;
        uint64_t sum = 0;
        unsigned i;
        for (i = 0; i < BFFIO_PLAT_NR; i++) {
            sum += h->bins[i];
            if ((long double)sum >= want && sum > 0)
                break;
        }
        out[j] = bffio_plat_val(i < BFFIO_PLAT_NR ? i : BFFIO_PLAT_NR - 1);
    }
}
