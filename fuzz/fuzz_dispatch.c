/*
 * fuzz_dispatch.c - libFuzzer target for the loop's side of the workers:
 * requests handed to workers, answers read back (whole or streamed in
 * pieces, with acks), workers that fail, hang or die, requests queued and
 * queued again, workers replaced.
 *
 * The real loop code runs (smserve.c is included whole); only the process
 * calls are redirected: fork, kill, waitpid and pipe are macros for the
 * harness_* functions below (and fprintf and fwrite, which drop the log
 * lines). So worker_spawn's parent path runs for real
 * over real pipes, but "fork" returns a made-up pid whose worker is a
 * STAND-IN played by this harness in the same process: it holds dup()s of
 * the child's pipe ends, reads the request frame the loop sends, reads the
 * body from the slot's real shared region and answers into its answer
 * slots, as section 11's worker does, or does what the fuzzer says instead
 * (a malformed or cut frame, a death, a hang). Between steps the harness
 * calls what the loop would call in one turn: build_sets, select (never
 * waiting), handle_events, check_deadlines, check_waiting_clients,
 * respawn_missing_workers. Time is now_ms, moved by the script: nothing
 * sleeps.
 *
 * Clients (1 to 3 socketpairs) send requests the harness generates, so it
 * knows each one's body and what its answer must be: every invocation
 * carries "X-Amzn-SageMaker-Custom-Attributes: id=N", and a stand-in echoes
 * the id in its answer's custom attributes with a body derived from N.
 *
 * Input: one flags byte, then a script read one byte at a time by whoever
 * needs a decision (an exhausted script reads as zeros, which is a plain
 * 200 answer):
 *   flags  bit 0 two workers (else one)     bit 1 small server send buffer
 *          bit 2 8 KiB budget (else 64)     bit 3 --queue 1 (else 4)
 *          bits 4-5 clients: 1 + value % 3
 *   op     bits 0-2 what, bits 3-4 which client or worker, bits 5-7 how:
 *          0,1 SEND   the client sends 1..8192 bytes or all it has (when it
 *                     has sent everything, a new request is made first:
 *                     two bytes, shape and size; see make_request)
 *          2   READ   the client reads 1..16384 bytes or all there is
 *          3,4 STEP   the worker's stand-in takes one step; how & 1: the
 *                     loop gets no turn before the next op (two events at
 *                     once). Taking a request reads its plan: three bytes
 *                     (see take_plan)
 *          5   TIME   time passes: 1 s up to every deadline
 *          6   END    the client half-closes (how < 4) or closes
 *          7   MISC   SIGCHLD; the next forks fail; a stand-in is killed
 *                     (as by the OOM killer), maybe reaped before the loop
 *                     sees its pipe close; SIGTERM (a drain)
 *   After the script, a finale lets stand-ins answer and clients read until
 *   nothing moves; then every response is checked and everything is closed.
 *
 * Invariants beyond the sanitizers:
 *   - each stand-in gets well-formed frames whose body, in the region, is
 *     the body the client sent; the region does not change while it runs
 *     the request; it never gets a request (or a stray ack) while it owes
 *     an answer, nor an ack it is not waiting for; a request reaches a
 *     worker at most once (a requeue happens only when none got it);
 *   - a worker that sent a malformed frame gets nothing more (it is to be
 *     stopped); kill() is never given a pid <= 0; the loop never closes a
 *     live worker's pipes; a slot whose piece was acked is overwritten at
 *     once (as a worker may), so a loop still sending from it shows;
 *   - after each turn: every queued connection is open, in the model state
 *     and on the queue once; every connection in the model state is queued
 *     or has a live worker, and so has every streaming one (else it would
 *     hang for ever: neither has a deadline of its own); no connection's
 *     output points into a shared region once the loop has read a piece
 *     (piece_to_client keeps what the client did not take);
 *     buffered_bytes is exactly what the connections hold (input buffers
 *     past IN_BUF_INITIAL, kept answer bytes); no worker is idle while a
 *     request waits in the queue;
 *   - once the finale settles (clients have read all there is): no worker
 *     waits for an ack, and every answer a worker finished reached its
 *     client whole, unless the connection ended;
 *   - clients receive HTTP/1.1 responses, framed right (Content-Length,
 *     valid chunks, or a close-delimited body only for HTTP/1.0 and with
 *     Connection: close) up to where their stream ends; no more final
 *     responses than requests; an answer carrying id=N is the one for the
 *     request in that place, is delivered at most once, has the status and
 *     bytes the stand-in sent, and ends with the last chunk exactly when
 *     the stand-in finished it; a broken answer's connection is closed;
 *   - at the end: buffered_bytes is 0, the queue is empty, no descriptor
 *     is left open.
 *
 * FUZZ_DISPATCH_LOG=1 prints the server's log lines (they are dropped by
 * default) and the ops as they run, to follow a reproducer.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -Dmain=smserve_main
 * (see fuzz/run.sh).
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
/* The headers that declare what the macros below rename, included first
 * so that they declare the real functions (smserve.c includes them again,
 * to no effect). */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t harness_fork(void);
