/*
 * pi: priority inheritance. A low-priority SCHED_FIFO thread holds a
 * PTHREAD_PRIO_INHERIT mutex, a medium-priority thread spins, a high-priority
 * thread blocks on the mutex: the owner must be boosted above the spinner, so
 * the high thread gets the mutex before the spinner is done. The same scene
 * with a PTHREAD_PRIO_NONE mutex is the control: there the spinner finishes
 * first (priority inversion). Everything runs on CPU 0 (sched_setaffinity),
 * so the scene means the same on a multi-core machine. Then the raw
 * FUTEX_LOCK_PI / FUTEX_TRYLOCK_PI / FUTEX_UNLOCK_PI protocol: the owner's
 * tid in the word, FUTEX_WAITERS, hand-over to the waiter, EDEADLK, EPERM.
 */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <sys/syscall.h>

#include "check.h"

#define PRIO_LOW 10
#define PRIO_MEDIUM 20
#define PRIO_HIGH 30
#define PRIO_MAIN 40
/* How long the owner works with the mutex held, and the spinner spins. */
#define HOLD_MS 100
#define SPIN_MS 1000

static pthread_mutex_t mutex;
static int owner_has_lock;
/* Order of events: each takes the next number. */
static int sequence;
static int high_got_lock, spinner_done;

static void spin_until(long long deadline)
{
	while (now_ns() < deadline)
		;
}

static void *low_owner(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mutex);
	__atomic_store_n(&owner_has_lock, 1, __ATOMIC_SEQ_CST);
	spin_until(now_ns() + HOLD_MS * 1000000LL);
	pthread_mutex_unlock(&mutex);
	return NULL;
}

