/*
 * timers: clocks and timers. clock_nanosleep with TIMER_ABSTIME on
 * CLOCK_MONOTONIC and CLOCK_REALTIME (never returns before the deadline),
 * relative clock_nanosleep, clock_getres, setitimer/getitimer (ITIMER_REAL:
 * the remaining time counts down, an interval timer fires repeatedly, a zero
 * value disarms) and alarm (its return value is the seconds left, the signal
 * comes).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/time.h>

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
	return done();
}
