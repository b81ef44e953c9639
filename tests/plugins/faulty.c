/*
 * tests/plugins/faulty.c - a plug-in for the server's tests.
 *
 * It echoes the request body, and misbehaves on command, so the tests can
 * see how the server copes with a model that crashes, hangs, sleeps, writes
 * too much or answers nonsense. The command is the request's
 * X-Amzn-SageMaker-Custom-Attributes header:
 *
 *   (none)          echo the body, Content-Type application/octet-stream
 *   inspect         describe the request: types, headers, body length
 *   sleep N         sleep N seconds, then echo
 *   spin N          compute for N microseconds (the CPU kept busy), then echo
 *   crash           die of SIGSEGV
 *   hang            never return
 *   big N           write N bytes of 'x'
 *   status N        answer with status N (invalid ones included)
 *   error N MSG     model_response_error(N, MSG)
 *   attrs VALUE     echo, and set the response's custom attributes to VALUE
 *   type VALUE      echo with Content-Type VALUE
 *   empty           200 with no body and no type
 *   tagged CMD      set the custom attributes to "tagged", then run CMD
 *   die-after-reply echo after 0.2 s; the worker is killed (SIGKILL) 0.5 s
 *                   after the request came, idle by then
 */
#define _POSIX_C_SOURCE 200809L  /* kill, nanosleep */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../model.h"

struct model {
	int loads;
};

const char model_plugin_name[] = "faulty (test plug-in) 1.0";

model *model_load(const char *dir, char *err, size_t err_size)
{
	model *m;
	if (getenv("FAULTY_FAIL_LOAD")) {
		snprintf(err, err_size, "%s/model.bin: refusing to load (FAULTY_FAIL_LOAD is set)", dir);
		return NULL;
	}
	m = calloc(1, sizeof *m);
	if (!m)
		snprintf(err, err_size, "out of memory");
	return m;
}

void model_unload(model *m)
{
	free(m);
}

/* What snprintf put into a buffer of size bytes, given what it returned: the
 * length it wanted, which a long header can push past the buffer. */
static size_t written(int n, size_t size)
{
	if (n < 0)
		return 0;
	return (size_t)n < size ? (size_t)n : size - 1;
}

static void inspect(const model_request *req, model_response *out)
{
	char line[2048];
	size_t i;
	int n;
	model_response_type(out, "text/plain");
	n = snprintf(line, sizeof line, "content_type=%s\naccept=%s\ncustom_attributes=%s\n",
		req->content_type, req->accept, req->custom_attributes);
	model_response_write(out, line, written(n, sizeof line));
	for (i = 0; i < req->header_count; i++) {
		n = snprintf(line, sizeof line, "header %s=%s\n", req->headers[i].name,
			req->headers[i].value);
		model_response_write(out, line, written(n, sizeof line));
	}
	n = snprintf(line, sizeof line, "body_len=%zu\n", req->body_len);
	model_response_write(out, line, written(n, sizeof line));
}

static long long now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* Keeps the CPU busy, as a model computing would. */
static void spin_us(long us)
{
	long long until = now_us() + us;
	while (now_us() < until)
		;
}

static void echo(const model_request *req, model_response *out)
{
	model_response_type(out, "application/octet-stream");
	model_response_write(out, req->body, req->body_len);
}

void model_invoke(model *m, const model_request *req, model_response *out)
{
	const char *cmd = req->custom_attributes;
	(void)m;
	if (!strncmp(cmd, "tagged ", 7)) {
		model_response_custom_attributes(out, "tagged");
		cmd += 7;
	}
	if (!strcmp(cmd, "inspect")) {
		inspect(req, out);
	} else if (!strncmp(cmd, "sleep ", 6)) {
		sleep((unsigned)atoi(cmd + 6));
		echo(req, out);
	} else if (!strncmp(cmd, "spin ", 5)) {
		spin_us(atol(cmd + 5));
		echo(req, out);
	} else if (!strcmp(cmd, "die-after-reply")) {
		static const struct timespec reply_in = {0, 200000000}, kill_in = {0, 500000000};
		pid_t worker = getpid();
		if (fork() == 0) {
			nanosleep(&kill_in, NULL);
			kill(worker, SIGKILL);
			_exit(0);
		}
		nanosleep(&reply_in, NULL);
		echo(req, out);
	} else if (!strcmp(cmd, "crash")) {
		signal(SIGSEGV, SIG_DFL);       /* a plain segfault, not a sanitizer report */
		raise(SIGSEGV);
	} else if (!strcmp(cmd, "hang")) {
		for (;;)
			pause();
	} else if (!strncmp(cmd, "big ", 4)) {
		char xs[4096];
		long left = atol(cmd + 4);
		memset(xs, 'x', sizeof xs);
		model_response_type(out, "text/plain");
		while (left > 0) {
			size_t n = left > 4096 ? 4096 : (size_t)left;
			if (model_response_write(out, xs, n) != 0)
				break;
			left -= (long)n;
		}
	} else if (!strncmp(cmd, "status ", 7)) {
		model_response_status(out, atoi(cmd + 7));
		if (atoi(cmd + 7) != 204)
			echo(req, out);
	} else if (!strncmp(cmd, "error ", 6)) {
		char *end;
		long status = strtol(cmd + 6, &end, 10);
		model_response_error(out, (int)status, *end ? end + 1 : "");
	} else if (!strncmp(cmd, "attrs ", 6)) {
		model_response_custom_attributes(out, cmd + 6);
		echo(req, out);
	} else if (!strncmp(cmd, "type ", 5)) {
		model_response_type(out, cmd + 5);
		model_response_write(out, req->body, req->body_len);
	} else if (!strcmp(cmd, "empty")) {
		return;
	} else {
		echo(req, out);
	}
}
