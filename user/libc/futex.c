/*
 * futex: the futex(2) system call used raw, as libc uses it underneath:
 * WAIT/WAKE and the counts WAKE returns, EAGAIN when the word has changed,
 * timeouts (relative for WAIT, absolute on CLOCK_MONOTONIC and, with
 * FUTEX_CLOCK_REALTIME, on CLOCK_REALTIME for WAIT_BITSET),
 * WAIT_BITSET/WAKE_BITSET choosing whom to wake, REQUEUE and CMP_REQUEUE
 * (counts, who moves where, EAGAIN on a mismatch) and WAKE_OP.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>

#include "check.h"

static long futex(uint32_t *uaddr, int op, uint32_t val, const struct timespec *timeout, uint32_t *uaddr2,
		  uint32_t val3)
{
	return syscall(SYS_futex, uaddr, op, val, timeout, uaddr2, val3);
}

/* REQUEUE, CMP_REQUEUE and WAKE_OP take a count (val2) where the timeout goes. */
static long futex2(uint32_t *uaddr, int op, uint32_t val, uint32_t val2, uint32_t *uaddr2, uint32_t val3)
{
	return syscall(SYS_futex, uaddr, op, val, (unsigned long)val2, uaddr2, val3);
}

/* A thread blocked in FUTEX_WAIT_BITSET on `word` while it holds `expected`. */
struct waiter {
	pthread_t thread;
	uint32_t *word;
	uint32_t expected;
	uint32_t bitset;
	int started, finished;
	long ret;
	int err;
};

