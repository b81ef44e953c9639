/*
 * tests/shims/eagain_interim.c - an LD_PRELOAD shim for tests/faults.sh:
 * the first writev that would send an interim "HTTP/1.1 100 Continue" on
 * its own fails with EAGAIN instead, as it does when the client's socket
 * buffer is full at that moment. Every other call goes to the C library.
 *
 *   gcc -shared -fPIC -o eagain_interim.so tests/shims/eagain_interim.c -ldl
 *   LD_PRELOAD=./eagain_interim.so ./build/smserve-faulty ...
 */
#define _GNU_SOURCE /* RTLD_NEXT */
#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <sys/uio.h>

typedef ssize_t writev_function(int, const struct iovec *, int);

static int is_interim_100(const struct iovec *iov, int count)
{
	static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
	return count == 1 && iov[0].iov_len == sizeof line - 1 &&
	       memcmp(iov[0].iov_base, line, sizeof line - 1) == 0;
}

ssize_t writev(int fd, const struct iovec *iov, int count)
{
	static writev_function *next;
	static int refused;
	if (!next)
		*(void **)&next = dlsym(RTLD_NEXT, "writev");
	if (!refused && is_interim_100(iov, count)) {
		refused = 1;
		errno = EAGAIN;
		return -1;
	}
	return next(fd, iov, count);
}
