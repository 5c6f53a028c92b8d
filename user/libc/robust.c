/*
 * robust: robust mutexes (set_robust_list and the kernel's walk of the list
 * when a thread or process dies). A thread exits holding a robust mutex: the
 * next lock returns EOWNERDEAD, pthread_mutex_consistent() makes it usable,
 * and without it the mutex becomes ENOTRECOVERABLE. A thread already blocked
 * on the mutex is woken with EOWNERDEAD when the owner exits. The same across
 * processes with a PTHREAD_PROCESS_SHARED robust mutex in MAP_SHARED memory
 * held by a child that exits, before and while the parent waits.
 */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "check.h"

static void init_robust(pthread_mutex_t *m, int pshared)
{
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	pthread_mutexattr_setpshared(&ma, pshared);
	pthread_mutex_init(m, &ma);
	pthread_mutexattr_destroy(&ma);
}

static pthread_mutex_t mutex;
static int owner_locked;

/* Locks the mutex and exits without unlocking, after `arg` ms. */
static void *die_holding(void *arg)
{
	pthread_mutex_lock(&mutex);
	__atomic_store_n(&owner_locked, 1, __ATOMIC_SEQ_CST);
	sleep_ms((long)arg);
	return NULL;
}

static void threads(void)
{
	struct robust_list_head *head = NULL;
	size_t len = 0;
	long r = syscall(SYS_get_robust_list, 0, &head, &len);
	check(r == 0 && head != NULL && len == sizeof *head, "libc registered a robust list (get_robust_list)",
	      "returned %ld, head %p, len %zu", r, (void *)head, len);

	init_robust(&mutex, PTHREAD_PROCESS_PRIVATE);
	pthread_t t;
	start_thread(&t, die_holding, (void *)0);
	pthread_join(t, NULL);
	int e = pthread_mutex_lock(&mutex);
	check(e == EOWNERDEAD, "lock after the owner thread exited: EOWNERDEAD", "returned %d (%s)", e, strerror(e));
	e = pthread_mutex_consistent(&mutex);
	check(e == 0, "pthread_mutex_consistent", "returned %d (%s)", e, strerror(e));
	pthread_mutex_unlock(&mutex);
	e = pthread_mutex_lock(&mutex);
	check(e == 0, "the repaired mutex locks normally", "returned %d (%s)", e, strerror(e));
	pthread_mutex_unlock(&mutex);

	start_thread(&t, die_holding, (void *)0);
	pthread_join(t, NULL);
	e = pthread_mutex_lock(&mutex);
	pthread_mutex_unlock(&mutex);
	int e2 = pthread_mutex_lock(&mutex);
	check(e == EOWNERDEAD && e2 == ENOTRECOVERABLE, "unlocked without pthread_mutex_consistent: ENOTRECOVERABLE",
	      "returned %d then %d", e, e2);
	pthread_mutex_destroy(&mutex);

	init_robust(&mutex, PTHREAD_PROCESS_PRIVATE);
	owner_locked = 0;
	start_thread(&t, die_holding, (void *)200);
	while (!__atomic_load_n(&owner_locked, __ATOMIC_SEQ_CST))
		sleep_ms(1);
	e = pthread_mutex_lock(&mutex); /* blocks until the owner exits */
	check(e == EOWNERDEAD, "a waiter blocked on the mutex is woken with EOWNERDEAD when the owner thread exits",
	      "returned %d (%s)", e, strerror(e));
	pthread_mutex_consistent(&mutex);
	pthread_mutex_unlock(&mutex);
	pthread_join(t, NULL);
	pthread_mutex_destroy(&mutex);
}

struct shared {
	pthread_mutex_t mutex;
	int child_locked;
};

/* A child that locks the shared mutex and exits after `hold_ms` holding it. */
static pid_t child_dies_holding(struct shared *s, long hold_ms)
{
	s->child_locked = 0;
	pid_t pid = fork();
	if (pid == 0) {
		pthread_mutex_lock(&s->mutex);
		__atomic_store_n(&s->child_locked, 1, __ATOMIC_SEQ_CST);
		sleep_ms(hold_ms);
		_exit(0);
	}
	return pid;
}

static void processes(void)
{
	struct shared *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (!check(s != MAP_FAILED, "mmap MAP_SHARED|MAP_ANONYMOUS", "errno %d", errno))
		return;
	init_robust(&s->mutex, PTHREAD_PROCESS_SHARED);

	int status = -1;
	pid_t pid = child_dies_holding(s, 0);
	waitpid(pid, &status, 0);
	int e = pthread_mutex_lock(&s->mutex);
	check(s->child_locked && e == EOWNERDEAD,
	      "a process-shared robust mutex held by a child that exited: EOWNERDEAD",
	      "child locked %d, status %#x, lock returned %d (%s)", s->child_locked, status, e, strerror(e));
	pthread_mutex_consistent(&s->mutex);
	pthread_mutex_unlock(&s->mutex);
	e = pthread_mutex_lock(&s->mutex);
	check(e == 0, "and it locks normally after pthread_mutex_consistent", "returned %d (%s)", e, strerror(e));
	pthread_mutex_unlock(&s->mutex);

	pid = child_dies_holding(s, 200);
	while (!__atomic_load_n(&s->child_locked, __ATOMIC_SEQ_CST))
		sleep_ms(1);
	e = pthread_mutex_lock(&s->mutex); /* blocks until the child exits */
	check(e == EOWNERDEAD, "the parent blocked on it is woken with EOWNERDEAD when the child exits",
	      "returned %d (%s)", e, strerror(e));
	pthread_mutex_consistent(&s->mutex);
	pthread_mutex_unlock(&s->mutex);
	waitpid(pid, &status, 0);
	check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child exited 0", "status %#x", status);
	munmap(s, sizeof *s);
}

int main(void)
{
	start("robust");
	threads();
	processes();
	return done();
}
