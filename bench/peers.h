/* peers.h - runs the Python peers of bench/peers/ on a matrix and scores their masks
   against EXACT; shared by bench.c (CPU) and bench_cuda.c (GPU). Include after
   tsenor.h, <stdio.h>, <stdlib.h>, <string.h> and <math.h>. */
#ifndef TSENOR_BENCH_PEERS_H
#define TSENOR_BENCH_PEERS_H

/* ---- peers: Python programs that read the same matrix and write their mask ---------- */
typedef struct peer_result {
    int ran;
    double seconds, error, blocks, invalid;
    double density;       /* kept entries / entries, over the blocks it solved             */
    double short_lines;   /* of those blocks' rows and columns, the share keeping fewer than n */
    char note[160];
} peer_result;

static int write_file(const char *path, const void *data, size_t bytes)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(data, 1, bytes, f) == bytes;
    if (f) ok &= fclose(f) == 0;
    return ok;
}

/* Runs `python3 bench/peers/NAME.py --input F --rows R --cols C --n N --m M --out MASK`,
   which prints "seconds S blocks B" or "skipped REASON" on its last line. The error is
   computed here on the blocks the peer solved (its mask file marks unsolved blocks 255). */
static peer_result run_peer(const char *name, const float *w, size_t rows, size_t cols, int n, int m,
                            const uint8_t *exact_mask, int timeout_s)
{
    peer_result p;
    char cmd[512], line[256] = "";
    FILE *f;
    memset(&p, 0, sizeof p);
    if (!write_file("build/bench_input.f32", w, rows * cols * sizeof(float))) {
        snprintf(p.note, sizeof p.note, "cannot write build/bench_input.f32");
        return p;
    }
    snprintf(cmd, sizeof cmd,
             "timeout %d python3 bench/peers/%s.py --input build/bench_input.f32 --rows %zu --cols %zu "
             "--n %d --m %d --out build/bench_peer_mask.u8 2>&1",
             timeout_s, name, rows, cols, n, m);
    remove("build/bench_peer_mask.u8");
    f = popen(cmd, "r");
    if (!f) {
        snprintf(p.note, sizeof p.note, "cannot run python3");
        return p;
    }
    while (fgets(line, sizeof line, f)) { /* keep the last line */ }
    if (pclose(f) != 0 && strncmp(line, "skipped", 7) != 0) {
        snprintf(p.note, sizeof p.note, "failed or timed out (%ds): %.100s", timeout_s, line);
        return p;
    }
    line[strcspn(line, "\n")] = 0;
    if (strncmp(line, "skipped", 7) == 0) {
        snprintf(p.note, sizeof p.note, "%.150s", line);
        return p;
    }
    if (sscanf(line, "seconds %lf blocks %lf", &p.seconds, &p.blocks) != 2) {
        snprintf(p.note, sizeof p.note, "unexpected output: %.100s", line);
        return p;
    }
    p.ran = 1;
    p.error = -1.0;
    {   /* error over the blocks the peer solved */
        uint8_t *pm = (uint8_t *)malloc(rows * cols);
        FILE *mf = fopen("build/bench_peer_mask.u8", "rb");
        if (pm && mf && fread(pm, 1, rows * cols, mf) == rows * cols) {
            double pruned_peer = 0.0, pruned_exact = 0.0, kept = 0.0, entries = 0.0, lines = 0.0, short_lines = 0.0;
            size_t r0, c0, i, j;
            for (r0 = 0; r0 + (size_t)m <= rows; r0 += (size_t)m)
                for (c0 = 0; c0 + (size_t)m <= cols; c0 += (size_t)m) {
                    int cnt_r[TSENOR_MAX_M] = {0}, cnt_c[TSENOR_MAX_M] = {0}, ok = 1;
                    if (pm[r0 * cols + c0] == 255) continue;
                    for (i = 0; i < (size_t)m; i++)
                        for (j = 0; j < (size_t)m; j++) {
                            cnt_r[i] += pm[(r0 + i) * cols + c0 + j] != 0;
                            cnt_c[j] += pm[(r0 + i) * cols + c0 + j] != 0;
                        }
                    for (i = 0; i < (size_t)m; i++) {
                        ok &= cnt_r[i] == n && cnt_c[i] == n;
                        short_lines += (cnt_r[i] < n) + (cnt_c[i] < n);
                        kept += cnt_r[i];
                    }
                    p.invalid += !ok;
                    lines += 2.0 * m;
                    entries += (double)m * m;
                    for (i = 0; i < (size_t)m; i++)
                        for (j = 0; j < (size_t)m; j++) {
                            size_t k = (r0 + i) * cols + c0 + j;
                            double a = fabs((double)w[k]);
                            if (!pm[k]) pruned_peer += a;
                            if (!exact_mask[k]) pruned_exact += a;
                        }
                }
            if (pruned_exact > 0) p.error = (pruned_peer - pruned_exact) / pruned_exact;
            p.density = entries > 0 ? kept / entries : 0.0;
            p.short_lines = lines > 0 ? short_lines / lines : 0.0;
        }
        if (mf) fclose(mf);
        free(pm);
    }
    return p;
}

#endif
