/*
 * fuzz_conn.c - libFuzzer target for the whole connection state machine.
 *
 * One struct conn is made with conn_new() over one end of a socketpair; the
 * fuzzer's bytes are written to the other end in fuzzer-chosen segments and
 * the server's conn_read()/conn_write() are called as the loop would call
 * them on readiness. cfg.workers is 0, so nothing forks: /invocations
 * requests wait in the queue, /ping answers 503 (no model), errors answer at
 * once. Everything is freed at the end of each input.
 *
 * Input: an 8-byte control prefix, then the bytes the client sends.
 *   [0]     flags: bit 0 small server send buffer (partial writes)
 *                  bit 1 client reads responses after each segment
 *                  bit 2 at the end, the client half-closes (EOF)
 *                  bit 3 at the end, every deadline passes (timeouts)
 *                  bit 4 at the end, the client closes before reading
 *           (after bits 2 and 4, the loop looks at the clients of queued
 *           requests: a half-closed one is sent the probe, a gone one's
 *           request leaves the queue)
 *   [1..3]  segment sizes, minus one, used in turn for the first
 *           MAX_SEGMENTS writes; the rest goes in one write
 *   [4]     bit 1's read size per segment, in units of 64 bytes, plus one
 *   [5..6]  pad position (little endian, modulo the payload length)
 *   [7]     pad count: the byte at the pad position repeated count * 256
 *           times, to reach the 32 KiB head and body limits
 *
 * Invariants beyond the sanitizers: the server writes only HTTP/1.1
 * responses; a connection the server closed is not left in the queue; every
 * buffer byte charged to the global budget is returned.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -Dmain=smserve_main
 * (see fuzz/run.sh).
 */
#include "harness.h"
#include <poll.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CONTROL_BYTES 8
#define PAD_UNIT 256
#define MAX_SEGMENTS 64             /* bounds the syscalls per input */
#define RESPONSE_KEEP (64 * 1024)   /* response bytes kept for checking */

enum {
	F_SMALL_SNDBUF = 1, F_DRAIN = 2, F_HALF_CLOSE = 4, F_TIMEOUT = 8, F_VANISH = 16
};

/* The client's view of one run. */
struct client {
	int fd;                      /* the client's end; -1 once closed */
	int server_fd;
	uintptr_t conn_id;           /* the conn's address, compared only */
	char responses[RESPONSE_KEEP];
	size_t got;
};

static void fail(const char *why, size_t a)
{
	fprintf(stderr, "fuzz_conn invariant broken: %s (%zu)\n", why, a);
	abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);        /* as install_signals() does */
	cfg.workers = 0;                 /* never fork: invocations queue */
	cfg.access_log = 0;
	cfg.max_body = 32 * 1024;        /* small limits, so 413 and 503 are reachable */
	cfg.max_buffered = 64 * 1024;
	cfg.queue_max = 4;
	now_ms = 1000000;
	update_http_date();
	return 0;
}

/* Walks the queue the way dispatch_queued() would: a connection the server
 * closed while it was queued shows up as a heap-use-after-free here. */
static void check_queue(const struct client *cl)
{
	const struct conn *q;
	int n = 0;
	for (q = queue.head; q && n <= queue.len; q = q->next_queued)
		n++;
	if (n != queue.len)
		fail("the queue does not hold queue.len connections", (size_t)n);
	if (!conns[cl->server_fd] && (uintptr_t)queue.head == cl->conn_id)
		fail("the server closed a connection that is still in the queue", 0);
}

/* Lets the server write what it can and read what is waiting, as the loop
 * would on readiness, until neither makes progress. */
static void pump(struct client *cl)
{
	int guard;
	for (guard = 0; guard < 4096; guard++) {
		struct conn *c = conns[cl->server_fd];
		struct pollfd p = { cl->server_fd, POLLIN, 0 };
		if (c && has_pending_output(c))
			conn_write(c);
		check_queue(cl);
		c = conns[cl->server_fd];
		if (!c || !(c->state == CONN_READ_HEAD || c->state == CONN_READ_BODY ||
		            c->state == CONN_LINGER) || poll(&p, 1, 0) != 1)
			return;
		conn_read(c);
		check_queue(cl);
	}
}

