/*
 * pshared: futexes shared between processes (keyed by the page, not the
 * address). A PTHREAD_PROCESS_SHARED mutex and condition variable in
 * MAP_SHARED|MAP_ANONYMOUS memory let a parent and its forked child take
 * turns; a tmpfs file in /tmp mapped MAP_SHARED twice, at two addresses,
 * lets a waiter block through one address and be woken through the other,
 * between threads and between processes.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "check.h"

#define TURNS 500

struct shared {
	pthread_mutex_t mutex;
	pthread_cond_t cond;
	int turn; /* even: the parent's turn, odd: the child's */
};

/* Takes the turns of `parity` until the count reaches 2 * TURNS. */
static void take_turns(struct shared *s, int parity)
{
	pthread_mutex_lock(&s->mutex);
	for (;;) {
		while (s->turn < 2 * TURNS && s->turn % 2 != parity)
			pthread_cond_wait(&s->cond, &s->mutex);
		if (s->turn >= 2 * TURNS)
			break;
		s->turn++;
		pthread_cond_broadcast(&s->cond);
	}
	pthread_mutex_unlock(&s->mutex);
}

static void mutex_and_condvar(void)
{
	struct shared *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (!check(s != MAP_FAILED, "mmap MAP_SHARED|MAP_ANONYMOUS", "errno %d", errno))
		return;
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutex_init(&s->mutex, &ma);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
	pthread_cond_init(&s->cond, &ca);
	s->turn = 0;

	pid_t pid = fork();
	if (pid == 0) {
		take_turns(s, 1);
		_exit(0);
	}
	take_turns(s, 0);
	int status = -1;
	waitpid(pid, &status, 0);
	check(s->turn == 2 * TURNS && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "parent and child take 1000 turns with a process-shared mutex and condition variable",
	      "turn %d, child status %#x", s->turn, status);
	munmap(s, sizeof *s);
}

static long futex(uint32_t *uaddr, int op, uint32_t val)
{
	return syscall(SYS_futex, uaddr, op, val, NULL, NULL, 0);
}

static uint32_t *wait_word;
static long thread_wait_ret;
static int thread_started;

static void *wait_through_first(void *arg)
{
	(void)arg;
	__atomic_store_n(&thread_started, 1, __ATOMIC_SEQ_CST);
	thread_wait_ret = futex(wait_word, FUTEX_WAIT, 0);
	return NULL;
}

/* Wakes through `word` until one waiter is woken, for up to 5 s; returns FUTEX_WAKE's last result. */
static long wake_one(uint32_t *word)
{
	long r = 0;
	for (long long give_up = now_ns() + 5000000000LL; r == 0 && now_ns() < give_up;) {
		sleep_ms(10);
		r = futex(word, FUTEX_WAKE, 1);
	}
	return r;
}

static void two_addresses(void)
{
	char path[] = "/tmp/aspen-pshared-XXXXXX";
	int fd = mkstemp(path);
	if (!check(fd >= 0, "mkstemp in /tmp", "errno %d (%s)", errno, strerror(errno)))
		return;
	static char zero[4096];
	check(write(fd, zero, sizeof zero) == sizeof zero, "the file gets a page", "errno %d", errno);
	uint32_t *a = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	uint32_t *b = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	unlink(path);
	if (!check(a != MAP_FAILED && b != MAP_FAILED && a != b, "the file mapped MAP_SHARED at two addresses",
		   "%p and %p, errno %d", (void *)a, (void *)b, errno))
		return;
	a[1] = 0x1234;
	check(b[1] == 0x1234, "a store through one address is seen through the other", "read %#x", b[1]);

	wait_word = &a[0];
	pthread_t t;
	start_thread(&t, wait_through_first, NULL);
	while (!__atomic_load_n(&thread_started, __ATOMIC_SEQ_CST))
		sleep_ms(1);
	long r = wake_one(&b[0]);
	pthread_join(t, NULL);
	check(r == 1 && thread_wait_ret == 0, "a thread waiting through one address is woken through the other",
	      "FUTEX_WAKE returned %ld, FUTEX_WAIT %ld", r, thread_wait_ret);

	a[2] = 0;
	pid_t pid = fork();
	if (pid == 0) {
		__atomic_store_n(&a[2], 1, __ATOMIC_SEQ_CST);
		_exit(futex(&a[0], FUTEX_WAIT, 0) == 0 ? 0 : 1);
	}
	while (!__atomic_load_n(&b[2], __ATOMIC_SEQ_CST))
		sleep_ms(1);
	r = wake_one(&b[0]);
	int status = -1;
	waitpid(pid, &status, 0);
	check(r == 1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "a child waiting through one address is woken by the parent through the other",
	      "FUTEX_WAKE returned %ld, child status %#x", r, status);
	CHECK_CALL(munmap(a, 4096));
	CHECK_CALL(munmap(b, 4096));
}

int main(void)
{
	start("pshared");
	mutex_and_condvar();
	two_addresses();
	return done();
}
