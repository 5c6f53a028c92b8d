/*
 * The few functions of QEMU's TCG plugin API (version 4) that Aspen's
 * plugins use (tools/insn-profile, tools/stretch), declared here because
 * QEMU's qemu-plugin.h is not packaged. Each plugin includes this once.
 */
#ifndef ASPEN_QEMU_PLUGIN_API_H
#define ASPEN_QEMU_PLUGIN_API_H

#include <stddef.h>
#include <stdint.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
typedef struct qemu_info_t qemu_info_t;
typedef void (*tb_trans_cb)(qemu_plugin_id_t, struct qemu_plugin_tb *);
typedef void (*vcpu_udata_cb)(unsigned int vcpu, void *userdata);
typedef void (*simple_cb)(qemu_plugin_id_t, void *);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, tb_trans_cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *, vcpu_udata_cb, int flags, void *);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t, simple_cb, void *);

__attribute__((visibility("default"))) int qemu_plugin_version = 4;

#endif
