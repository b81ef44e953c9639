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
 *
 * Streamed answers (model API 3). Their bytes follow one pattern, byte i of
 * the body being i % 251, so a client can check every byte of any size:
 *
 *   stream N W      write N pattern bytes in writes of W bytes (no flush)
 *   flushed N W     the same, with a flush after every write
 *   flush-sleep K MS  K times: write "piece I of K written at T us\n" (T:
 *                   CLOCK_MONOTONIC when written), flush, flush again with
 *                   nothing new, sleep MS ms; then end
 *   flush-first     flush before writing anything, then write "after\n"
 *   status-flush N  set status N, flush, then echo (unless N is 204)
 *   error-after-flush  write and flush a piece, then model_response_error(500)
 *   crash-after-flush  write and flush a piece, then die of SIGSEGV
 *   hang-after-flush   write and flush a piece, then never return
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

/* The period of the pattern streamed answers follow: a prime, so no power-of-
 * two piece or write size lines up with it. */
#define PATTERN_PERIOD 251
#define STREAM_WRITE_MAX (16L << 20)

/* Writes total pattern bytes in writes of write_size, flushing after each
 * write when asked. A pattern buffer one period longer than a write lets
 * every write start at any phase of the pattern. */
static void stream_pattern(model_response *out, const char *args, int flush_each)
{
	char *end;
	long total = strtol(args, &end, 10), write_size = strtol(end, NULL, 10), sent = 0, i;
	unsigned char *pattern;
	if (write_size < 1 || write_size > STREAM_WRITE_MAX || total < 0) {
		model_response_error(out, 400, "stream: expected N and a write size of 1 to 16 MiB");
		return;
	}
	pattern = malloc((size_t)(write_size + PATTERN_PERIOD));
	if (!pattern) {
		model_response_error(out, 500, "stream: out of memory");
		return;
	}
	for (i = 0; i < write_size + PATTERN_PERIOD; i++)
		pattern[i] = (unsigned char)(i % PATTERN_PERIOD);
	model_response_type(out, "application/octet-stream");
	while (sent < total) {
		long n = total - sent < write_size ? total - sent : write_size;
		if (model_response_write(out, pattern + sent % PATTERN_PERIOD, (size_t)n) != 0)
			break;
		sent += n;
		if (flush_each && model_response_flush(out) != 0)
			break;
	}
	free(pattern);
}

static void sleep_ms(long ms)
{
	struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&t, NULL);
}

/* Pieces that each say when they were written, so a client can tell that a
 * piece reached it before a later one existed (causality, not speed). The
 * second flush has nothing new to send: it must not end the stream with an
 * empty chunk. */
static void flush_sleep(model_response *out, const char *args)
{
	char *end, line[128];
	long pieces = strtol(args, &end, 10), ms = strtol(end, NULL, 10), i;
	model_response_type(out, "text/plain");
	for (i = 0; i < pieces; i++) {
		int n = snprintf(line, sizeof line, "piece %ld of %ld written at %lld us\n", i, pieces,
			now_us());
		if (model_response_write(out, line, written(n, sizeof line)) != 0 ||
		    model_response_flush(out) != 0 || model_response_flush(out) != 0)
			return;
		sleep_ms(ms);
	}
}

/* The first piece of an answer that then goes wrong. */
static void first_piece(model_response *out)
{
	static const char piece[] = "first piece, flushed\n";
	model_response_type(out, "text/plain");
	model_response_write(out, piece, sizeof piece - 1);
	model_response_flush(out);
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
	} else if (!strncmp(cmd, "stream ", 7)) {
		stream_pattern(out, cmd + 7, 0);
	} else if (!strncmp(cmd, "flushed ", 8)) {
		stream_pattern(out, cmd + 8, 1);
	} else if (!strncmp(cmd, "flush-sleep ", 12)) {
		flush_sleep(out, cmd + 12);
	} else if (!strcmp(cmd, "flush-first")) {
		model_response_type(out, "text/plain");
		model_response_flush(out);
		model_response_write(out, "after\n", 6);
	} else if (!strncmp(cmd, "status-flush ", 13)) {
		model_response_status(out, atoi(cmd + 13));
		model_response_flush(out);
		if (atoi(cmd + 13) != 204)
			echo(req, out);
	} else if (!strcmp(cmd, "error-after-flush")) {
		first_piece(out);
		model_response_error(out, 500, "failed after a flush");
	} else if (!strcmp(cmd, "crash-after-flush")) {
		first_piece(out);
		signal(SIGSEGV, SIG_DFL);
		raise(SIGSEGV);
	} else if (!strcmp(cmd, "hang-after-flush")) {
		first_piece(out);
		for (;;)
			pause();
	} else {
		echo(req, out);
	}
}