/* The client reads up to max bytes of responses. */
static void client_read(struct client *cl, size_t max)
{
	char buf[4096];
	while (max > 0 && cl->fd >= 0) {
		ssize_t r = read(cl->fd, buf, max < sizeof buf ? max : sizeof buf);
		size_t keep;
		if (r <= 0)
			return;
		keep = (size_t)r < RESPONSE_KEEP - cl->got ? (size_t)r : RESPONSE_KEEP - cl->got;
		memcpy(cl->responses + cl->got, buf, keep);
		cl->got += keep;
		max -= (size_t)r;
	}
}

/* Sends bytes, letting the server read whenever the socket is full. */
static void client_send(struct client *cl, const char *p, size_t n)
{
	int stalls = 0;
	while (n > 0 && stalls < 8) {
		ssize_t w = write(cl->fd, p, n);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		stalls++;
		pump(cl);
		client_read(cl, SIZE_MAX);
	}
}

/* The loop's once-a-second look at clients whose request is queued
 * (check_waiting_clients): a second later each time, as it only looks once
 * a second. */
static void look_at_waiting_clients(struct client *cl)
{
	static int64_t later;
	later += 1001;
	now_ms += later;
	check_waiting_clients();
	now_ms -= later;
	check_queue(cl);
	pump(cl);
}

/* The last act: EOF, timeouts, or a client that vanishes. */
static void finish(struct client *cl, int flags)
{
	if (flags & F_VANISH) {
		close(cl->fd);
		cl->fd = -1;
		look_at_waiting_clients(cl); /* a queued request's client is gone */
		pump(cl);                   /* writes now fail: the server closes */
	} else {
		client_read(cl, SIZE_MAX);
		pump(cl);
		client_read(cl, SIZE_MAX);
		if (flags & F_HALF_CLOSE) {
			shutdown(cl->fd, SHUT_WR);
			look_at_waiting_clients(cl); /* the probe goes out */
			pump(cl);
		}
	}
	if (flags & F_TIMEOUT) {
		int64_t saved = now_ms;
		now_ms += (int64_t)1000 * 1000 * 1000;
		check_deadlines();
		check_queue(cl);
		pump(cl);
		now_ms = saved;
	}
	client_read(cl, SIZE_MAX);
}

static void check_responses(const struct client *cl)
{
	static const char start[] = "HTTP/1.1 ";
	size_t n = cl->got < sizeof start - 1 ? cl->got : sizeof start - 1;
	if (memcmp(cl->responses, start, n) != 0)
		fail("the response does not start with HTTP/1.1", cl->got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct client cl;
	int sv[2], flags;
	size_t len, off, i;
	char *in;
	struct conn *c;
	if (size < CONTROL_BYTES)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		abort();
	set_nonblocking(sv[0]);
	set_nonblocking(sv[1]);
	flags = data[0];
	if (flags & F_SMALL_SNDBUF) {
		int small = 1;               /* the kernel rounds up to its minimum */
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
	}
	if (!(c = conn_new(sv[0])))
		abort();
	memset(&cl, 0, sizeof cl);
	cl.fd = sv[1];
	cl.server_fd = sv[0];
	cl.conn_id = (uintptr_t)c;
	in = expand(data, size, CONTROL_BYTES, 5, PAD_UNIT, &len);

	for (off = 0, i = 0; off < len && conns[sv[0]]; i++) {
		size_t n = i < MAX_SEGMENTS ? (size_t)data[1 + i % 3] + 1 : len - off;
		if (n > len - off)
			n = len - off;
		client_send(&cl, in + off, n);
		off += n;
		pump(&cl);
		if (flags & F_DRAIN)
			client_read(&cl, ((size_t)data[4] + 1) * 64);
	}
	finish(&cl, flags);
	check_responses(&cl);

	if (conns[sv[0]])
		conn_close(conns[sv[0]]);
	queue.head = queue.tail = NULL;  /* a queued request never gets a worker */
	queue.len = 0;
	if (cl.fd >= 0)
		close(cl.fd);
	if (buffered_bytes != 0)
		fail("buffer bytes still charged after every connection closed", buffered_bytes);
	free(in);
	return 0;
}
