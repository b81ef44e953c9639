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
 *   whoami [MS]     after MS milliseconds (default 0), answer "DIR pid P\n":
 *                   the directory the model was loaded from and the
 *                   worker's pid (which model and which worker answered)
 *   touch-model [MS]  read every page of the model's alloc-mb memory (so
 *                   this worker maps it), wait MS ms, answer "touched N
 *                   bytes, sum S, pid P\n"
 *   dirty-model [MS]  the same, but write to every page (as plug-ins write
 *                   the work arrays in their models): this worker then holds
 *                   its own copy of each page
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
 *
 * Loading misbehaves on command too. FAULTY_FAIL_LOAD (set in the
 * environment) fails every load. For multi-model tests, where one load must
 * go wrong while others succeed, a file in the model directory says what to
 * do (its content, a number, where one is needed):
 *
 *   fail-on-load    fail, the error naming this file
 *   crash-on-load   die of SIGSEGV
 *   hang-on-load    never return
 *   scribble-on-load  allocate N MiB and write 0xa5 over every byte of it
 *                   again and again, never returning: a load still
 *                   filling its memory when its time runs out
 *   close-fds-on-load  close every descriptor from 3 up first (the server's
 *                   end of the loader's answer pipe among them), then go on
 *   sleep-on-load   sleep N milliseconds, then load
 *   alloc-mb        allocate N MiB with malloc and write every byte, so the
 *                   model occupies a known amount of memory
 */
#define _POSIX_C_SOURCE 200809L  /* kill, nanosleep */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../model.h"

/* Everything a model holds comes from malloc and calloc, and the directory
 * is copied into the model itself: a multi-model server may load in one
 * process and invoke in others, so nothing may point into memory that only
 * the loading process had. */
struct model {
	size_t alloc_bytes;
	unsigned char *alloc;   /* alloc-mb's memory, every byte written */
	char dir[];             /* the directory it was loaded from */
};

const char model_plugin_name[] = "faulty (test plug-in) 1.0";

/* Whether DIR/NAME exists; when it does and value is not NULL, *value is the
 * number the file starts with (0 when none). */
static int load_command(const char *dir, const char *name, long *value)
{
	char path[4096];
	FILE *f;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (value && fscanf(f, "%ld", value) != 1)
		*value = 0;
	fclose(f);
	return 1;
}

static void sleep_ms(long ms)
{
	struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&t, NULL);
}

/* The load-time commands of the model directory that stop a load. Returns
 * -1 (err set) when the load must fail. */
static int misbehave_on_load(const char *dir, char *err, size_t err_size)
{
	long ms = 0, mb = 0;
	if (load_command(dir, "crash-on-load", NULL)) {
		signal(SIGSEGV, SIG_DFL);       /* a plain segfault, not a sanitizer report */
		raise(SIGSEGV);
	}
	if (load_command(dir, "hang-on-load", NULL))
		for (;;)
			pause();
	if (load_command(dir, "close-fds-on-load", NULL))
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
	if (load_command(dir, "scribble-on-load", &mb) && mb > 0) {
		size_t bytes = (size_t)mb << 20;
		volatile unsigned char *p = malloc(bytes);
		size_t i = 0;
		while (p) { /* every byte, over and over */
			p[i] = 0xa5;
			i = (i + 1) % bytes;
		}
	}
	if (load_command(dir, "sleep-on-load", &ms))
		sleep_ms(ms);
	if (load_command(dir, "fail-on-load", NULL)) {
		snprintf(err, err_size, "%s/fail-on-load: refusing to load (the file says so)", dir);
		return -1;
	}
	return 0;
}

model *model_load(const char *dir, char *err, size_t err_size)
{
	model *m;
	size_t dir_len = strlen(dir);
	long mb = 0;
	if (getenv("FAULTY_FAIL_LOAD")) {
		snprintf(err, err_size, "%s/model.bin: refusing to load (FAULTY_FAIL_LOAD is set)", dir);
		return NULL;
	}
	if (misbehave_on_load(dir, err, err_size) != 0)
		return NULL;
	m = calloc(1, sizeof *m + dir_len + 1);
	if (!m) {
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	memcpy(m->dir, dir, dir_len + 1);
	if (load_command(dir, "alloc-mb", &mb) && mb > 0) {
		m->alloc_bytes = (size_t)mb << 20;
		m->alloc = malloc(m->alloc_bytes);
		if (!m->alloc) {
			snprintf(err, err_size, "%s/alloc-mb: out of memory for %ld MiB", dir, mb);
			free(m);
			return NULL;
		}
		/* Not zeros: pages of zeros could be left unbacked or merged. */
		memset(m->alloc, 0x5a, m->alloc_bytes);
	}
	return m;
}

void model_unload(model *m)
{
	if (m)
		free(m->alloc);
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

/* Which model and which worker answered. */
static void whoami(const model *m, model_response *out)
{
	char line[4200];
	int n = snprintf(line, sizeof line, "%s pid %ld\n", m->dir, (long)getpid());
	model_response_type(out, "text/plain");
	model_response_write(out, line, written(n, sizeof line));
}

/* Reads (or, dirty, increments) one byte of every page of the model's
 * memory, so that this worker maps all of it (a multi-model server's worker
 * maps a model on demand) or holds its own copy of it. */
static void touch_model(const model *m, int dirty, model_response *out)
{
	char line[128];
	unsigned long sum = 0;
	size_t i;
	int n;
	for (i = 0; i < m->alloc_bytes; i += 4096) {
		volatile unsigned char *byte = m->alloc + i;
		sum += *byte;
		if (dirty)
			*byte = (unsigned char)(*byte + 1);
	}
	n = snprintf(line, sizeof line, "touched %zu bytes, sum %lu, pid %ld\n", m->alloc_bytes,
		sum, (long)getpid());
	model_response_type(out, "text/plain");
	model_response_write(out, line, written(n, sizeof line));
}

void model_invoke(model *m, const model_request *req, model_response *out)
{
	const char *cmd = req->custom_attributes;
	if (!strncmp(cmd, "tagged ", 7)) {
		model_response_custom_attributes(out, "tagged");
		cmd += 7;
	}
	if (!strcmp(cmd, "inspect")) {
		inspect(req, out);
	} else if (!strcmp(cmd, "whoami") || !strncmp(cmd, "whoami ", 7)) {
		sleep_ms(atol(cmd + 6));
		whoami(m, out);
	} else if (!strcmp(cmd, "touch-model") || !strncmp(cmd, "touch-model ", 12)) {
		touch_model(m, 0, out);
		sleep_ms(atol(cmd + 11));
	} else if (!strcmp(cmd, "dirty-model") || !strncmp(cmd, "dirty-model ", 12)) {
		touch_model(m, 1, out);
		sleep_ms(atol(cmd + 11));
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
