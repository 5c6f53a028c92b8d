/*
 * A QEMU TCG plugin that finds the longest non-preemptible stretches of a
 * kernel run on one vCPU: runs of kernel instructions with no place where
 * a better task could take the CPU. A stretch begins at a trap from EL0
 * (the block at an address of $STRETCH_BEGIN: the lower-EL vectors), or
 * at a place where the kernel could have switched ($STRETCH_MARKS: a pause
 * point, the task switch); it ends at the next mark or at the first block
 * at a user address (the return to EL0). For the $STRETCH_KEEP (default 8)
 * longest stretches it writes to $STRETCH_OUT (default stretch.txt) a
 * "stretch N instructions" line, then the blocks that ran in it, in order,
 * as "<vaddr hex> <instructions> <times run in a row>" lines
 * (tools/stretch/report.py names them).
 * Instruction counts are per translated block (a block that faults part
 * way counts whole), which is what -icount counts too, to a few.
 *
 * The plugin API it uses is declared in ../qemu-plugin/api.h.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../qemu-plugin/api.h"

#define USER_TOP 0xffff000000000000ull
#define MAX_ADDRS 16
#define MAX_KEEP 32

enum kind { PLAIN, BEGIN, MARK, USER };

struct block {
    uint64_t vaddr;
    uint64_t insns;
    enum kind kind;
};

/* The blocks of a stretch, in order. */
struct trail {
    struct block **blocks;
    size_t len, cap;
    uint64_t insns;
};

static uint64_t begins[MAX_ADDRS], marks[MAX_ADDRS];
static size_t nbegins, nmarks, keep = 8;
static struct trail now, kept[MAX_KEEP];
static bool open_stretch;

static size_t parse(const char *list, uint64_t *out)
{
    size_t n = 0;
    for (const char *p = list; p && *p && n < MAX_ADDRS;) {
        char *end;
        out[n++] = strtoull(p, &end, 16);
        p = *end ? end + 1 : end;
    }
    return n;
}

static bool listed(uint64_t vaddr, const uint64_t *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == vaddr)
            return true;
    return false;
}

/* Keeps the stretch just ended if it is among the longest. */
static void close_stretch(void)
{
    if (!open_stretch)
        return;
    open_stretch = false;
    size_t shortest = 0;
    for (size_t i = 1; i < keep; i++)
        if (kept[i].insns < kept[shortest].insns)
            shortest = i;
    if (now.insns <= kept[shortest].insns)
        return;
    struct trail old = kept[shortest];
    kept[shortest] = now;
    free(old.blocks);
    now = (struct trail){0};
}

static void start_stretch(void)
{
    open_stretch = true;
    now.len = 0;
    now.insns = 0;
}

static void block_ran(unsigned int vcpu, void *userdata)
{
    (void)vcpu;
    struct block *b = userdata;
    switch (b->kind) {
    case USER:
        close_stretch();
        return;
    case MARK:
        close_stretch();
        start_stretch();
        break;
    case BEGIN:
        start_stretch();
        break;
    case PLAIN:
        if (!open_stretch)
            return;
    }
    if (now.len == now.cap) {
        size_t cap = now.cap ? 2 * now.cap : 4096;
        struct block **blocks = realloc(now.blocks, cap * sizeof *blocks);
        if (!blocks)
            abort();
        now.blocks = blocks;
        now.cap = cap;
    }
    now.blocks[now.len++] = b;
    now.insns += b->insns;
}

static void block_translated(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    struct block *b = calloc(1, sizeof *b);
    if (!b)
        return;
    b->vaddr = qemu_plugin_tb_vaddr(tb);
    b->insns = qemu_plugin_tb_n_insns(tb);
    b->kind = b->vaddr < USER_TOP             ? USER
              : listed(b->vaddr, begins, nbegins) ? BEGIN
              : listed(b->vaddr, marks, nmarks)   ? MARK
                                                  : PLAIN;
    /* flags 0: the callback reads no registers. */
    qemu_plugin_register_vcpu_tb_exec_cb(tb, block_ran, 0, b);
}

static int by_length(const void *a, const void *b)
{
    uint64_t x = ((const struct trail *)a)->insns, y = ((const struct trail *)b)->insns;
    return x > y ? -1 : x < y;
}

static void at_exit(qemu_plugin_id_t id, void *p)
{
    (void)id;
    (void)p;
    const char *path = getenv("STRETCH_OUT");
    FILE *out = fopen(path ? path : "stretch.txt", "w");
    if (!out)
        return;
    qsort(kept, keep, sizeof kept[0], by_length);
    for (size_t i = 0; i < keep && kept[i].insns; i++) {
        struct trail *t = &kept[i];
        fprintf(out, "stretch %" PRIu64 " instructions, from %" PRIx64 " to %" PRIx64 "\n", t->insns,
                t->blocks[0]->vaddr, t->blocks[t->len - 1]->vaddr);
        for (size_t j = 0; j < t->len;) {
            size_t k = j;
            while (k < t->len && t->blocks[k] == t->blocks[j])
                k++;
            fprintf(out, "%" PRIx64 " %" PRIu64 " %zu\n", t->blocks[j]->vaddr, t->blocks[j]->insns, k - j);
            j = k;
        }
    }
    fclose(out);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                                               int argc, char **argv)
{
    (void)info;
    (void)argc;
    (void)argv;
    nbegins = parse(getenv("STRETCH_BEGIN"), begins);
    nmarks = parse(getenv("STRETCH_MARKS"), marks);
    const char *k = getenv("STRETCH_KEEP");
    if (k)
        keep = strtoul(k, NULL, 10);
    if (keep < 1 || keep > MAX_KEEP)
        keep = 8;
    qemu_plugin_register_vcpu_tb_trans_cb(id, block_translated);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
