/*
 * signals: delivery and the signal calls. SA_SIGINFO's si_signo, si_code
 * (SI_USER for kill, SI_TKILL for tgkill and raise) and si_pid; SIGSEGV with
 * SEGV_ACCERR and the exact si_addr for a store to a PROT_READ page whose
 * handler mprotects it writable and returns (the store is retried and lands),
 * and SEGV_MAPERR for an unmapped address; sigaltstack with SA_ONSTACK;
 * SA_RESTART (wait4 and read interrupted by SIGALRM from setitimer and alarm
 * restart with it and fail with EINTR without it); SA_RESETHAND; SA_NODEFER;
 * sigprocmask, sigpending, sigsuspend, sigtimedwait; kill(0, sig) and
 * kill(-pgid, sig); abort(); SIGCHLD with CLD_EXITED; the mask inherited and
 * pending signals cleared across fork; handlers reset (ignored signals and
 * the mask kept) across execve; who may signal whom (a user other than root:
 * only its own processes, and SIGCONT within its session; kill of a group with
 * no permitted member and tgkill are EPERM).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "check.h"

static volatile sig_atomic_t handled, depth, max_depth, was_blocked;
/* Set by the SA_NODEFER test: the handler raises its signal once more. */
static volatile sig_atomic_t reraise;
static siginfo_t last_info;
static void *handler_local;

static void on_signal(int sig, siginfo_t *info, void *ucontext)
{
	(void)ucontext;
	sigset_t now;
	char local;
	handler_local = &local;
	last_info = *info;
	handled++;
	depth++;
	if (depth > max_depth)
		max_depth = depth;
	sigprocmask(SIG_BLOCK, NULL, &now);
	was_blocked = sigismember(&now, sig);
	if (reraise && depth == 1 && handled == 1)
		raise(sig); /* nests at once with SA_NODEFER, else stays pending until we return */
	depth--;
}

static void install(int sig, int flags)
{
	struct sigaction sa = { 0 };
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO | flags;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
	handled = depth = max_depth = 0;
}

static void set_disposition(int sig, void (*handler)(int))
{
	struct sigaction sa = { 0 };
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

static void block(int how, int sig)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(how, &set, NULL);
}

static void siginfo(void)
{
	install(SIGUSR1, 0);
	kill(getpid(), SIGUSR1);
	check(handled == 1 && last_info.si_signo == SIGUSR1 && last_info.si_code == SI_USER &&
		      last_info.si_pid == getpid() && last_info.si_uid == getuid(),
	      "kill: the SA_SIGINFO handler runs with si_signo, si_code SI_USER, si_pid, si_uid",
	      "handled %d, signo %d, code %d, pid %d", handled, last_info.si_signo, last_info.si_code,
	      last_info.si_pid);
	syscall(SYS_tgkill, getpid(), gettid(), SIGUSR1);
	check(handled == 2 && last_info.si_code == SI_TKILL && last_info.si_pid == getpid(),
	      "tgkill: si_code SI_TKILL, si_pid", "handled %d, code %d, pid %d", handled, last_info.si_code,
	      last_info.si_pid);
	check(was_blocked, "the handler runs with its own signal blocked", "SIGUSR1 not blocked in its handler");
}

static char *volatile fault_page; /* read by the handler: stored before the fault */
static volatile sig_atomic_t segv_code;
static void *volatile segv_addr;
static sigjmp_buf segv_escape;

static void on_segv_fix(int sig, siginfo_t *info, void *ucontext)
{
	(void)sig;
	(void)ucontext;
	segv_code = info->si_code;
	segv_addr = info->si_addr;
	mprotect(fault_page, 4096, PROT_READ | PROT_WRITE);
}

static void on_segv_escape(int sig, siginfo_t *info, void *ucontext)
{
	(void)sig;
	(void)ucontext;
	segv_code = info->si_code;
	segv_addr = info->si_addr;
	siglongjmp(segv_escape, 1);
}

static void segv(void)
{
	struct sigaction sa = { 0 };
	sa.sa_sigaction = on_segv_fix;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSEGV, &sa, NULL);
	fault_page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	volatile char *target = fault_page + 123;
	*target = 42;
	check(segv_code == SEGV_ACCERR && segv_addr == fault_page + 123 && fault_page[123] == 42,
	      "a store to a PROT_READ page: SEGV_ACCERR at the exact address; the handler mprotects, the store lands",
	      "code %d, addr %p (expected %p), byte %d", segv_code, segv_addr, (void *)(fault_page + 123),
	      fault_page[123]);

	sa.sa_sigaction = on_segv_escape;
	sigaction(SIGSEGV, &sa, NULL);
	munmap(fault_page, 4096);
	segv_code = 0;
	volatile char *gone = fault_page + 8;
	if (sigsetjmp(segv_escape, 1) == 0)
		*gone = 1;
	check(segv_code == SEGV_MAPERR && segv_addr == fault_page + 8,
	      "a store to an unmapped address: SEGV_MAPERR at the exact address", "code %d, addr %p", segv_code,
	      segv_addr);
	set_disposition(SIGSEGV, SIG_DFL);
}