static int harness_kill(pid_t pid, int sig);
static pid_t harness_waitpid(pid_t pid, int *status, int options);
static int harness_pipe(int fds[2]);
static int harness_fprintf(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t harness_fwrite(const void *p, size_t size, size_t n, FILE *f);
#define fork harness_fork
#define kill harness_kill
#define waitpid harness_waitpid
#define pipe harness_pipe
#define fprintf harness_fprintf
#define fwrite harness_fwrite
/* features.h redefined these; smserve.c defines them again, as it likes */
#undef _POSIX_C_SOURCE
#undef _DEFAULT_SOURCE
#include "harness.h"
#undef fork
#undef kill
#undef waitpid
#undef pipe
#undef fprintf
#undef fwrite

int LLVMFuzzerInitialize(int *argc, char ***argv);

#define MAX_CLIENTS 3
#define MAX_REQUESTS 48             /* per input, all clients together */
#define MAX_STAND_INS 64            /* workers "forked" per input */
#define MAX_OPS 600                 /* bounds the work per input */
#define TURN_PASSES 16              /* select passes per loop turn */
#define FINALE_ROUNDS 24
#define RECEIVED_MAX (4 * MIB)      /* response bytes kept per client */
#define FD_CHECK_MAX 256            /* descriptors looked at for leaks */
#define BASE_MS ((int64_t)1000000)
#define FAKE_PID_BASE 0x40000000    /* past Linux's PID_MAX_LIMIT: never a real process */

enum { F_TWO_WORKERS = 1, F_SMALL_SNDBUF = 2, F_SMALL_BUDGET = 4, F_SHORT_QUEUE = 8 };
enum { OP_SEND = 0, OP_SEND2, OP_READ, OP_STEP, OP_STEP2, OP_TIME, OP_END, OP_MISC };

/* What a stand-in does with a request (take_plan). */
enum action {
	A_COMPLETE,          /* k PIECE_MORE, then PIECE_LAST */
	A_COMPLETE2,         /* the same: the plain answer, twice as likely */
	A_BREAK,             /* k PIECE_MORE, then PIECE_BROKEN */
	A_MALFORMED,         /* k PIECE_MORE, then a frame the loop must refuse */
	A_DIE,               /* k PIECE_MORE, then exit (maybe in mid-frame) */
	A_HANG,              /* k PIECE_MORE, then nothing: the deadline acts */
	A_COMPLETE_AND_DIE,  /* the answer, then exit while idle */
	A_FLUSH_FIRST,       /* an empty first piece (a flush), k more, the last */
};

enum answer_end { END_NONE, END_DONE, END_BROKEN };

/* A request as the harness made it, and what the model side did with it. */
struct request {
	int invocation, head, http10;
	size_t body_len;
	const char *content_type;       /* as the worker must see them */
	const char *accept;
	int runs;                       /* times a stand-in received it */
	int status;                     /* the stand-in's answer */
	size_t answer_len;              /* answer bytes handed to the loop */
	int single;                     /* one PIECE_LAST: a Content-Length answer */
	enum answer_end end;
	int delivered;                  /* a response with its id reached its client */
};

struct client {
	int fd;                         /* the client's end; -1 once closed */
	int write_shut;
	char *out;                      /* requests made, sent up to out_sent */
	size_t out_len, out_sent, out_cap;
	int ids[MAX_REQUESTS];          /* its requests, in order */
	int n_ids;
	char *got;                      /* what it received */
	size_t got_len, got_cap;
	int cut;                        /* past RECEIVED_MAX: the rest was dropped */
	int eof;                        /* the server's end closed */
};

struct stand_in {
	pid_t pid;
	int req_fd, rep_fd;             /* the child's pipe ends; -1 once dead */
	int zombie, reaped, exit_status;
	char frame[sizeof(struct frame_request) + WORKER_META_MAX];
	size_t frame_got;
	int id;                         /* the request it runs; 0 when idle */
	size_t body_len;
	enum action action;
	int pieces_before_end, empty_last, partial_death, variant;
	int status;
	const char *type;
	size_t piece_len;
	int pieces_sent;
	unsigned slot;                  /* the answer slot it fills next */
	int awaiting_ack;
	int sent_malformed;             /* it must be stopped before anything else */
};

struct script {
	const uint8_t *p;
	size_t n, at;
};

static struct {
	int n_clients;
	struct client clients[MAX_CLIENTS];
	struct request requests[MAX_REQUESTS + 1];   /* by id, from 1 */
	int n_requests;
	struct stand_in stand_ins[MAX_STAND_INS];
	int n_stand_ins;
	int pipes[2][2];                /* the last two pipes made: request, reply */
	int pipes_made;
	int fork_failures;              /* forks still to fail */
	size_t slot_used[MAX_WORKERS][2];  /* answer bytes written per slot, to poison */
	struct script sc;
	long progress;                  /* anything moved: ends the finale early */
	int settled;                    /* the finale ended with nothing moving */
} h;

static int verbose;                 /* FUZZ_DISPATCH_LOG */
static char fd_open_at_start[FD_CHECK_MAX];  /* before this input */
static char the_stub_model;         /* the_model only has to be non-NULL */

static void fail(const char *why, long a)
{
	fflush(stdout);
	fprintf(stderr, "fuzz_dispatch invariant broken: %s (%ld)\n", why, a);
	abort();
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;
	if (!verbose)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- the redirected process calls ---- */

static int harness_fprintf(FILE *f, const char *fmt, ...)
{
	va_list ap;
	int n = 0;
	if (!verbose)
		return 0;
	va_start(ap, fmt);
	n = vfprintf(f, fmt, ap);
	va_end(ap);
	return n;
}

static size_t harness_fwrite(const void *p, size_t size, size_t n, FILE *f)
{
	return verbose ? fwrite(p, size, n, f) : n;
}

/* Real pipes; the last two are the ones worker_spawn forks with. */
static int harness_pipe(int fds[2])
{
	if (pipe(fds) != 0)
		return -1;
	h.pipes[h.pipes_made % 2][0] = fds[0];
	h.pipes[h.pipes_made % 2][1] = fds[1];
	h.pipes_made++;
	return 0;
}

static struct stand_in *stand_in_of(pid_t pid)
{
	int i;
	for (i = 0; i < h.n_stand_ins; i++)
		if (h.stand_ins[i].pid == pid)
			return &h.stand_ins[i];
	return NULL;
}

/* The "child": a stand-in with dups of the child's ends of the two pipes
 * (the parent path closes its copies). */
static pid_t harness_fork(void)
{
	struct stand_in *s;
	int req_read, rep_write;
	if (h.pipes_made < 2)
		fail("fork without the two pipes worker_spawn makes first", h.pipes_made);
	if (h.fork_failures > 0 || h.n_stand_ins == MAX_STAND_INS) {
		h.pipes_made = 0;
		if (h.fork_failures > 0)
			h.fork_failures--;
		errno = EAGAIN;
		return -1;
	}
	req_read = h.pipes[h.pipes_made % 2][0];        /* the older of the two */
	rep_write = h.pipes[(h.pipes_made + 1) % 2][1];
	h.pipes_made = 0;
	s = &h.stand_ins[h.n_stand_ins];
	memset(s, 0, sizeof *s);
	s->pid = FAKE_PID_BASE + h.n_stand_ins++;
	s->req_fd = dup(req_read);
	s->rep_fd = dup(rep_write);
	if (s->req_fd < 0 || s->rep_fd < 0)
		abort();
	set_nonblocking(s->req_fd);
	set_nonblocking(s->rep_fd);
	note("fork: stand-in %ld", (long)s->pid);
	return s->pid;
}

/* A stand-in's process ends: its pipe ends close (the loop sees end of
 * file) and it waits to be reaped. What it owed is broken. */
static void stand_in_dies(struct stand_in *s, int exit_status)
{
	if (s->req_fd < 0)
		return;
	close(s->req_fd);
	close(s->rep_fd);
	s->req_fd = s->rep_fd = -1;
	s->zombie = 1;
	s->exit_status = exit_status;
	if (s->id && h.requests[s->id].end == END_NONE)
		h.requests[s->id].end = END_BROKEN;
	s->id = 0;
	note("stand-in %ld dies", (long)s->pid);
}

static int harness_kill(pid_t pid, int sig)
{
	struct stand_in *s;
	if (pid <= 0)
		fail("kill() given a pid that is not one worker's", (long)pid);
	if (!(s = stand_in_of(pid)) || s->reaped) {
		errno = ESRCH;
		return -1;
	}
	if (sig == SIGKILL)
		stand_in_dies(s, SIGKILL);     /* wait status: killed by SIGKILL */
	return 0;
}

static pid_t harness_waitpid(pid_t pid, int *status, int options)
{
	int i;
	for (i = 0; i < h.n_stand_ins; i++) {
		struct stand_in *s = &h.stand_ins[i];
		if ((pid == -1 || pid == s->pid) && s->zombie && !s->reaped) {
			s->reaped = 1;
			if (status)
				*status = s->exit_status;
			return s->pid;
		}
	}
	if (!(options & WNOHANG))
		fail("waitpid would block on a stand-in that never ends", (long)pid);
	return 0;
}

/* ---- the script ---- */

static uint8_t next_byte(void)
{
	return h.sc.at < h.sc.n ? h.sc.p[h.sc.at++] : 0;
}

/* ---- bytes the harness can check: bodies and answers ---- */

static char body_byte(int id, size_t i)
{
	return (char)('a' + ((size_t)id * 7 + i + i / 26) % 26);
}

static char answer_byte(int id, size_t i)
{
	return (char)('A' + ((size_t)id * 11 + i * 3 + i / 251) % 26);
}

/* ---- clients ---- */

static void append(struct client *cl, const char *p, size_t n)
{
	if (cl->out_len + n > cl->out_cap) {
		size_t cap = (cl->out_len + n) * 2;
		char *q = realloc(cl->out, cap);
		if (!q)
			abort();
		cl->out = q;
		cl->out_cap = cap;
	}
	memcpy(cl->out + cl->out_len, p, n);
	cl->out_len += n;
}

static void append_str(struct client *cl, const char *s)
{
	append(cl, s, strlen(s));
}

static void append_body(struct client *cl, int id, size_t from, size_t n)
{
	char buf[1024];
	while (n > 0) {
		size_t k = n < sizeof buf ? n : sizeof buf, i;
		for (i = 0; i < k; i++)
			buf[i] = body_byte(id, from + i);
		append(cl, buf, k);
		from += k;
		n -= k;
	}
}

/* The Accept lines of request id (one of four kinds, by id), or with
 * amzn only X-Amzn-SageMaker-Accept (InvokeEndpointWithResponseStream),
 * and the accept the worker must see (put_accept, REQ-67). */
static void append_accept(struct client *cl, int id, int amzn)
{
	static const char *const lines[4] = { "Accept: application/json\r\n",
		"Accept: application/json\r\nAccept: text/csv\r\n",
		"Accept:\r\nX-Amzn-SageMaker-Accept: application/jsonlines\r\n", "" };
	append_str(cl, amzn ? "X-Amzn-SageMaker-Accept: application/jsonlines\r\n" : lines[id % 4]);
}

static const char *accept_of(int id, int amzn)
{
	static const char *const accept[4] = { "application/json", "application/json, text/csv",
		"application/jsonlines", "" };
	return amzn ? "application/jsonlines" : accept[id % 4];
}

/* A request, from two script bytes. shape: bits 0-1 the route (0, 1
 * /invocations; 2 /ping, HEAD with bit 2; 3 /execution-parameters), bit 2
 * a chunked body, bit 3 HTTP/1.0, bit 4 the client asks to close, bit 5
 * Expect: 100-continue, bit 6 X-Amzn-SageMaker-Accept instead of Accept
 * lines (append_accept), bit 7 a Content-Type. size: the body's length,
 * past --max-body-mb at the top. */
static void make_request(struct client *cl)
{
	uint8_t shape = next_byte(), size = next_byte();
	struct request *r;
	int id, route = shape & 3, chunked = shape & 4, close_it = shape & 16;
	char line[160];
	if (h.n_requests == MAX_REQUESTS || cl->n_ids == MAX_REQUESTS)
		return;
	id = ++h.n_requests;
	r = &h.requests[id];
	memset(r, 0, sizeof *r);
	r->http10 = (shape & 8) != 0;
	r->invocation = route < 2;
	r->head = route == 2 && chunked;
	r->body_len = size < 224 ? (size_t)size * size / 4 : size < 252 ? (size_t)(size - 223) * 1100
	                                                              : cfg.max_body + size - 251;
	r->content_type = shape & 128 ? "text/csv" : "";
	r->accept = accept_of(id, shape & 64);
	cl->ids[cl->n_ids++] = id;
	snprintf(line, sizeof line, "%s %s HTTP/1.%d\r\nHost: h\r\n",
		r->invocation ? "POST" : r->head ? "HEAD" : "GET",
		r->invocation ? "/invocations" : route == 2 ? "/ping" : "/execution-parameters",
		r->http10 ? 0 : 1);
	append_str(cl, line);
	if (close_it || r->http10)
		append_str(cl, close_it ? "Connection: close\r\n" : "Connection: keep-alive\r\n");
	if (!r->invocation) {
		append_str(cl, "\r\n");
		return;
	}
	snprintf(line, sizeof line, "X-Amzn-SageMaker-Custom-Attributes: id=%d\r\n", id);
	append_str(cl, line);
	if (*r->content_type)
		append_str(cl, "Content-Type: text/csv\r\n");
	append_accept(cl, id, shape & 64);
	if (shape & 32)
		append_str(cl, "Expect: 100-continue\r\n");
	if (!chunked) {
		snprintf(line, sizeof line, "Content-Length: %zu\r\n\r\n", r->body_len);
		append_str(cl, line);
		append_body(cl, id, 0, r->body_len);
		return;
	}
	append_str(cl, "Transfer-Encoding: chunked\r\n\r\n");
	{
		size_t at = 0, chunk = 1 + (size_t)id * 37 % 2000;
		while (at < r->body_len) {
			size_t n = r->body_len - at < chunk ? r->body_len - at : chunk;
			snprintf(line, sizeof line, "%zx\r\n", n);
			append_str(cl, line);
			append_body(cl, id, at, n);
			append_str(cl, "\r\n");
			at += n;
		}
		append_str(cl, "0\r\n\r\n");
	}
}

static void client_send(struct client *cl, size_t n)
{
	ssize_t w;
	if (cl->fd < 0 || cl->write_shut)
		return;
	if (cl->out_sent == cl->out_len)
		make_request(cl);
	if (n > cl->out_len - cl->out_sent)
		n = cl->out_len - cl->out_sent;
	if (n == 0)
		return;
	w = write(cl->fd, cl->out + cl->out_sent, n);
	if (w > 0) {
		cl->out_sent += (size_t)w;
		h.progress++;
	}
}

static void client_read(struct client *cl, size_t max)
{
	char buf[16384];
	while (max > 0 && cl->fd >= 0 && !cl->eof) {
		ssize_t r = read(cl->fd, buf, max < sizeof buf ? max : sizeof buf);
		size_t keep;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (r <= 0) {                  /* end of stream, or a reset */
			cl->eof = 1;
			return;
		}
		h.progress++;
		keep = (size_t)r < RECEIVED_MAX - cl->got_len ? (size_t)r : RECEIVED_MAX - cl->got_len;
		cl->cut |= keep < (size_t)r;
		if (cl->got_len + keep > cl->got_cap) {
			size_t cap = (cl->got_len + keep) * 2;
			char *q = realloc(cl->got, cap);
			if (!q)
				abort();
			cl->got = q;
			cl->got_cap = cap;
		}
		memcpy(cl->got + cl->got_len, buf, keep);
		cl->got_len += keep;
		max -= (size_t)r < max ? (size_t)r : max;
	}
}

/* ---- invariants of the loop's state, after each turn ---- */

static int in_region(const char *p)
{
	int i;
	for (i = 0; i < cfg.workers; i++)
		if (workers[i].region && p >= workers[i].region &&
		    p < workers[i].region + region_size())
			return 1;
	return 0;
}

static int queued(const struct conn *c)
{
	const struct conn *q;
	for (q = queue.head; q; q = q->next_queued)
		if (q == c)
			return 1;
	return 0;
}

static void check_state(void)
{
	const struct conn *q;
	size_t held = 0;
	int n = 0, fd, i;
	for (q = queue.head; q && n <= queue.len; q = q->next_queued, n++) {
		if (conns[q->fd] != q)           /* (ASan reports one freed) */
			fail("a queued connection was closed", q->fd);
		if (q->state != CONN_IN_MODEL)
			fail("a queued connection is not waiting for the model", q->state);
		if (worker_running(q))
			fail("a connection is queued and running at once", q->fd);
	}
	if (n != queue.len)
		fail("the queue does not hold queue.len connections", n);
	if (queue.head && idle_worker())   /* (a turn ends with dispatch_queued) */
		fail("a request waits in the queue while a worker is idle", queue.len);
	for (i = 0; i < cfg.workers; i++) {
		const struct worker *w = &workers[i];
		if (w->pid > 0 && w->conn && conns[w->conn->fd] != w->conn)
			fail("a worker runs the request of a closed connection", i);
		if (w->pid <= 0 && w->pid != 0)
			fail("a worker slot left in the just-reaped state", (long)w->pid);
	}
	for (fd = 0; fd <= max_conn_fd; fd++) {
		const struct conn *c = conns[fd];
		if (!c)
			continue;
		held += (c->in_cap > IN_BUF_INITIAL ? c->in_cap - IN_BUF_INITIAL : 0) + c->owned_len;
		if (c->state == CONN_IN_MODEL && !queued(c) && !worker_running(c))
			fail("a request with the model is neither queued nor running: it would hang", fd);
		if (c->streaming && !worker_running(c))
			fail("a streaming answer has no worker: it would hang", fd);
		if (has_pending_output(c) && c->body_out_len && in_region(c->body))
			fail("a connection's output still points into a worker's shared region", fd);
	}
	if (held != buffered_bytes)
		fail("buffered_bytes is not what the connections hold", (long)held - (long)buffered_bytes);
}

/* One turn of event_loop, without waiting, until nothing is ready. */
static void loop_turn(void)
{
	int pass;
	for (pass = 0; pass < TURN_PASSES; pass++) {
		fd_set rd, wr;
		int maxfd, n;
		struct timeval tv = { 0, 0 };
		build_sets(&rd, &wr, &maxfd);
		n = select(maxfd + 1, &rd, &wr, NULL, &tv);
		if (n > 0) {
			h.progress++;
			handle_events(&rd, &wr);
		}
		if (draining && drain_deadline == 0)
			drain_deadline = now_ms + (int64_t)DRAIN_LIMIT_S * 1000;
		check_deadlines();
		check_waiting_clients();
		if (!draining || queue.head)
			respawn_missing_workers();
		check_state();
		if (n <= 0)
			break;
	}
}

/* ---- the stand-in worker ---- */

static struct stand_in *stand_in_of_slot(int i)
{
	struct stand_in *s;
	if (i >= cfg.workers || workers[i].pid <= 0 || !(s = stand_in_of(workers[i].pid)))
		return NULL;
	return s;
}

/* Bytes waiting on the request pipe: -1 none, 0 end of file, 1 one read. */
static int read_request_byte(struct stand_in *s, char *b)
{
	ssize_t r = read(s->req_fd, b, 1);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return -1;
	if (r == 0)
		fail("the loop closed the request pipe of a live worker", (long)s->pid);
	if (r < 0)
		fail("the stand-in cannot read its request pipe", errno);
	return 1;
}

/* While a stand-in owes an answer and waits for no ack, the loop must send
 * it nothing. */
static void expect_silence(struct stand_in *s, const char *why)
{
	char b;
	if (read_request_byte(s, &b) == 1)
		fail(why, (long)s->pid);
}

static void poison_slot(int slot_index, unsigned k)
{
	char *p = answer_slot(workers[slot_index].region, k);
	memset(p, '#', h.slot_used[slot_index][k]);
	h.slot_used[slot_index][k] = 0;
}

static int slot_of(const struct stand_in *s)
{
	int i;
	for (i = 0; i < cfg.workers; i++)
		if (workers[i].pid == s->pid)
			return i;
	return -1;
}

static void check_body(const struct stand_in *s, int slot_index, const char *when)
{
	const char *body = workers[slot_index].region;
	size_t i;
	for (i = 0; i < s->body_len; i++)
		if (body[i] != body_byte(s->id, i))
			fail(when, (long)i);
}

/* Reads the meta's strings, as unpack_request does (but insisting they
 * fill it exactly: the loop builds it so). */
static int split_meta(const char *meta, size_t len, const char **fields, size_t want)
{
	size_t at = 0, got = 0;
	while (at < len && got < want) {
		size_t n = strnlen(meta + at, len - at);
		if (n == len - at)
			return -1;
		fields[got++] = meta + at;
		at += n + 1;
	}
	return got == want && at == len ? 0 : -1;
}

/* The request id in custom attributes "id=N"; -1 if they are not that. */
static long id_of(const char *attributes)
{
	char *end;
	long id;
	if (strncmp(attributes, "id=", 3) != 0 || !isdigit((unsigned char)attributes[3]))
		return -1;
	id = strtol(attributes + 3, &end, 10);
	return *end ? -1 : id;
}

/* The plan for a request, three script bytes:
 *   a: bits 0-2 the action, bits 3-4 k (pieces before the end), bit 5 die
 *      in mid-frame, bit 6 an empty last piece
 *   b: bits 0-2 the status, bits 3-4 the content type, bits 5-7 which
 *      malformed frame
 *   c: each piece's length, 0 to ANSWER_PIECE */
static void take_plan(struct stand_in *s)
{
	static const int statuses[8] = { 200, 200, 200, 201, 204, 205, 404, 500 };
	static const char *const types[4] = { "application/json", "", "text/csv; charset=utf-8",
		"application/x-recordio-protobuf" };
	uint8_t a = next_byte(), b = next_byte(), c = next_byte();
	s->action = (enum action)(a & 7);
	s->pieces_before_end = (a >> 3) & 3;
	s->partial_death = (a & 32) != 0;
	s->empty_last = (a & 64) != 0;
	s->status = statuses[b & 7];
	s->type = types[(b >> 3) & 3];
	s->variant = b >> 5;
	s->piece_len = c < 128 ? (size_t)c * 3 : c < 192 ? (size_t)(c - 127) * 257
	             : c < 254 ? (size_t)(c - 191) * 4099 : ANSWER_PIECE - 255 + c;
	if (s->status == 204 || s->status == 205) {   /* a worker sends no body for them */
		s->piece_len = 0;
		s->pieces_before_end = 0;
		if (s->action == A_FLUSH_FIRST)
			s->action = A_COMPLETE;
	}
}

/* An idle stand-in reads what there is of a request frame; a whole one is
 * checked against the request the client sent, and its plan is read. */
static void take_request(struct stand_in *s, int slot_index)
{
	struct frame_request fr;
	const char *fields[3 + 2 * MAX_AMZN_HEADERS];
	struct request *r;
	size_t need = sizeof fr;
	long id;
	for (;;) {
		ssize_t got;
		if (s->frame_got >= sizeof fr) {
			memcpy(&fr, s->frame, sizeof fr);
			if (fr.magic != FRAME_MAGIC)
				fail("a request frame with a bad magic (a stray ack?)", (long)s->pid);
			if (fr.meta_len > WORKER_META_MAX || fr.body_len > cfg.max_body ||
			    fr.header_count > MAX_AMZN_HEADERS)
				fail("a request frame with sizes past the limits", (long)fr.meta_len);
			need = sizeof fr + fr.meta_len;
		}
		if (s->frame_got == need)
			break;
		got = read(s->req_fd, s->frame + s->frame_got, need - s->frame_got);
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (got <= 0)
			fail("the loop closed the request pipe of a live worker", (long)s->pid);
		s->frame_got += (size_t)got;
		h.progress++;
	}
	s->frame_got = 0;
	if (split_meta(s->frame + sizeof fr, fr.meta_len, fields, 3 + 2 * (size_t)fr.header_count))
		fail("a request frame whose meta is not its strings", (long)fr.meta_len);
	id = id_of(fields[2]);
	if (id < 1 || id > h.n_requests)
		fail("a request no client sent reached a worker", id);
	r = &h.requests[id];
	if (!r->invocation || fr.body_len != r->body_len)
		fail("a request reached a worker with another body length", (long)fr.body_len);
	if (strcmp(fields[0], r->content_type) != 0 || strcmp(fields[1], r->accept) != 0)
		fail("a request reached a worker with another content type or accept", id);
	if (++r->runs > 1)
		fail("a request reached a worker twice", id);
	s->id = (int)id;
	s->body_len = (size_t)fr.body_len;
	check_body(s, slot_index, "the body in the shared region is not the client's");
	expect_silence(s, "a second frame came behind a request");
	poison_slot(slot_index, 0);          /* the loop is done with earlier answers */
	poison_slot(slot_index, 1);
	take_plan(s);
	s->pieces_sent = 0;
	s->slot = 0;
	s->awaiting_ack = 0;
	s->sent_malformed = 0;
	note("stand-in %ld takes request %ld (%zu bytes): action %d, k %d, status %d, len %zu",
		(long)s->pid, id, s->body_len, s->action, s->pieces_before_end, s->status,
		s->piece_len);
}

static void write_frame(struct stand_in *s, const struct frame_reply *fr, const char *meta,
	size_t meta_len, size_t cut)
{
	char buf[sizeof *fr + REPLY_META_MAX + 16];
	size_t n = sizeof *fr + meta_len;
	ssize_t w;
	memcpy(buf, fr, sizeof *fr);
	if (meta_len)
		memcpy(buf + sizeof *fr, meta, meta_len);
	if (cut && cut < n)
		n = cut;
	w = write(s->rep_fd, buf, n);
	if (w != (ssize_t)n)
		fail("the stand-in could not write its reply (the loop closed a live worker's pipe?)",
			(long)w);
	h.progress++;
}

/* Writes a piece's bytes into the slot and sends its frame; the first
 * frame carries the content type and the id as custom attributes. */
static void send_piece_frame(struct stand_in *s, int slot_index, enum piece_kind kind, size_t len)
{
	struct request *r = &h.requests[s->id];
	struct frame_reply fr = { FRAME_MAGIC, 0, 0, 0, 0, 0, 0 };
	char meta[128], *p = answer_slot(workers[slot_index].region, s->slot);
	size_t i, meta_len = 0;
	for (i = 0; i < len; i++)
		p[i] = answer_byte(s->id, r->answer_len + i);
	if (len > h.slot_used[slot_index][s->slot])
		h.slot_used[slot_index][s->slot] = len;
	if (s->pieces_sent == 0)
		meta_len = (size_t)snprintf(meta, sizeof meta, "%s%cid=%d", s->type, 0, s->id) + 1;
	fr.status = s->status;
	fr.meta_len = (uint32_t)meta_len;
	fr.kind = kind;
	fr.slot = s->slot;
	fr.len = len;
	write_frame(s, &fr, meta, meta_len, 0);
	r->status = s->status;
	r->answer_len += len;
	if (kind == PIECE_MORE) {
		s->pieces_sent++;
		s->awaiting_ack = 1;
		s->slot ^= 1;
	} else {
		r->single = s->pieces_sent == 0;
		r->end = END_DONE;
		s->id = 0;
	}
}

/* A frame the loop must refuse (reply_complete, answer_head). */
static void send_malformed(struct stand_in *s)
{
	struct frame_reply fr = { FRAME_MAGIC, 200, 0, PIECE_LAST, 0, 0, 0 };
	char meta[96];
	size_t meta_len = 0;
	int first = s->pieces_sent == 0;
	switch (s->variant) {
	case 0: fr.magic ^= 1; break;
	case 1: fr.meta_len = REPLY_META_MAX + 1; break;
	case 2: fr.kind = PIECE_BROKEN + 1; break;
	case 3: fr.slot = 2; break;
	case 4: fr.len = ANSWER_PIECE + 1; break;
	case 5:                                   /* two frames at once */
		if (first) {
			meta_len = (size_t)snprintf(meta, sizeof meta, "x%cid=%d", 0, s->id) + 1;
			fr.meta_len = (uint32_t)meta_len;
		}
		memcpy(meta + meta_len, &fr, sizeof fr);
		meta_len += sizeof fr;
		break;
	case 6:                                   /* a status or meta answer_head refuses */
		if (first) {
			fr.status = s->id % 2 ? 199 : 600;
			meta_len = (size_t)snprintf(meta, sizeof meta, "bad\001type%cid=%d", 0, s->id) + 1;
			if (s->id % 3 == 0)
				meta_len--;               /* and the second string unterminated */
			fr.meta_len = (uint32_t)meta_len;
		} else
			fr.kind = PIECE_BROKEN + 7;
		break;
	default:
		/* Part of a frame, and then nothing: the loop waits for the rest
		 * until the deadline (so the answer is not broken yet). */
		fr.meta_len = 10;
		write_frame(s, &fr, "abcd", 4, 0);
		s->sent_malformed = 1;
		return;
	}
	if (fr.meta_len > REPLY_META_MAX)
		meta_len = 0;
	write_frame(s, &fr, meta, meta_len, 0);
	s->sent_malformed = 1;
	h.requests[s->id].end = END_BROKEN;
}

static void send_broken(struct stand_in *s)
{
	static const char reason[] = "the model failed in mid-answer";
	struct frame_reply fr = { FRAME_MAGIC, 0, sizeof reason, PIECE_BROKEN, 0, 0, 0 };
	fr.slot = s->slot;
	write_frame(s, &fr, reason, sizeof reason, 0);
	h.requests[s->id].end = END_BROKEN;
	if (s->pieces_sent == 0)
		s->sent_malformed = 1;           /* a broken answer that never began */
	s->id = 0;
}

/* The stand-in's death in its plan: maybe in the middle of a frame. */
static void die_by_plan(struct stand_in *s)
{
	if (s->partial_death) {
		struct frame_reply fr = { FRAME_MAGIC, 200, 0, PIECE_LAST, 0, 0, 0 };
		write_frame(s, &fr, NULL, 0, 1 + (size_t)s->id % (sizeof fr - 1));
	}
	stand_in_dies(s, s->id % 2 ? 3 << 8 : SIGSEGV);   /* exit(3), or a crash */
}

/* One step of a stand-in: take a request, or the next move of its plan. */
static void stand_in_step(struct stand_in *s)
{
	int slot_index = slot_of(s), last_piece;
	char b;
	size_t len;
	if (s->req_fd < 0 || slot_index < 0)
		return;
	if (s->sent_malformed) {
		expect_silence(s, "the loop sent more to a worker that sent a malformed frame");
		return;
	}
	if (!s->id) {
		take_request(s, slot_index);
		return;
	}
	check_body(s, slot_index, "the shared region's body changed while the worker ran it");
	if (s->awaiting_ack) {
		int r = read_request_byte(s, &b);
		if (r == 1 && b != '\0')
			fail("a worker waiting for an ack got something else (a request?)", b);
		if (r == 1) {
			s->awaiting_ack = 0;
			poison_slot(slot_index, s->slot ^ 1u);   /* the acked piece's slot */
			h.progress++;
		}
	}
	if (!s->awaiting_ack)
		expect_silence(s, "a worker got a request or an ack while it owed an answer");
	if (s->action == A_HANG && s->pieces_sent >= s->pieces_before_end)
		return;
	if (s->action == A_DIE && s->pieces_sent >= s->pieces_before_end) {
		die_by_plan(s);
		return;
	}
	if (s->awaiting_ack)
		return;                          /* a worker's next frame waits for the ack */
	len = s->action == A_FLUSH_FIRST && s->pieces_sent == 0 ? 0 : s->piece_len;
	last_piece = s->pieces_sent >= s->pieces_before_end + (s->action == A_FLUSH_FIRST);
	if (!last_piece) {
		send_piece_frame(s, slot_index, PIECE_MORE, len);
		return;
	}
	switch (s->action) {
	case A_BREAK:
		send_broken(s);
		break;
	case A_MALFORMED:
		send_malformed(s);
		break;
	case A_COMPLETE_AND_DIE:
		send_piece_frame(s, slot_index, PIECE_LAST, s->empty_last ? 0 : len);
		stand_in_dies(s, 0);
		break;
	default:
		send_piece_frame(s, slot_index, PIECE_LAST, s->empty_last ? 0 : len);
		break;
	}
}

/* ---- the ops ---- */

static void advance_time(int how)
{
	static const int seconds[8] = { 1, 2, DEFAULT_HEADER_TIMEOUT_S + 1, DEFAULT_BODY_TIMEOUT_S + 1,
		DEFAULT_TIMEOUT_S + 1, DEFAULT_IDLE_TIMEOUT_S + 1, DEFAULT_STREAM_TIMEOUT_S + 1, 1000 };
	now_ms += (int64_t)seconds[how] * 1000;
}

static void misc(int what)
{
	if (what < 8) {
		char sig = SIGCHLD;
		if (write(signal_pipe[1], &sig, 1) != 1)
			abort();
	} else if (what < 16) {
		struct stand_in *s = stand_in_of_slot(what & 1);
		if (s)
			stand_in_dies(s, SIGKILL);
		if (s && (what & 2)) {
			/* It died while the loop was in handle_events, after the
			 * workers' part, with an earlier SIGCHLD's byte seen: the
			 * reaping comes before its pipe's end of file. */
			char sig = SIGCHLD;
			if (write(signal_pipe[1], &sig, 1) != 1)
				abort();
			handle_signals();
		}
	} else if (what < 24) {
		h.fork_failures = what & 7;
	} else if (what == 31) {
		stop_signals = 1;                 /* what on_signal does for SIGTERM */
		begin_drain();
	}
}

static void run_op(uint8_t op)
{
	int what = op & 7, who = (op >> 3) & 3, how = op >> 5;
	static const size_t send_sizes[8] = { 1, 5, 17, 64, 256, 1024, 8192, SIZE_MAX };
	static const size_t read_sizes[8] = { 1, 16, 128, 1024, 16384, SIZE_MAX, SIZE_MAX, SIZE_MAX };
	struct client *cl = &h.clients[who % h.n_clients];
	int turn = 1;
	note("op %d who %d how %d", what, who, how);
	switch (what) {
	case OP_SEND:
	case OP_SEND2:
		client_send(cl, send_sizes[how]);
		break;
	case OP_READ:
		client_read(cl, read_sizes[how]);
		break;
	case OP_STEP:
	case OP_STEP2: {
		struct stand_in *s = stand_in_of_slot(who % cfg.workers);
		if (s)
			stand_in_step(s);
		turn = !(how & 1);
		break;
	}
	case OP_TIME:
		advance_time(how);
		break;
	case OP_END:
		if (cl->fd >= 0 && how < 4) {
			shutdown(cl->fd, SHUT_WR);
			cl->write_shut = 1;
		} else if (cl->fd >= 0) {
			close(cl->fd);
			cl->fd = -1;
		}
		break;
	default:
		misc(op >> 3);
		break;
	}
	if (turn)
		loop_turn();
}

/* Stand-ins follow their plans (with the script spent, a request's plan is
 * a plain 200), clients send what is left and read everything, until
 * nothing moves. */
static void finale(void)
{
	int round, i;
	for (round = 0; round < FINALE_ROUNDS; round++) {
		long before = h.progress;
		for (i = 0; i < cfg.workers; i++) {
			struct stand_in *s = stand_in_of_slot(i);
			if (s)
				stand_in_step(s);
		}
		loop_turn();
		for (i = 0; i < h.n_clients; i++) {
			struct client *cl = &h.clients[i];
			if (cl->out_sent < cl->out_len)
				client_send(cl, SIZE_MAX);
			client_read(cl, SIZE_MAX);
		}
		loop_turn();
		if (h.progress == before) {
			h.settled = 1;
			break;
		}
	}
	if (!h.settled)
		return;
	/* Every client has read all there is: nothing holds an ack back. */
	for (i = 0; i < cfg.workers; i++) {
		struct stand_in *s = stand_in_of_slot(i);
		if (s && s->req_fd >= 0 && s->awaiting_ack)
			fail("a worker waits for an ack the loop will never send", (long)s->pid);
	}
}

/* ---- the responses, as a client reads them ---- */

struct response {
	int status;
	int chunked, has_length, close;
	size_t length;
	long id;                        /* from custom attributes "id=N"; 0 none */
};

static int header_is(const char *line, size_t n, const char *name)
{
	size_t k = strlen(name);
	return n > k && strncasecmp(line, name, k) == 0 && line[k] == ':';
}

/* Parses a response head at p; returns its length, 0 if it is not all
 * there, -1 if it is not an HTTP/1.1 response head smserve would write. */
static long parse_head(const char *p, size_t n, struct response *r)
{
	const char *end = NULL, *line;
	size_t i;
	memset(r, 0, sizeof *r);
	for (i = 0; i + 3 < n && i < 4096; i++)
		if (memcmp(p + i, "\r\n\r\n", 4) == 0) {
			end = p + i;
			break;
		}
	if (memcmp(p, "HTTP/1.1 ", n < 9 ? n : 9) != 0)
		return -1;
	if (!end)
		return n >= 4096 ? -1 : 0;
	if (end - p < 13 || p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' ||
	    p[11] < '0' || p[11] > '9' || p[12] != ' ')
		return -1;
	r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	line = (const char *)memchr(p, '\r', (size_t)(end + 2 - p)) + 2;  /* past the status line */
	while (line < end + 2) {
		const char *eol = memchr(line, '\r', (size_t)(end + 2 - line));
		size_t len = (size_t)(eol - line);
		if (eol[1] != '\n' || !memchr(line, ':', len))
			return -1;
		if (header_is(line, len, "Content-Length")) {
			if (r->has_length)
				return -1;
			r->has_length = 1;
			r->length = strtoul(line + strlen("Content-Length: "), NULL, 10);
		} else if (header_is(line, len, "Transfer-Encoding")) {
			if (len != 26 || strncmp(line + 19, "chunked", 7) != 0)
				return -1;
			r->chunked = 1;
		} else if (header_is(line, len, "Connection")) {
			r->close = len == 17 && strncmp(line + 12, "close", 5) == 0;
		} else if (header_is(line, len, "X-Amzn-SageMaker-Custom-Attributes")) {
			char value[64];
			size_t skip = strlen("X-Amzn-SageMaker-Custom-Attributes: ");
			size_t n_value = len - skip < sizeof value - 1 ? len - skip : sizeof value - 1;
			memcpy(value, line + skip, n_value);
			value[n_value] = '\0';
			r->id = id_of(value);
		}
		line = eol + 2;
	}
	if (r->chunked && r->has_length)
		return -1;
	return (long)(end + 4 - p);
}

/* Checks answer bytes against the stand-in's, from offset `from`. */
static void check_answer_bytes(long id, const char *p, size_t n, size_t from)
{
	size_t i;
	for (i = 0; i < n; i++)
		if (p[i] != answer_byte((int)id, from + i))
			fail("a client got answer bytes the worker did not send (a reused slot?)", id);
}

/* A chunked body at p: returns its length, 0 if the stream ends first (the
 * body bytes so far are still checked); sets *complete. */
static size_t parse_chunks(const char *p, size_t n, long id, size_t *total, int *complete)
{
	size_t at = 0;
	*total = 0;
	*complete = 0;
	for (;;) {
		size_t size = 0, digits = 0;
		while (at < n && isxdigit((unsigned char)p[at]) && digits < 16) {
			char c = p[at++];
			size = size * 16 + (size_t)(c <= '9' ? c - '0' : (c | 32) - 'a' + 10);
			digits++;
		}
		if (at + 2 > n)
			return 0;
		if (digits == 0 || p[at] != '\r' || p[at + 1] != '\n')
			fail("a chunk-size line smserve should not write", (long)at);
		at += 2;
		if (size == 0) {
			if (at + 2 > n)
				return 0;
			if (p[at] != '\r' || p[at + 1] != '\n')
				fail("the last chunk is not followed by CRLF", (long)at);
			*complete = 1;
			return at + 2;
		}
		if (id > 0)
			check_answer_bytes(id, p + at, size < n - at ? size : n - at, *total);
		if (at + size + 2 > n)
			return 0;
		if (p[at + size] != '\r' || p[at + size + 1] != '\n')
			fail("a chunk's data is not followed by CRLF", (long)(at + size));
		at += size + 2;
		*total += size;
	}
}

/* What an answer with id=N must look like, the stand-in's record in hand. */
static void check_answer(const struct client *cl, const struct response *r, int expected_id,
	size_t body_len, int complete)
{
	struct request *q;
	if (r->id == 0)
		return;
	if (r->id != expected_id)
		fail("an answer reached the wrong request or client", r->id);
	q = &h.requests[r->id];
	if (!q->runs)
		fail("an answer for a request no worker ran", r->id);
	if (q->delivered++)
		fail("a request was answered twice", r->id);
	if (r->status != q->status)
		fail("an answer's status is not the worker's", r->status);
	if (complete && (q->end != END_DONE || body_len != q->answer_len))
		fail("an answer ended cleanly, but not as the worker ended it", r->id);
	if (r->has_length && !q->single)
		fail("a streamed answer went out with Content-Length", r->id);
	if (!complete && q->end == END_BROKEN && cl->fd >= 0 && !cl->eof)
		fail("a broken answer's connection was left open", r->id);
	if (!complete && q->end == END_DONE && h.settled && cl->fd >= 0 && !cl->eof && !cl->cut &&
	    (r->chunked || r->has_length))
		fail("an answer the worker finished never all reached its client", r->id);
}

static void check_responses(const struct client *cl)
{
	size_t at = 0;
	int next = 0, closed = 0;
	while (at < cl->got_len) {
		struct response r;
		struct request *q;
		size_t left, body = 0, total = 0;
		int complete = 1;
		long head;
		if (closed)
			fail("bytes after a response with Connection: close", (long)at);
		head = parse_head(cl->got + at, cl->got_len - at, &r);
		if (head < 0)
			fail("a response that is not an HTTP/1.1 head", (long)at);
		if (head == 0)
			return;                              /* the stream ended in a head */
		at += (size_t)head;
		if (r.status < 200) {
			if (r.status != 100 || r.has_length || r.chunked)
				fail("an interim response other than a bare 100 Continue", r.status);
			continue;
		}
		if (next == cl->n_ids)
			fail("more responses than requests: a request answered twice?", next);
		q = &h.requests[cl->ids[next++]];
		left = cl->got_len - at;
		if (q->head && r.close && r.has_length) {
			/* An error to a head not yet parsed (408, 503) has its body:
			 * the server did not know the method. Nothing may follow. */
			body = r.length < left ? r.length : left;
		} else if (q->head || r.status == 204 || r.status == 205) {
			if (r.chunked || (r.status == 204 && r.has_length) ||
			    (!q->head && r.has_length && r.length != 0))
				fail("a response without a body is framed as having one", r.status);
		} else if (r.chunked) {
			if (q->http10)
				fail("a chunked response to an HTTP/1.0 request", cl->ids[next - 1]);
			body = parse_chunks(cl->got + at, left, r.id, &total, &complete);
			if (!complete) {
				check_answer(cl, &r, cl->ids[next - 1], total, 0);
				return;                          /* the stream ended in the body */
			}
		} else if (r.has_length) {
			body = r.length;
			if (r.id > 0)
				check_answer_bytes(r.id, cl->got + at, body < left ? body : left, 0);
			if (body > left) {
				check_answer(cl, &r, cl->ids[next - 1], left, 0);
				return;
			}
			total = body;
		} else {
			if (!q->http10 || !r.close)
				fail("a close-delimited body without HTTP/1.0 and Connection: close", r.status);
			body = total = left;
			if (r.id > 0)
				check_answer_bytes(r.id, cl->got + at, left, 0);
			complete = 0;                        /* only the close tells */
		}
		check_answer(cl, &r, cl->ids[next - 1], total, complete);
		at += body;
		closed = r.close;
	}
}

/* ---- one input ---- */

static void start_input(const uint8_t *data, size_t size)
{
	int flags = data[0], i, fd;
	/* (libFuzzer opens descriptors between inputs: its symbolizer's pipes) */
	for (fd = 0; fd < FD_CHECK_MAX; fd++)
		fd_open_at_start[fd] = fcntl(fd, F_GETFD) != -1;
	memset(&h.clients, 0, sizeof h.clients);
	h.n_requests = h.n_stand_ins = h.pipes_made = h.fork_failures = 0;
	h.progress = 0;
	h.settled = 0;
	h.sc.p = data + 1;
	h.sc.n = size - 1;
	h.sc.at = 0;
	now_ms = BASE_MS;
	next_client_check_ms = 0;
	cfg.workers = flags & F_TWO_WORKERS ? 2 : 1;
	cfg.max_buffered = flags & F_SMALL_BUDGET ? 8 * 1024 : 64 * 1024;
	cfg.queue_max = flags & F_SHORT_QUEUE ? 1 : 4;
	h.n_clients = 1 + ((flags >> 4) & 3) % MAX_CLIENTS;
	for (i = 0; i < h.n_clients; i++) {
		struct client *cl = &h.clients[i];
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
			abort();
		set_nonblocking(sv[0]);
		set_nonblocking(sv[1]);
		if (flags & F_SMALL_SNDBUF) {
			int small = 1;                   /* the kernel rounds up to its minimum */
			setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
		}
		if (!conn_new(sv[0]))
			abort();
		cl->fd = sv[1];
	}
	for (i = 0; i < cfg.workers; i++) {      /* as start_workers, regions kept */
		workers[i].to_worker = workers[i].from_worker = -1;
		workers[i].pid = 0;
		workers[i].conn = NULL;
		worker_spawn(i);
	}
}

/* Closes everything, checks nothing is left over, and resets the state
 * the next input starts from. */
static void end_input(void)
{
	int fd, i;
	char sink[64];
	for (fd = 0; fd <= max_conn_fd; fd++)
		if (conns[fd])
			conn_close(conns[fd]);
	if (queue.head || queue.len)
		fail("the queue holds requests after every connection closed", queue.len);
	if (buffered_bytes != 0)
		fail("buffer bytes still charged after every connection closed", (long)buffered_bytes);
	for (i = 0; i < cfg.workers; i++) {
		if (workers[i].pid > 0)
			worker_forget(&workers[i]);          /* what stop_workers does, at once */
		if (workers[i].to_worker >= 0 || workers[i].from_worker >= 0)
			fail("a forgotten worker slot kept its pipes", i);
	}
	for (i = 0; i < h.n_stand_ins; i++)
		stand_in_dies(&h.stand_ins[i], SIGKILL);
	for (i = 0; i < h.n_clients; i++) {
		if (h.clients[i].fd >= 0)
			close(h.clients[i].fd);
		free(h.clients[i].out);
		free(h.clients[i].got);
	}
	while (read(signal_pipe[0], sink, sizeof sink) > 0)
		;
	draining = 0;
	drain_deadline = 0;
	stop_signals = 0;
	for (fd = 0; fd < FD_CHECK_MAX; fd++)
		if (!fd_open_at_start[fd] && fcntl(fd, F_GETFD) != -1) {
			char path[64], target[256];
			ssize_t n;
			snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
			n = readlink(path, target, sizeof target - 1);
			note("descriptor %d is %.*s", fd, (int)(n > 0 ? n : 0), target);
			fail("a descriptor was left open", fd);
		}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int i;
	(void)argc;
	(void)argv;
	verbose = getenv("FUZZ_DISPATCH_LOG") != NULL;
	signal(SIGPIPE, SIG_IGN);                /* as install_signals() does */
	cfg.access_log = 1;                      /* (its lines are dropped with the rest) */
	cfg.max_body = 32 * 1024;                /* small: 413 is reachable, regions small */
	the_model = (model *)(void *)&the_stub_model;   /* /ping: 200 while a worker lives */
	now_ms = BASE_MS;
	update_http_date();
	if (pipe(signal_pipe) != 0 || set_nonblocking(signal_pipe[0]) != 0 ||
	    set_nonblocking(signal_pipe[1]) != 0)
		abort();
	for (i = 0; i < 2; i++) {                /* mapped once, as start_workers does */
		workers[i].frame = malloc(sizeof(struct frame_request) + WORKER_META_MAX);
		workers[i].region = map_region();
		if (!workers[i].frame || !workers[i].region)
			abort();
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int ops, i;
	if (size < 1)
		return 0;
	start_input(data, size);
	for (ops = 0; ops < MAX_OPS && h.sc.at < h.sc.n; ops++)
		run_op(next_byte());
	finale();
	for (i = 0; i < h.n_clients; i++) {
		const struct client *cl = &h.clients[i];
		size_t shown = cl->got_len < 1500 ? cl->got_len : 1500, tail = cl->got_len - shown;
		note("client %d received %zu bytes%s:\n%.*s%s%.*s", i, cl->got_len,
			cl->eof ? ", then the end" : "", (int)shown, cl->got ? cl->got : "",
			tail ? "\n[...]\n" : "", (int)(tail < 600 ? tail : 600),
			tail ? cl->got + cl->got_len - (tail < 600 ? tail : 600) : "");
		check_responses(cl);
	}
	end_input();
	return 0;
}
