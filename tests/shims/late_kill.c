/*
 * tests/shims/late_kill.c - an LD_PRELOAD shim for tests/mme.sh: kill(PID,
 * SIGKILL) returns at once but the signal goes LATE_KILL_MS milliseconds
 * later (default 1500), from a helper process, so the process "killed"
 * runs on meanwhile. A real SIGKILL stops a process's own code at once, but
 * not a system call it is in: a read() into mapped memory goes on filling
 * pages. This makes that window long enough to test. Every other call goes
 * to the C library.
 *
 *   gcc -shared -fPIC -o late_kill.so tests/shims/late_kill.c -ldl
 *   LD_PRELOAD=./late_kill.so ./build/smserve-faulty --multi-model ...
 */
#define _GNU_SOURCE /* RTLD_NEXT */
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

typedef int kill_function(pid_t, int);

int kill(pid_t pid, int sig)
{
	static kill_function *next;
	const char *ms_text = getenv("LATE_KILL_MS");
	long ms = ms_text ? atol(ms_text) : 1500;
	struct timespec wait = {ms / 1000, (ms % 1000) * 1000000L};
	int fd;
	if (!next)
		*(void **)&next = dlsym(RTLD_NEXT, "kill");
	if (sig != SIGKILL || pid <= 0)
		return next(pid, sig);
	switch (fork()) {
	case -1:
		return next(pid, sig);
	case 0: /* the helper: holds none of the server's descriptors */
		for (fd = 0; fd < 1024; fd++)
			close(fd);
		nanosleep(&wait, NULL);
		next(pid, sig);
		_exit(0);
	default:
		return 0;
	}
}