static void altstack(void)
{
	size_t size = 64 * 1024;
	char *alt = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	stack_t ss = { .ss_sp = alt, .ss_size = size, .ss_flags = 0 }, old;
	CHECK_CALL(sigaltstack(&ss, NULL));
	install(SIGUSR1, SA_ONSTACK);
	raise(SIGUSR1);
	char *where = handler_local;
	check(handled == 1 && where >= alt && where < alt + size, "an SA_ONSTACK handler runs on the alternate stack",
	      "a local at %p, the stack is %p..%p", (void *)where, (void *)alt, (void *)(alt + size));
	install(SIGUSR1, 0);
	raise(SIGUSR1);
	where = handler_local;
	check(handled == 1 && !(where >= alt && where < alt + size),
	      "a handler without SA_ONSTACK stays on the thread's stack", "a local at %p", (void *)where);
	ss.ss_flags = SS_DISABLE;
	sigaltstack(&ss, &old);
	check(old.ss_sp == alt && old.ss_size == size, "sigaltstack reports the old stack", "%p, %zu", old.ss_sp,
	      old.ss_size);
	munmap(alt, size);
}

/* A child that exits after `ms` milliseconds. */
static pid_t child_after(long ms)
{
	pid_t pid = fork();
	if (pid == 0) {
		sleep_ms(ms);
		_exit(3);
	}
	return pid;
}

static void arm_timer_ms(long ms)
{
	struct itimerval it = { { 0, 0 }, { ms / 1000, (ms % 1000) * 1000 } };
	setitimer(ITIMER_REAL, &it, NULL);
}

static void restart(void)
{
	install(SIGALRM, SA_RESTART);
	pid_t pid = child_after(300);
	arm_timer_ms(100);
	int status = 0;
	pid_t r = waitpid(pid, &status, 0);
	check(r == pid && handled == 1 && WIFEXITED(status) && WEXITSTATUS(status) == 3,
	      "wait4 interrupted by SIGALRM (setitimer) with SA_RESTART restarts and reaps the child",
	      "returned %d (errno %d), handled %d, status %#x", r, errno, handled, status);

	install(SIGALRM, 0);
	pid = child_after(300);
	arm_timer_ms(100);
	errno = 0;
	r = waitpid(pid, &status, 0);
	check(r == -1 && errno == EINTR && handled == 1, "without SA_RESTART wait4 fails with EINTR",
	      "returned %d, errno %d, handled %d", r, errno, handled);
	waitpid(pid, &status, 0);

	int fds[2];
	if (!check(pipe(fds) == 0, "pipe", "errno %d (%s)", errno, strerror(errno)))
		return;
	install(SIGALRM, SA_RESTART);
	pid = fork();
	if (pid == 0) {
		sleep_ms(1300);
		_exit(write(fds[1], "x", 1) == 1 ? 0 : 1);
	}
	alarm(1);
	char c = 0;
	ssize_t n = read(fds[0], &c, 1);
	check(n == 1 && c == 'x' && handled == 1,
	      "read interrupted by SIGALRM (alarm) with SA_RESTART restarts and gets the data",
	      "returned %zd (errno %d), handled %d", n, errno, handled);
	waitpid(pid, &status, 0);

	install(SIGALRM, 0);
	arm_timer_ms(100);
	errno = 0;
	n = read(fds[0], &c, 1);
	check(n == -1 && errno == EINTR && handled == 1, "without SA_RESTART read fails with EINTR",
	      "returned %zd, errno %d, handled %d", n, errno, handled);
	close(fds[0]);
	close(fds[1]);
	set_disposition(SIGALRM, SIG_DFL);
}

static void flags(void)
{
	install(SIGUSR1, SA_RESETHAND);
	raise(SIGUSR1);
	struct sigaction now;
	sigaction(SIGUSR1, NULL, &now);
	check(handled == 1 && now.sa_handler == SIG_DFL, "SA_RESETHAND: the handler runs once, then SIG_DFL",
	      "handled %d, handler now %p", handled, (void *)now.sa_handler);

	reraise = 1;
	install(SIGUSR2, 0);
	raise(SIGUSR2);
	check(handled == 2 && max_depth == 1 && was_blocked,
	      "without SA_NODEFER the signal is blocked in its handler: raised there, it runs after",
	      "handled %d, deepest %d, blocked %d", handled, max_depth, was_blocked);
	install(SIGUSR2, SA_NODEFER);
	raise(SIGUSR2);
	check(handled == 2 && max_depth == 2 && !was_blocked, "SA_NODEFER: raised in its handler, it nests at once",
	      "handled %d, deepest %d, blocked %d", handled, max_depth, was_blocked);
	reraise = 0;
}

