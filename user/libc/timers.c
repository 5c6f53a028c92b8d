/*
 * timers: clocks and timers. clock_nanosleep with TIMER_ABSTIME on
 * CLOCK_MONOTONIC and CLOCK_REALTIME (never returns before the deadline),
 * relative clock_nanosleep, clock_getres, setitimer/getitimer (ITIMER_REAL:
 * the remaining time counts down, an interval timer fires repeatedly, a zero
 * value disarms) and alarm (its return value is the seconds left, the signal
 * comes); POSIX timers: a periodic SIGEV_SIGNAL timer whose handler gets
 * SI_TIMER and the sigev_value, timer_gettime, an absolute one-shot, a
 * SIGEV_THREAD timer (glibc: a helper thread woken by SIGEV_THREAD_ID), the
 * overrun of a timer whose signal stays blocked, and the errors of a bad
 * clock and a deleted timer.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/time.h>
#include <time.h>

#include "check.h"

static long long clock_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_until(clockid_t clock, const char *name)
{
	long long deadline = clock_ns(clock) + 30000000LL;
	struct timespec ts = { deadline / 1000000000LL, deadline % 1000000000LL };
	int r = clock_nanosleep(clock, TIMER_ABSTIME, &ts, NULL);
	long long late = clock_ns(clock) - deadline;
	check(r == 0 && late >= 0, name, "returned %d, woke %lld ns after the deadline", r, late);
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

static volatile sig_atomic_t timer_signals, timer_code_ok;

static void on_timer(int sig, siginfo_t *info, void *context)
{
	(void)sig;
	(void)context;
	timer_signals++;
	timer_code_ok = info->si_code == SI_TIMER && info->si_value.sival_int == 77;
}

static volatile int overrun_seen = -1;

static void on_overrun(int sig, siginfo_t *info, void *context)
{
	(void)sig;
	(void)context;
	overrun_seen = info->si_overrun;
}

static volatile int thread_calls;

static void on_thread_timer(union sigval value)
{
	if (value.sival_int == 5)
		__atomic_add_fetch(&thread_calls, 1, __ATOMIC_SEQ_CST);
}

static void posix_timers(void)
{
	struct sigaction sa = { 0 };
	sa.sa_sigaction = on_timer;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGUSR1, &sa, NULL);
	struct sigevent ev = { 0 };
	ev.sigev_notify = SIGEV_SIGNAL;
	ev.sigev_signo = SIGUSR1;
	ev.sigev_value.sival_int = 77;
	timer_t t;
	int r = timer_create(CLOCK_MONOTONIC, &ev, &t);
	struct itimerspec every = { { 0, 10000000 }, { 0, 10000000 } };
	if (r == 0)
		r = timer_settime(t, 0, &every, NULL);
	long long give_up = now_ns() + 5000000000LL;
	while (r == 0 && timer_signals < 5 && now_ns() < give_up)
		sleep_ms(5);
	struct itimerspec now = { 0 };
	timer_gettime(t, &now);
	check(r == 0 && timer_signals >= 5 && timer_code_ok,
	      "timer_create (SIGEV_SIGNAL): a periodic timer signals with SI_TIMER and its value",
	      "returned %d, %d signals, code and value right: %d", r, (int)timer_signals, (int)timer_code_ok);
	check(now.it_interval.tv_nsec == 10000000 && now.it_value.tv_sec == 0 && now.it_value.tv_nsec > 0 &&
		      now.it_value.tv_nsec <= 10000000,
	      "timer_gettime: the interval, and the time to the next expiry", "interval %ld ns, next in %ld ns",
	      now.it_interval.tv_nsec, now.it_value.tv_nsec);
	timer_t gone = t;
	check(timer_delete(t) == 0, "timer_delete", "failed: %s", strerror(errno));

	timer_signals = 0;
	r = timer_create(CLOCK_REALTIME, &ev, &t);
	struct timespec start;
	clock_gettime(CLOCK_REALTIME, &start);
	long long at = start.tv_sec * 1000000000LL + start.tv_nsec + 20000000LL;
	struct itimerspec once = { { 0, 0 }, { at / 1000000000LL, at % 1000000000LL } };
	if (r == 0)
		r = timer_settime(t, TIMER_ABSTIME, &once, NULL);
	give_up = now_ns() + 3000000000LL;
	while (r == 0 && timer_signals == 0 && now_ns() < give_up)
		sleep_ms(2);
	long long late = clock_ns(CLOCK_REALTIME) - at;
	sleep_ms(50);
	check(r == 0 && timer_signals == 1 && late >= 0, "timer_settime with TIMER_ABSTIME fires once, not early",
	      "returned %d, %d signals, %lld ns after the time", r, (int)timer_signals, late);
	timer_delete(t);

	struct sigevent tev = { 0 };
	tev.sigev_notify = SIGEV_THREAD;
	tev.sigev_notify_function = on_thread_timer;
	tev.sigev_value.sival_int = 5;
	r = timer_create(CLOCK_MONOTONIC, &tev, &t);
	if (r == 0)
		r = timer_settime(t, 0, &every, NULL);
	give_up = now_ns() + 5000000000LL;
	while (r == 0 && __atomic_load_n(&thread_calls, __ATOMIC_SEQ_CST) < 3 && now_ns() < give_up)
		sleep_ms(5);
	check(r == 0 && thread_calls >= 3, "timer_create (SIGEV_THREAD): glibc's thread runs the function",
	      "returned %d, %d calls", r, thread_calls);
	timer_delete(t);

	/* Blocked, a periodic timer's signal waits; the periods that pass meanwhile are its overrun. */
	struct sigaction so = { 0 };
	so.sa_sigaction = on_overrun;
	so.sa_flags = SA_SIGINFO;
	sigaction(SIGUSR2, &so, NULL);
	sigset_t usr2, old;
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	sigprocmask(SIG_BLOCK, &usr2, &old);
	struct sigevent oev = { 0 };
	oev.sigev_notify = SIGEV_SIGNAL;
	oev.sigev_signo = SIGUSR2;
	struct itimerspec fast = { { 0, 5000000 }, { 0, 5000000 } };
	r = timer_create(CLOCK_MONOTONIC, &oev, &t);
	if (r == 0)
		r = timer_settime(t, 0, &fast, NULL);
	sleep_ms(100);
	sigprocmask(SIG_SETMASK, &old, NULL);
	int reported = timer_getoverrun(t);
	timer_delete(t);
	check(r == 0 && overrun_seen >= 8 && overrun_seen <= 20 && reported == overrun_seen,
	      "a blocked periodic timer: one signal, the missed periods as si_overrun and timer_getoverrun",
	      "returned %d, si_overrun %d, timer_getoverrun %d", r, overrun_seen, reported);

	CHECK_ERRNO(timer_create(12345, &ev, &t), EINVAL);
	CHECK_ERRNO(timer_settime(gone, 0, &every, NULL), EINVAL);
}