static void *medium_spinner(void *arg)
{
	(void)arg;
	spin_until(now_ns() + SPIN_MS * 1000000LL);
	spinner_done = __atomic_add_fetch(&sequence, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void *high_locker(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mutex);
	high_got_lock = __atomic_add_fetch(&sequence, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&mutex);
	return NULL;
}

static int spawn_fifo(pthread_t *t, int prio, void *(*body)(void *))
{
	pthread_attr_t attr;
	struct sched_param sp = { .sched_priority = prio };
	pthread_attr_init(&attr);
	pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
	pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
	pthread_attr_setschedparam(&attr, &sp);
	int r = pthread_create(t, &attr, body, NULL);
	pthread_attr_destroy(&attr);
	return r;
}

/* Plays the scene with a mutex of `protocol`; returns 0 when it could be played. */
static int scene(int protocol)
{
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setprotocol(&ma, protocol);
	pthread_mutex_init(&mutex, &ma);
	pthread_mutexattr_destroy(&ma);
	owner_has_lock = sequence = high_got_lock = spinner_done = 0;

	pthread_t low, medium, high;
	int r = spawn_fifo(&low, PRIO_LOW, low_owner);
	if (r != 0)
		return r;
	/* The main thread outranks the others: it sleeps to let them run. */
	while (!__atomic_load_n(&owner_has_lock, __ATOMIC_SEQ_CST))
		sleep_ms(1);
	int medium_made = (r = spawn_fifo(&medium, PRIO_MEDIUM, medium_spinner)) == 0;
	int high_made = medium_made && (r = spawn_fifo(&high, PRIO_HIGH, high_locker)) == 0;
	pthread_join(low, NULL);
	if (medium_made)
		pthread_join(medium, NULL);
	if (high_made)
		pthread_join(high, NULL);
	pthread_mutex_destroy(&mutex);
	return r;
}

static long futex(uint32_t *uaddr, int op)
{
	return syscall(SYS_futex, uaddr, op, 0, NULL, NULL, 0);
}

static uint32_t pi_word;
static long waiter_ret, waiter_unlock_ret;
static pid_t waiter_tid;
static uint32_t waiter_saw;

static void *pi_waiter(void *arg)
{
	(void)arg;
	waiter_tid = gettid();
	waiter_ret = futex(&pi_word, FUTEX_LOCK_PI_PRIVATE);
	waiter_saw = __atomic_load_n(&pi_word, __ATOMIC_SEQ_CST);
	waiter_unlock_ret = futex(&pi_word, FUTEX_UNLOCK_PI_PRIVATE);
	return NULL;
}

static void *try_other(void *arg)
{
	long r = futex(&pi_word, FUTEX_TRYLOCK_PI_PRIVATE);
	*(int *)arg = r == -1 ? errno : 0;
	return NULL;
}

static void *unlock_other(void *arg)
{
	long r = futex(&pi_word, FUTEX_UNLOCK_PI_PRIVATE);
	*(int *)arg = r == -1 ? errno : 0;
	return NULL;
}

static void raw_pi(void)
{
	pid_t me = gettid();
	long r = futex(&pi_word, FUTEX_TRYLOCK_PI_PRIVATE);
	check(r == 0 && pi_word == (uint32_t)me, "FUTEX_TRYLOCK_PI on a free word takes it: the word holds our tid",
	      "returned %ld, word %#x, tid %d", r, pi_word, me);
	CHECK_ERRNO(futex(&pi_word, FUTEX_TRYLOCK_PI_PRIVATE), EDEADLK);

	int err = -1;
	pthread_t t;
	start_thread(&t, try_other, &err);
	pthread_join(t, NULL);
	check(err == EAGAIN, "FUTEX_TRYLOCK_PI on a word another thread owns fails with EAGAIN", "errno %d", err);
	start_thread(&t, unlock_other, &err);
	pthread_join(t, NULL);
	check(err == EPERM, "FUTEX_UNLOCK_PI by a thread that does not own it fails with EPERM", "errno %d", err);

	start_thread(&t, pi_waiter, NULL);
	long long give_up = now_ns() + 5000000000LL;
	while (!(__atomic_load_n(&pi_word, __ATOMIC_SEQ_CST) & FUTEX_WAITERS) && now_ns() < give_up)
		sleep_ms(1);
	uint32_t seen = pi_word;
	check(seen == (me | FUTEX_WAITERS), "a thread blocked in FUTEX_LOCK_PI sets FUTEX_WAITERS",
	      "word %#x, owner %d", seen, me);
	r = futex(&pi_word, FUTEX_UNLOCK_PI_PRIVATE);
	pthread_join(t, NULL);
	check(r == 0 && waiter_ret == 0 && waiter_saw == (uint32_t)waiter_tid,
	      "FUTEX_UNLOCK_PI hands the lock to the waiter: the word holds its tid", "unlock %ld, lock %ld, word %#x, waiter %d", r,
	      waiter_ret, waiter_saw, waiter_tid);
	check(waiter_unlock_ret == 0 && pi_word == 0, "the waiter's FUTEX_UNLOCK_PI leaves the word 0",
	      "unlock %ld, word %#x", waiter_unlock_ret, pi_word);
}

int main(void)
{
	start("pi");

	cpu_set_t cpu0;
	CPU_ZERO(&cpu0);
	CPU_SET(0, &cpu0);
	CHECK_CALL(sched_setaffinity(0, sizeof cpu0, &cpu0));
	struct sched_param sp = { .sched_priority = PRIO_MAIN };
	int r = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
	check(r == 0, "the main thread becomes SCHED_FIFO", "pthread_setschedparam: %s", strerror(r));
	if (r != 0)
		return done();

	r = scene(PTHREAD_PRIO_NONE);
	check(r == 0 && spinner_done < high_got_lock,
	      "control, PTHREAD_PRIO_NONE: the spinner keeps the owner off the CPU and finishes first",
	      "create: %s; spinner done at %d, high thread locked at %d", strerror(r), spinner_done,
	      high_got_lock);
	r = scene(PTHREAD_PRIO_INHERIT);
	check(r == 0 && high_got_lock < spinner_done,
	      "PTHREAD_PRIO_INHERIT: the owner is boosted, the high thread gets the mutex before the spinner is done",
	      "create: %s; high thread locked at %d, spinner done at %d", strerror(r), high_got_lock,
	      spinner_done);

	raw_pi();
	return done();
}