static void masks(void)
{
	install(SIGUSR1, 0);
	block(SIG_BLOCK, SIGUSR1);
	raise(SIGUSR1);
	sigset_t pending, empty, now;
	sigpending(&pending);
	check(handled == 0 && sigismember(&pending, SIGUSR1), "a blocked signal stays pending (sigpending)",
	      "handled %d, pending %d", handled, sigismember(&pending, SIGUSR1));
	sigemptyset(&empty);
	int r = sigsuspend(&empty);
	sigprocmask(SIG_BLOCK, NULL, &now);
	check(r == -1 && errno == EINTR && handled == 1 && sigismember(&now, SIGUSR1),
	      "sigsuspend runs the handler, fails with EINTR and restores the mask",
	      "returned %d errno %d, handled %d", r, errno, handled);
	block(SIG_UNBLOCK, SIGUSR1);

	block(SIG_BLOCK, SIGUSR2);
	kill(getpid(), SIGUSR2);
	sigset_t wanted;
	sigemptyset(&wanted);
	sigaddset(&wanted, SIGUSR2);
	siginfo_t info = { 0 };
	struct timespec timeout = { 1, 0 };
	r = sigtimedwait(&wanted, &info, &timeout);
	check(r == SIGUSR2 && info.si_signo == SIGUSR2 && info.si_code == SI_USER && info.si_pid == getpid(),
	      "sigtimedwait takes a pending signal with its siginfo", "returned %d, signo %d, code %d, pid %d", r,
	      info.si_signo, info.si_code, info.si_pid);
	timeout.tv_sec = 0;
	timeout.tv_nsec = 50 * 1000000;
	long long t0 = now_ns();
	r = sigtimedwait(&wanted, &info, &timeout);
	check(r == -1 && errno == EAGAIN && now_ns() - t0 >= 50000000LL,
	      "sigtimedwait with nothing pending times out with EAGAIN", "returned %d, errno %d", r, errno);
	block(SIG_UNBLOCK, SIGUSR2);
}

/* Waits in sigsuspend (with nothing blocked) until a handler ran, for up to 5 s; whether one ran. */
static int await_handler(void)
{
	sigset_t empty;
	sigemptyset(&empty);
	for (long long give_up = now_ns() + 5000000000LL; !handled && now_ns() < give_up;)
		sigsuspend(&empty);
	return handled != 0;
}

/* A child that waits for SIGUSR1 (blocked before the fork) and exits 0 once its handler ran. */
static int await_usr1(void)
{
	return await_handler() ? 0 : 1;
}

static void groups(void)
{
	install(SIGUSR1, 0);
	block(SIG_BLOCK, SIGUSR1);
	/* kill(0) reaches the caller's whole group: make it a group of its own. */
	pid_t pid = fork();
	if (pid == 0) {
		if (setpgid(0, 0) != 0)
			_exit(10);
		pid_t grandchild = fork();
		if (grandchild == 0)
			_exit(await_usr1());
		kill(0, SIGUSR1);
		await_usr1();
		int status = -1;
		waitpid(grandchild, &status, 0);
		_exit(WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 11);
	}
	int status = -1;
	waitpid(pid, &status, 0);
	check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "kill(0, sig) reaches the caller and its group",
	      "child status %#x (exit 10: setpgid failed, 11: the grandchild missed it)", status);

	int *forked = mmap(NULL, sizeof *forked, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	*forked = 0;
	pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		pid_t grandchild = fork();
		if (grandchild == 0)
			_exit(await_usr1());
		__atomic_store_n(forked, 1, __ATOMIC_SEQ_CST);
		await_usr1();
		waitpid(grandchild, &status, 0);
		_exit(WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 11);
	}
	while (!__atomic_load_n(forked, __ATOMIC_SEQ_CST))
		sleep_ms(1);
	int r = kill(-pid, SIGUSR1);
	waitpid(pid, &status, 0);
	check(r == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "kill(-pgid, sig) reaches every member",
	      "kill returned %d, child status %#x", r, status);
	sigset_t pending;
	sigpending(&pending);
	check(!sigismember(&pending, SIGUSR1), "and not the sender outside the group", "SIGUSR1 pending");
	block(SIG_UNBLOCK, SIGUSR1);
	munmap(forked, sizeof *forked);
}