int main(void)
{
	start("timers");

	sleep_until(CLOCK_MONOTONIC, "clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) does not return early");
	sleep_until(CLOCK_REALTIME, "clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME) does not return early");
	struct timespec rel = { 0, 20000000 };
	long long t0 = now_ns();
	int r = clock_nanosleep(CLOCK_MONOTONIC, 0, &rel, NULL);
	check(r == 0 && now_ns() - t0 >= 20000000LL, "relative clock_nanosleep sleeps its time", "returned %d", r);
	struct timespec past = { 0, 1 };
	r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &past, NULL);
	check(r == 0, "clock_nanosleep to a time in the past returns at once", "returned %d", r);
	struct timespec bad = { 0, 2000000000L };
	r = clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, NULL);
	check(r == EINVAL, "clock_nanosleep with tv_nsec past a second returns EINVAL", "returned %d", r);

	clockid_t clocks[] = { CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_MONOTONIC_RAW };
	for (int i = 0; i < 4; i++) {
		struct timespec res = { 0, 0 };
		r = clock_getres(clocks[i], &res);
		check(r == 0 && res.tv_sec == 0 && res.tv_nsec > 0 && res.tv_nsec <= 10000000, "clock_getres",
		      "clock %d: returned %d, resolution %ld.%09ld", clocks[i], r, (long)res.tv_sec, res.tv_nsec);
	}
	CHECK_ERRNO(clock_getres(12345, &rel), EINVAL);

	struct sigaction sa = { 0 };
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);

	struct itimerval it = { { 0, 0 }, { 10, 0 } }, cur;
	CHECK_CALL(setitimer(ITIMER_REAL, &it, NULL));
	sleep_ms(20);
	getitimer(ITIMER_REAL, &cur);
	long left_us = cur.it_value.tv_sec * 1000000L + cur.it_value.tv_usec;
	check(left_us > 9000000 && left_us < 10000000, "getitimer: the remaining time counts down from setitimer's",
	      "%ld us left of 10 s", left_us);
	struct itimerval zero = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &zero, &cur);
	left_us = cur.it_value.tv_sec * 1000000L + cur.it_value.tv_usec;
	getitimer(ITIMER_REAL, &it);
	check(left_us > 9000000 && it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0,
	      "setitimer with a zero value disarms and returns the old value", "old %ld us, now %ld.%06ld", left_us,
	      (long)it.it_value.tv_sec, (long)it.it_value.tv_usec);

	struct itimerval periodic = { { 0, 20000 }, { 0, 20000 } };
	alarms = 0;
	setitimer(ITIMER_REAL, &periodic, NULL);
	long long give_up = now_ns() + 5000000000LL;
	while (alarms < 5 && now_ns() < give_up)
		sleep_ms(5);
	setitimer(ITIMER_REAL, &zero, NULL);
	check(alarms >= 5, "an interval timer fires again and again", "%d SIGALRMs", alarms);

	alarms = 0;
	unsigned left = alarm(5);
	unsigned left2 = alarm(1);
	t0 = now_ns();
	while (!alarms && now_ns() - t0 < 3000000000LL)
		sleep_ms(5);
	long long waited = now_ns() - t0;
	check(left == 0 && left2 == 5 && alarms == 1 && waited >= 900000000LL,
	      "alarm: returns the seconds left of the previous one; SIGALRM after 1 s",
	      "returned %u then %u, %d SIGALRMs after %lld ms", left, left2, alarms, waited / 1000000);
	posix_timers();
	return done();
}
