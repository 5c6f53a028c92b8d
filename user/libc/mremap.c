/*
 * mremap: moving and resizing mappings, and mincore. realloc of a large
 * block (glibc's mmap'd chunks grow with mremap) keeps the contents;
 * mremap grows in place or, with MREMAP_MAYMOVE, moves (contents kept, old
 * range unmapped), shrinks, moves to a chosen address with MREMAP_FIXED
 * (replacing what was there), and with MREMAP_DONTUNMAP leaves the old range
 * mapped and empty; its errors. mincore reports resident pages of an
 * anonymous mapping and fails with ENOMEM on a hole.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "check.h"

#define PAGE 4096UL

static char *map(size_t pages)
{
	return mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

/* Fills page i with the byte i + 1. */
static void fill(char *p, size_t pages)
{
	for (size_t i = 0; i < pages; i++)
		memset(p + i * PAGE, (int)(i + 1), PAGE);
}

/* The first page that lost fill()'s pattern, or -1. */
static long first_bad_page(const char *p, size_t pages)
{
	for (size_t i = 0; i < pages; i++)
		for (size_t j = 0; j < PAGE; j += 512)
			if (p[i * PAGE + j] != (char)(i + 1))
				return (long)i;
	return -1;
}

static sigjmp_buf fault_escape;

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(fault_escape, 1);
}

/* Whether reading `p` faults. */
static int faults(const volatile char *p)
{
	struct sigaction sa = { 0 }, old;
	sa.sa_handler = on_segv;
	sigaction(SIGSEGV, &sa, &old);
	volatile int faulted = 1;
	if (sigsetjmp(fault_escape, 1) == 0) {
		(void)*p;
		faulted = 0;
	}
	sigaction(SIGSEGV, &old, NULL);
	return faulted;
}

static void realloc_large(void)
{
	size_t size = 1 << 20;
	unsigned char *p = malloc(size);
	for (size_t i = 0; i < size; i++)
		p[i] = (unsigned char)(i * 7);
	for (int round = 0; round < 4; round++) {
		size *= 2;
		p = realloc(p, size);
		if (!p)
			break;
	}
	int intact = p != NULL;
	for (size_t i = 0; intact && i < (1 << 20); i++)
		intact = p[i] == (unsigned char)(i * 7);
	if (p)
		memset(p + (1 << 20), 1, size - (1 << 20));
	check(intact, "realloc from 1 MiB to 16 MiB keeps the contents", "%s", p ? "contents changed" : "ENOMEM");
	free(p);
}

static void remap(void)
{
	char *p = map(4);
	fill(p, 2);
	munmap(p + 2 * PAGE, 2 * PAGE);
	char *q = mremap(p, 2 * PAGE, 4 * PAGE, 0);
	if (!check(q == p && first_bad_page(q, 2) == -1 && q[3 * PAGE] == 0,
		   "mremap grows in place into free space; new pages read zero", "returned %p (was %p)", (void *)q,
		   (void *)p))
		return; /* the rest works on this mapping */

	char *blocker = mmap(q + 4 * PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	CHECK_ERRNO(mremap(q, 4 * PAGE, 8 * PAGE, 0), ENOMEM);
	fill(q, 4);
	char *moved = mremap(q, 4 * PAGE, 8 * PAGE, MREMAP_MAYMOVE);
	if (!check(moved != MAP_FAILED && moved != q && first_bad_page(moved, 4) == -1 && faults(q),
		   "MREMAP_MAYMOVE moves a mapping that cannot grow: contents kept, the old range unmapped",
		   "returned %p (was %p)", (void *)moved, (void *)q))
		return;
	if (blocker != MAP_FAILED)
		munmap(blocker, PAGE);

	char *shrunk = mremap(moved, 8 * PAGE, 2 * PAGE, 0);
	if (!check(shrunk == moved && first_bad_page(shrunk, 2) == -1 && faults(moved + 2 * PAGE),
		   "mremap shrinks in place and unmaps the tail", "returned %p", (void *)shrunk))
		return;

	char *target = map(6);
	memset(target, 0x55, 6 * PAGE);
	char *fixed = mremap(shrunk, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, target + 2 * PAGE);
	check(fixed == target + 2 * PAGE && first_bad_page(fixed, 2) == -1 && target[PAGE] == 0x55 &&
		      target[4 * PAGE] == 0x55 && faults(shrunk),
	      "MREMAP_FIXED moves onto a chosen address, replacing only that part",
	      "returned %p (wanted %p)", (void *)fixed, (void *)(target + 2 * PAGE));
	munmap(target, 6 * PAGE);

	char *src = map(2);
	fill(src, 2);
	char *copy = mremap(src, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
	int old_zero = !faults(src) && src[0] == 0 && src[PAGE] == 0;
	check(copy != MAP_FAILED && copy != src && first_bad_page(copy, 2) == -1 && old_zero,
	      "MREMAP_DONTUNMAP moves the pages and leaves the old range mapped and empty",
	      "returned %p, old range readable and zero: %d", (void *)copy, old_zero);
	munmap(src, 2 * PAGE);
	munmap(copy, 2 * PAGE);

	CHECK_ERRNO(mremap(p + 1, PAGE, 2 * PAGE, MREMAP_MAYMOVE), EINVAL);
	CHECK_ERRNO(mremap(p, PAGE, 2 * PAGE, MREMAP_FIXED, p + 8 * PAGE), EINVAL);
	CHECK_ERRNO(mremap(p, PAGE, 0, MREMAP_MAYMOVE), EINVAL);
	char *hole = map(1);
	munmap(hole, PAGE);
	CHECK_ERRNO(mremap(hole, PAGE, 2 * PAGE, MREMAP_MAYMOVE), EFAULT);
}

static void residency(void)
{
	char *p = map(8);
	unsigned char vec[8];
	memset(vec, 0xff, sizeof vec);
	p[0] = 1;
	p[5 * PAGE] = 1;
	int r = mincore(p, 8 * PAGE, vec);
	int ok = r == 0;
	for (int i = 0; i < 8; i++)
		ok &= (vec[i] & 1) == (i == 0 || i == 5);
	check(ok, "mincore: the two touched pages of eight are resident", "returned %d, vec %d%d%d%d%d%d%d%d", r,
	      vec[0] & 1, vec[1] & 1, vec[2] & 1, vec[3] & 1, vec[4] & 1, vec[5] & 1, vec[6] & 1, vec[7] & 1);
	munmap(p + 2 * PAGE, PAGE);
	CHECK_ERRNO(mincore(p, 8 * PAGE, vec), ENOMEM);
	CHECK_ERRNO(mincore(p + 1, PAGE, vec), EINVAL);
	munmap(p, 8 * PAGE);
}

int main(void)
{
	start("mremap");
	realloc_large();
	remap();
	residency();
	return done();
}
