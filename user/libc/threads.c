/*
 * threads: POSIX threads on top of clone(CLONE_VM|CLONE_THREAD|CLONE_SETTLS|...):
 * create and join with return values, mutual exclusion, condition variables,
 * barriers, __thread variables (with an initial value), errno per thread,
 * distinct pthread_self() and gettid(), and 50 threads created and joined
 * over and over without the process's mappings growing.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>

#include "check.h"

#define WORKERS 4
#define INCREMENTS 100000
#define MANY 50
#define ROUNDS 10

static void *return_arg_plus_one(void *arg)
{
	return (void *)((uintptr_t)arg + 1);
}

static pthread_mutex_t counter_lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;

static void *increment(void *arg)
{
	(void)arg;
	for (int i = 0; i < INCREMENTS; i++) {
		pthread_mutex_lock(&counter_lock);
		counter++;
		pthread_mutex_unlock(&counter_lock);
	}
	return NULL;
}

/* A one-slot mailbox: the producer waits while it is full, the consumer while it is empty. */
static pthread_mutex_t box_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t box_changed = PTHREAD_COND_INITIALIZER;
static int box_full, box_value;

static void *producer(void *arg)
{
	int n = (int)(uintptr_t)arg;
	for (int i = 1; i <= n; i++) {
		pthread_mutex_lock(&box_lock);
		while (box_full)
			pthread_cond_wait(&box_changed, &box_lock);
		box_value = i;
		box_full = 1;
		pthread_cond_broadcast(&box_changed);
		pthread_mutex_unlock(&box_lock);
	}
	return NULL;
}

static pthread_barrier_t barrier;
static int arrived, serial_threads, early_leavers;

