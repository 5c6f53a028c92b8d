/*
 * sched: the sched_* calls. Priority ranges (1..99 for SCHED_FIFO and
 * SCHED_RR, 0..0 for SCHED_OTHER, EINVAL for an unknown policy),
 * sched_setscheduler / sched_getscheduler / sched_getparam / sched_setparam
 * and their errors, sched_rr_get_interval, and sched_getaffinity /
 * sched_setaffinity (pinning to one CPU is seen by sched_getcpu), which
 * agree with sysconf(_SC_NPROCESSORS_ONLN) and get_nprocs; for a
 * user that is not root, RLIMIT_RTPRIO bounds real-time priorities and
 * another user's threads are EPERM.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>

#include "check.h"

/* In a child that gives up root: what RLIMIT_RTPRIO and ownership allow. */
static void unprivileged(void)
{
	pid_t parent = getpid();
	pid_t child = fork();
	if (child == 0) {
		struct rlimit ten = { 10, 10 };
		CHECK_CALL(setrlimit(RLIMIT_RTPRIO, &ten));
		CHECK_CALL(setresuid(1000, 1000, 1000));
		struct sched_param sp = { .sched_priority = 10 };
		CHECK_CALL(sched_setscheduler(0, SCHED_FIFO, &sp));
		sp.sched_priority = 11;
		CHECK_ERRNO(sched_setscheduler(0, SCHED_FIFO, &sp), EPERM);
		CHECK_ERRNO(sched_setparam(0, &sp), EPERM);
		sp.sched_priority = 3;
		CHECK_CALL(sched_setparam(0, &sp));
		sp.sched_priority = 0;
		CHECK_CALL(sched_setscheduler(0, SCHED_OTHER, &sp));
		struct rlimit zero = { 0, 0 };
		CHECK_CALL(setrlimit(RLIMIT_RTPRIO, &zero));
		sp.sched_priority = 1;
		CHECK_ERRNO(sched_setscheduler(0, SCHED_RR, &sp), EPERM);
		check(sched_getscheduler(0) == SCHED_OTHER, "a refused change changes nothing", "policy %d",
		      sched_getscheduler(0));
		sp.sched_priority = 0;
		CHECK_ERRNO(sched_setscheduler(parent, SCHED_OTHER, &sp), EPERM);
		cpu_set_t mask;
		sched_getaffinity(0, sizeof mask, &mask);
		CHECK_ERRNO(sched_setaffinity(parent, sizeof mask, &mask), EPERM);
		CHECK_CALL(sched_setaffinity(0, sizeof mask, &mask));
		_exit(check_failures ? 1 : 0);
	}
	int status = 0;
	waitpid(child, &status, 0);
	check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "as uid 1000: RLIMIT_RTPRIO and ownership are enforced",
	      "child status %#x", status);
}

int main(void)
{
	start("sched");

	int fifo_min = sched_get_priority_min(SCHED_FIFO), fifo_max = sched_get_priority_max(SCHED_FIFO);
	int rr_min = sched_get_priority_min(SCHED_RR), rr_max = sched_get_priority_max(SCHED_RR);
	int other_min = sched_get_priority_min(SCHED_OTHER), other_max = sched_get_priority_max(SCHED_OTHER);
	check(fifo_min == 1 && fifo_max == 99 && rr_min == 1 && rr_max == 99, "SCHED_FIFO and SCHED_RR: 1..99",
	      "FIFO %d..%d, RR %d..%d", fifo_min, fifo_max, rr_min, rr_max);
	check(other_min == 0 && other_max == 0, "SCHED_OTHER: 0..0", "%d..%d", other_min, other_max);
	CHECK_ERRNO(sched_get_priority_max(1234), EINVAL);

	int policy = sched_getscheduler(0);
	check(policy == SCHED_OTHER, "a process starts SCHED_OTHER", "policy %d", policy);

	struct sched_param sp = { .sched_priority = 17 };
	CHECK_CALL(sched_setscheduler(0, SCHED_FIFO, &sp));
	sp.sched_priority = 0;
	sched_getparam(0, &sp);
	policy = sched_getscheduler(getpid());
	check(policy == SCHED_FIFO && sp.sched_priority == 17, "sched_setscheduler(SCHED_FIFO, 17) is read back",
	      "policy %d, priority %d", policy, sp.sched_priority);

	sp.sched_priority = 33;
	CHECK_CALL(sched_setparam(0, &sp));
	sp.sched_priority = 0;
	sched_getparam(0, &sp);
	check(sp.sched_priority == 33, "sched_setparam changes the priority", "priority %d", sp.sched_priority);

	sp.sched_priority = 5;
	CHECK_CALL(sched_setscheduler(0, SCHED_RR, &sp));
	struct timespec quantum = { 0, 0 };
	CHECK_CALL(sched_rr_get_interval(0, &quantum));
	check(sched_getscheduler(0) == SCHED_RR && (quantum.tv_sec > 0 || quantum.tv_nsec > 0),
	      "SCHED_RR with a time slice (sched_rr_get_interval)", "policy %d, slice %ld.%09ld",
	      sched_getscheduler(0), (long)quantum.tv_sec, quantum.tv_nsec);

	sp.sched_priority = 100;
	CHECK_ERRNO(sched_setscheduler(0, SCHED_FIFO, &sp), EINVAL);
	sp.sched_priority = 1;
	CHECK_ERRNO(sched_setscheduler(0, SCHED_OTHER, &sp), EINVAL);
	CHECK_ERRNO(sched_setscheduler(0, 1234, &sp), EINVAL);
	CHECK_ERRNO(sched_getscheduler(-1), EINVAL);
	CHECK_ERRNO(sched_getparam(0x3fffffff, &sp), ESRCH);

	sp.sched_priority = 0;
	CHECK_CALL(sched_setscheduler(0, SCHED_OTHER, &sp));
	check(sched_getscheduler(0) == SCHED_OTHER, "back to SCHED_OTHER", "policy %d", sched_getscheduler(0));

	cpu_set_t all, one, now;
	CPU_ZERO(&all);
	int r = sched_getaffinity(0, sizeof all, &all);
	int cpus = CPU_COUNT(&all);
	check(r == 0 && cpus >= 1 && CPU_ISSET(0, &all), "sched_getaffinity: CPU 0 among at least one",
	      "returned %d, %d CPUs", r, cpus);
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	check(online == cpus && get_nprocs() == cpus && get_nprocs_conf() >= cpus,
	      "sysconf(_SC_NPROCESSORS_ONLN) and get_nprocs count the CPUs of the mask",
	      "sysconf %ld, get_nprocs %d, get_nprocs_conf %d, mask %d", online, get_nprocs(), get_nprocs_conf(), cpus);
	/* CPU 0: Aspen runs every task there for now and refuses masks without it. */
	int pinned = 0;
	CPU_ZERO(&one);
	CPU_SET(pinned, &one);
	CHECK_CALL(sched_setaffinity(0, sizeof one, &one));
	sched_yield();
	CPU_ZERO(&now);
	sched_getaffinity(0, sizeof now, &now);
	int cpu = sched_getcpu();
	check(CPU_EQUAL(&now, &one) && cpu == pinned, "sched_setaffinity to one CPU: read back, and we run there",
	      "%d CPUs in the mask, running on %d, expected %d", CPU_COUNT(&now), cpu, pinned);
	CHECK_CALL(sched_setaffinity(0, sizeof all, &all));
	cpu_set_t none;
	CPU_ZERO(&none);
	CHECK_ERRNO(sched_setaffinity(0, sizeof none, &none), EINVAL);
	unprivileged();
	return done();
}