static void *wait_body(void *arg)
{
	struct waiter *w = arg;
	__atomic_store_n(&w->started, 1, __ATOMIC_SEQ_CST);
	w->ret = futex(w->word, FUTEX_WAIT_BITSET_PRIVATE, w->expected, NULL, NULL, w->bitset);
	w->err = errno;
	__atomic_store_n(&w->finished, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void start_waiter(struct waiter *w, uint32_t *word, uint32_t bitset)
{
	*w = (struct waiter){ .word = word, .expected = *word, .bitset = bitset };
	start_thread(&w->thread, wait_body, w);
}

/*
 * Waits until every waiter has started, then gives them time to block in
 * the kernel: a thread that set `started` is a few instructions away from
 * the system call.
 */
static void settle(struct waiter *w, int n)
{
	for (int i = 0; i < n; i++)
		while (!__atomic_load_n(&w[i].started, __ATOMIC_SEQ_CST))
			sleep_ms(1);
	sleep_ms(100);
}

static int finished(const struct waiter *w)
{
	return __atomic_load_n(&w->finished, __ATOMIC_SEQ_CST);
}

/* Wakes everything left on `word` and joins the waiters; all must have returned 0. */
static int finish(struct waiter *w, int n, uint32_t *word)
{
	futex(word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
	int all_zero = 1;
	for (int i = 0; i < n; i++) {
		pthread_join(w[i].thread, NULL);
		all_zero &= w[i].ret == 0;
	}
	return all_zero;
}

static void timeouts(void)
{
	uint32_t word = 0;
	struct timespec rel = { 0, 50 * 1000000 };
	long long t0 = now_ns();
	long r = futex(&word, FUTEX_WAIT_PRIVATE, 0, &rel, NULL, 0);
	long long waited = now_ns() - t0;
	check(r == -1 && errno == ETIMEDOUT && waited >= 50000000LL, "FUTEX_WAIT times out after a relative 50 ms",
	      "returned %ld errno %d after %lld ns", r, errno, waited);

	struct timespec abs;
	clock_gettime(CLOCK_REALTIME, &abs);
	long long deadline = abs.tv_sec * 1000000000LL + abs.tv_nsec + 50000000LL;
	abs.tv_sec = deadline / 1000000000LL;
	abs.tv_nsec = deadline % 1000000000LL;
	r = futex(&word, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, 0, &abs, NULL, FUTEX_BITSET_MATCH_ANY);
	struct timespec after;
	clock_gettime(CLOCK_REALTIME, &after);
	long long late = after.tv_sec * 1000000000LL + after.tv_nsec - deadline;
	check(r == -1 && errno == ETIMEDOUT && late >= 0,
	      "FUTEX_WAIT_BITSET|FUTEX_CLOCK_REALTIME times out at an absolute time, not before",
	      "returned %ld errno %d, %lld ns after the deadline", r, errno, late);

	clock_gettime(CLOCK_MONOTONIC, &abs);
	deadline = abs.tv_sec * 1000000000LL + abs.tv_nsec + 50000000LL;
	abs.tv_sec = deadline / 1000000000LL;
	abs.tv_nsec = deadline % 1000000000LL;
	r = futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 0, &abs, NULL, FUTEX_BITSET_MATCH_ANY);
	late = now_ns() - deadline;
	check(r == -1 && errno == ETIMEDOUT && late >= 0,
	      "FUTEX_WAIT_BITSET times out at an absolute CLOCK_MONOTONIC time, not before",
	      "returned %ld errno %d, %lld ns after the deadline", r, errno, late);

	struct timespec bad = { 0, 1000000000L };
	CHECK_ERRNO(futex(&word, FUTEX_WAIT_PRIVATE, 0, &bad, NULL, 0), EINVAL);
}

int main(void)
{
	start("futex");

	uint32_t word = 0, other = 0;
	CHECK_ERRNO(futex(&word, FUTEX_WAIT_PRIVATE, 1, NULL, NULL, 0), EAGAIN);
	CHECK_ERRNO(futex(&word, FUTEX_WAIT, 1, NULL, NULL, 0), EAGAIN);
	long r = futex(&word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	check(r == 0, "FUTEX_WAKE without waiters wakes 0", "returned %ld", r);
	CHECK_ERRNO(futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 0, NULL, NULL, 0), EINVAL);

	timeouts();

	struct waiter w[3];
	for (int i = 0; i < 3; i++)
		start_waiter(&w[i], &word, FUTEX_BITSET_MATCH_ANY);
	settle(w, 3);
	r = futex(&word, FUTEX_WAKE_PRIVATE, 2, NULL, NULL, 0);
	long r2 = futex(&word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
	check(r == 2 && r2 == 1, "FUTEX_WAKE of 2 out of 3 waiters returns 2, then the last one 1", "returned %ld, %ld",
	      r, r2);
	check(finish(w, 3, &word), "woken waiters return 0", "a waiter returned %ld/%ld/%ld", w[0].ret, w[1].ret,
	      w[2].ret);

	start_waiter(&w[0], &word, 0x1);
	start_waiter(&w[1], &word, 0x2);
	settle(w, 2);
	r = futex(&word, FUTEX_WAKE_BITSET_PRIVATE, INT_MAX, NULL, NULL, 0x2);
	sleep_ms(50);
	check(r == 1 && finished(&w[1]) && !finished(&w[0]), "FUTEX_WAKE_BITSET wakes only the matching waiter",
	      "returned %ld; waiter 0x1 finished %d, waiter 0x2 finished %d", r, finished(&w[0]), finished(&w[1]));
	r = futex(&word, FUTEX_WAKE_BITSET_PRIVATE, INT_MAX, NULL, NULL, 0x4);
	check(r == 0, "FUTEX_WAKE_BITSET with a bitset nobody waits on wakes 0", "returned %ld", r);
	r = futex(&word, FUTEX_WAKE_BITSET_PRIVATE, INT_MAX, NULL, NULL, 0x1);
	check(r == 1 && finish(w, 2, &word), "FUTEX_WAKE_BITSET wakes the other one", "returned %ld", r);

	for (int i = 0; i < 3; i++)
		start_waiter(&w[i], &word, FUTEX_BITSET_MATCH_ANY);
	settle(w, 3);
	r = futex2(&word, FUTEX_REQUEUE_PRIVATE, 1, 1, &other, 0);
	sleep_ms(50);
	int woken = finished(&w[0]) + finished(&w[1]) + finished(&w[2]);
	check(r == 2 && woken == 1, "FUTEX_REQUEUE wakes 1, moves 1, returns 2", "returned %ld, %d woken", r, woken);
	r = futex(&word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
	r2 = futex(&other, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
	check(r == 1 && r2 == 1, "one waiter stayed, one now waits on the second word", "woke %ld and %ld", r, r2);
	check(finish(w, 3, &word), "requeued waiters return 0", "returned %ld/%ld/%ld", w[0].ret, w[1].ret, w[2].ret);

	for (int i = 0; i < 3; i++)
		start_waiter(&w[i], &word, FUTEX_BITSET_MATCH_ANY);
	settle(w, 3);
	CHECK_ERRNO(futex2(&word, FUTEX_CMP_REQUEUE_PRIVATE, 1, INT_MAX, &other, word + 1), EAGAIN);
	r = futex2(&word, FUTEX_CMP_REQUEUE_PRIVATE, 0, INT_MAX, &other, word);
	sleep_ms(50);
	woken = finished(&w[0]) + finished(&w[1]) + finished(&w[2]);
	check(r == 3 && woken == 0, "FUTEX_CMP_REQUEUE moves all 3 without waking", "returned %ld, %d woken", r, woken);
	r = futex(&word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
	r2 = futex(&other, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
	check(r == 0 && r2 == 3, "the 3 wait on the second word now", "woke %ld and %ld", r, r2);
	check(finish(w, 3, &word), "requeued waiters return 0", "returned %ld/%ld/%ld", w[0].ret, w[1].ret, w[2].ret);

	other = 0;
	start_waiter(&w[0], &word, FUTEX_BITSET_MATCH_ANY);
	start_waiter(&w[1], &other, FUTEX_BITSET_MATCH_ANY);
	settle(w, 2);
	/* *other = 5; wake 1 on word; if the old *other == 0, wake 1 on other too. */
	r = futex2(&word, FUTEX_WAKE_OP_PRIVATE, 1, 1, &other, FUTEX_OP(FUTEX_OP_SET, 5, FUTEX_OP_CMP_EQ, 0));
	check(r == 2 && other == 5, "FUTEX_WAKE_OP sets the second word and wakes on both when the comparison holds",
	      "returned %ld, second word %u", r, other);
	check(finish(w, 2, &word) && finish(w, 0, &other), "FUTEX_WAKE_OP's waiters return 0", "returned %ld/%ld",
	      w[0].ret, w[1].ret);

	start_waiter(&w[0], &word, FUTEX_BITSET_MATCH_ANY);
	start_waiter(&w[1], &other, FUTEX_BITSET_MATCH_ANY);
	settle(w, 2);
	/* *other += 1; the old value 5 is not 0: only the waiter on word wakes. */
	r = futex2(&word, FUTEX_WAKE_OP_PRIVATE, 1, 1, &other, FUTEX_OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 0));
	sleep_ms(50);
	check(r == 1 && other == 6 && finished(&w[0]) && !finished(&w[1]),
	      "FUTEX_WAKE_OP adds and wakes only on the first word when the comparison fails",
	      "returned %ld, second word %u", r, other);
	r = futex(&other, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
	check(r == 1, "the waiter on the second word was still there", "woke %ld", r);
	check(finish(w, 2, &word), "FUTEX_WAKE_OP's waiters return 0", "returned %ld/%ld", w[0].ret, w[1].ret);

	return done();
}