static void children(void)
{
	pid_t pid = fork();
	if (pid == 0)
		abort();
	int status = 0;
	waitpid(pid, &status, 0);
	check(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "abort() kills with SIGABRT", "status %#x", status);

	install(SIGCHLD, 0);
	block(SIG_BLOCK, SIGCHLD);
	pid = fork();
	if (pid == 0)
		_exit(7);
	await_handler();
	waitpid(pid, &status, 0);
	check(last_info.si_signo == SIGCHLD && last_info.si_code == CLD_EXITED && last_info.si_pid == pid &&
		      last_info.si_status == 7,
	      "SIGCHLD when a child exits: CLD_EXITED, si_pid, si_status", "code %d, pid %d (child %d), status %d",
	      last_info.si_code, last_info.si_pid, pid, last_info.si_status);
	block(SIG_UNBLOCK, SIGCHLD);
	set_disposition(SIGCHLD, SIG_DFL);

	install(SIGUSR2, 0);
	block(SIG_BLOCK, SIGUSR1);
	block(SIG_BLOCK, SIGUSR2);
	raise(SIGUSR2);
	pid = fork();
	if (pid == 0) {
		sigset_t mask, pending;
		sigprocmask(SIG_BLOCK, NULL, &mask);
		sigpending(&pending);
		_exit((sigismember(&mask, SIGUSR1) ? 0 : 1) | (sigismember(&pending, SIGUSR2) ? 2 : 0));
	}
	waitpid(pid, &status, 0);
	check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "a forked child inherits the mask and starts with no pending signal",
	      "child status %#x (exit 1: mask lost, 2: the parent's pending signal came along)", status);
	block(SIG_UNBLOCK, SIGUSR2); /* the parent's pending SIGUSR2 is delivered now */
	check(handled == 1, "the parent's pending signal stayed with the parent", "handled %d", handled);
	block(SIG_UNBLOCK, SIGUSR1);
}

/* After execve with "--after-exec": SIGUSR1 had a handler (now default), SIGUSR2 was ignored (still is), SIGHUP blocked. */
static int after_exec(void)
{
	start("signals --after-exec");
	struct sigaction usr1, usr2;
	sigaction(SIGUSR1, NULL, &usr1);
	sigaction(SIGUSR2, NULL, &usr2);
	sigset_t mask;
	sigprocmask(SIG_BLOCK, NULL, &mask);
	check(usr1.sa_handler == SIG_DFL, "a caught signal is reset to SIG_DFL by execve", "handler %p",
	      (void *)usr1.sa_handler);
	check(usr2.sa_handler == SIG_IGN, "an ignored signal stays ignored across execve", "handler %p",
	      (void *)usr2.sa_handler);
	check(sigismember(&mask, SIGHUP), "the signal mask survives execve", "SIGHUP not blocked");
	return done();
}

/* A child that gives up root signals its root parent, and a sibling of its own user. */
static void permissions(void)
{
	/* A group of its own (as the test harness starts it), so that the group kill below cannot mean -1. */
	setpgid(0, 0);
	pid_t parent = getpid();
	pid_t child = fork();
	if (child == 0) {
		CHECK_CALL(setpgid(0, 0));
		CHECK_CALL(setresuid(1000, 1000, 1000));
		CHECK_ERRNO(kill(parent, SIGUSR1), EPERM);
		CHECK_ERRNO(kill(parent, 0), EPERM);
		CHECK_ERRNO(syscall(SYS_tgkill, parent, parent, SIGUSR1), EPERM);
		/* The parent's group (the test's) has no member of uid 1000. */
		CHECK_ERRNO(kill(-getpgid(parent), SIGUSR1), EPERM);
		CHECK_CALL(kill(parent, SIGCONT));
		pid_t sibling = fork();
		if (sibling == 0) {
			pause();
			_exit(0);
		}
		CHECK_CALL(kill(sibling, 0));
		CHECK_CALL(kill(sibling, SIGTERM));
		int status = 0;
		waitpid(sibling, &status, 0);
		check(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM, "a process of the same user is signalled",
		      "status %#x", status);
		_exit(check_failures ? 1 : 0);
	}
	int status = -1;
	waitpid(child, &status, 0);
	check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "as uid 1000: only its own processes take its signals",
	      "child status %#x", status);
}

static void exec(const char *self)
{
	pid_t pid = fork();
	if (pid == 0) {
		install(SIGUSR1, 0);
		set_disposition(SIGUSR2, SIG_IGN);
		block(SIG_BLOCK, SIGHUP);
		execl(self, self, "--after-exec", (char *)NULL);
		_exit(127);
	}
	int status = -1;
	waitpid(pid, &status, 0);
	check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "dispositions and mask across execve (see the lines above)",
	      "child status %#x", status);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--after-exec") == 0)
		return after_exec();
	start("signals");
	siginfo();
	segv();
	altstack();
	restart();
	flags();
	masks();
	groups();
	children();
	permissions();
	exec(argv[0]);
	return done();
}
