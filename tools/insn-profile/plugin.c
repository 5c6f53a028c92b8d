/*
 * A QEMU TCG plugin that counts the guest instructions executed per
 * translation block, for `scripts/profile.sh`: at exit it writes one line
 * per block that ran, "<vaddr hex> <instructions in the block> <times run>",
 * to the file named by $PROF_OUT. Under -icount these are exactly the
 * instructions the benchmark's ticks count.
 *
 * The plugin API it uses is declared in ../qemu-plugin/api.h.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "../qemu-plugin/api.h"

/* One translated block: where, how many instructions, how often run. */
struct block {
    uint64_t vaddr;
    uint64_t insns;
    uint64_t runs;
    struct block *next;
};

static struct block *blocks;

static void block_ran(unsigned int vcpu, void *userdata)
{
    (void)vcpu;
    ((struct block *)userdata)->runs++;
}

static void block_translated(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    struct block *b = calloc(1, sizeof *b);
    if (!b)
        return;
    b->vaddr = qemu_plugin_tb_vaddr(tb);
    b->insns = qemu_plugin_tb_n_insns(tb);
    b->next = blocks;
    blocks = b;
    /* flags 0: the callback reads no registers. */
    qemu_plugin_register_vcpu_tb_exec_cb(tb, block_ran, 0, b);
}

static void at_exit(qemu_plugin_id_t id, void *p)
{
    (void)id;
    (void)p;
    const char *path = getenv("PROF_OUT");
    FILE *out = fopen(path ? path : "insn-profile.txt", "w");
    if (!out)
        return;
    for (struct block *b = blocks; b; b = b->next)
        if (b->runs)
            fprintf(out, "%" PRIx64 " %" PRIu64 " %" PRIu64 "\n", b->vaddr, b->insns, b->runs);
    fclose(out);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                                               int argc, char **argv)
{
    (void)info;
    (void)argc;
    (void)argv;
    qemu_plugin_register_vcpu_tb_trans_cb(id, block_translated);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