static void *barrier_worker(void *arg)
{
	(void)arg;
	__atomic_add_fetch(&arrived, 1, __ATOMIC_SEQ_CST);
	int r = pthread_barrier_wait(&barrier);
	if (r == PTHREAD_BARRIER_SERIAL_THREAD)
		__atomic_add_fetch(&serial_threads, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&arrived, __ATOMIC_SEQ_CST) != WORKERS)
		__atomic_add_fetch(&early_leavers, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static __thread int tls_value = 42;
static __thread char tls_buffer[256];

struct tls_report {
	int initial;     /* tls_value as the thread found it */
	int kept;        /* its own value survived other threads writing theirs */
	int buffer_zero; /* tls_buffer started zeroed */
	pid_t tid;
	pthread_t self;
};

static void *tls_worker(void *arg)
{
	struct tls_report *r = arg;
	r->initial = tls_value;
	r->buffer_zero = 1;
	for (size_t i = 0; i < sizeof tls_buffer; i++)
		if (tls_buffer[i])
			r->buffer_zero = 0;
	int mine = 1000 + gettid();
	tls_value = mine;
	memset(tls_buffer, mine & 0xff, sizeof tls_buffer);
	pthread_barrier_wait(&barrier);
	r->kept = tls_value == mine && tls_buffer[100] == (char)(mine & 0xff);
	r->tid = gettid();
	r->self = pthread_self();
	return NULL;
}

static int errno_seen[2];

static void *errno_worker(void *arg)
{
	int which = (int)(uintptr_t)arg;
	if (which == 0)
		close(-1); /* EBADF */
	else
		open("/nonexistent/file", O_RDONLY); /* ENOENT */
	pthread_barrier_wait(&barrier);
	errno_seen[which] = errno;
	return NULL;
}

static void *tiny(void *arg)
{
	return arg;
}

/* Lines of /proc/self/maps: the number of mappings. */
static int count_mappings(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return -1;
	int lines = 0, c;
	while ((c = fgetc(f)) != EOF)
		lines += c == '\n';
	fclose(f);
	return lines;
}

int main(void)
{
	start("threads");

	pthread_t t[MANY];
	void *ret = NULL;
	start_thread(&t[0], return_arg_plus_one, (void *)41);
	int r = pthread_join(t[0], &ret);
	check(r == 0 && ret == (void *)42, "pthread_join returns the thread's value", "returned %d, value %p", r,
	      ret);

	for (int i = 0; i < WORKERS; i++)
		start_thread(&t[i], increment, NULL);
	for (int i = 0; i < WORKERS; i++)
		pthread_join(t[i], NULL);
	check(counter == (long)WORKERS * INCREMENTS, "a mutex makes increments exclusive", "counter %ld, expected %ld",
	      counter, (long)WORKERS * INCREMENTS);

	const int items = 2000;
	long sum = 0;
	int in_order = 1, previous = 0;
	start_thread(&t[0], producer, (void *)(uintptr_t)items);
	for (int i = 0; i < items; i++) {
		pthread_mutex_lock(&box_lock);
		while (!box_full)
			pthread_cond_wait(&box_changed, &box_lock);
		in_order &= box_value == previous + 1;
		previous = box_value;
		sum += box_value;
		box_full = 0;
		pthread_cond_broadcast(&box_changed);
		pthread_mutex_unlock(&box_lock);
	}
	pthread_join(t[0], NULL);
	check(in_order && sum == (long)items * (items + 1) / 2, "condition variables hand over every item in order",
	      "in order %d, sum %ld", in_order, sum);

	pthread_barrier_init(&barrier, NULL, WORKERS);
	for (int i = 0; i < WORKERS; i++)
		start_thread(&t[i], barrier_worker, NULL);
	for (int i = 0; i < WORKERS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&barrier);
	check(early_leavers == 0 && serial_threads == 1, "a barrier releases only when all arrived, one serial thread",
	      "%d left early, %d serial threads", early_leavers, serial_threads);

	struct tls_report rep[WORKERS] = { 0 };
	tls_value = 7;
	pthread_barrier_init(&barrier, NULL, WORKERS);
	for (int i = 0; i < WORKERS; i++)
		start_thread(&t[i], tls_worker, &rep[i]);
	for (int i = 0; i < WORKERS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&barrier);
	int tls_ok = tls_value == 7, ids_ok = 1;
	for (int i = 0; i < WORKERS; i++) {
		tls_ok &= rep[i].initial == 42 && rep[i].kept && rep[i].buffer_zero;
		ids_ok &= rep[i].tid > 0 && rep[i].tid != getpid() && !pthread_equal(rep[i].self, pthread_self());
		for (int j = 0; j < i; j++)
			ids_ok &= rep[i].tid != rep[j].tid && !pthread_equal(rep[i].self, rep[j].self);
	}
	check(tls_ok, "__thread: initial value in each thread, values kept apart",
	      "main's value %d, thread 0 started with %d", tls_value, rep[0].initial);
	check(ids_ok, "gettid() and pthread_self() differ between threads, getpid() is the main thread's tid",
	      "tids %d %d, pid %d", rep[0].tid, rep[1].tid, getpid());
	check(gettid() == getpid(), "the main thread's tid is the pid", "tid %d, pid %d", gettid(), getpid());

	pthread_barrier_init(&barrier, NULL, 2);
	start_thread(&t[0], errno_worker, (void *)0);
	start_thread(&t[1], errno_worker, (void *)1);
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	pthread_barrier_destroy(&barrier);
	check(errno_seen[0] == EBADF && errno_seen[1] == ENOENT, "errno is per thread", "saw %d and %d",
	      errno_seen[0], errno_seen[1]);

	int maps_after_first = -1, created = 0, joined_ok = 1;
	for (int round = 0; round < ROUNDS; round++) {
		int n = 0;
		for (; n < MANY; n++) {
			if (pthread_create(&t[n], NULL, tiny, (void *)(uintptr_t)(n + 1)) != 0)
				break;
			created++;
		}
		for (int i = 0; i < n; i++) {
			joined_ok &= pthread_join(t[i], &ret) == 0 && ret == (void *)(uintptr_t)(i + 1);
		}
		if (round == 0)
			maps_after_first = count_mappings();
	}
	int maps_at_end = count_mappings();
	check(created == MANY * ROUNDS && joined_ok, "50 threads at once, 10 rounds, all joined",
	      "created %d of %d, joins ok %d", created, MANY * ROUNDS, joined_ok);
	check(maps_after_first > 0 && maps_at_end == maps_after_first,
	      "joined threads give their stacks back (no more mappings after 10 rounds than after 1)",
	      "%d mappings after round 1, %d after round %d", maps_after_first, maps_at_end, ROUNDS);
	return done();
}
