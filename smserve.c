/*
 * smserve.c - an Amazon SageMaker inference server in one file.
 *
 * SageMaker runs an inference image as `docker run IMAGE serve` and speaks
 * HTTP/1.1 to it on port 8080: GET /ping for health, POST /invocations for
 * predictions (docs/contract.md gathers the rules, as REQ-n). This
 * file is the whole server; the model is a plug-in that implements model.h.
 *
 * How this file works
 * -------------------
 * One process (the "loop") runs a select() loop over the listening socket,
 * every client connection, two pipes per model worker and a self-pipe that
 * turns signals into readable bytes. The loop never waits on a client, a
 * worker or the reader of its log lines, and never runs model code, so
 * /ping and new connections are answered at once even while every worker
 * is busy in a long inference (SageMaker gives /ping 2 s).
 *
 *        clients                 loop process                  workers
 *     ---------------     +-----------------------+     +-----------------+
 *     conn ---------------|  HTTP parser,         |=====| model_invoke()  |
 *     conn ---------------|  /ping, errors,       |=====| model_invoke()  |
 *     conn ---------------|  queue, timeouts      |     +-----------------+
 *     listen socket ------|  self-pipe <- signals |   two pipes per worker
 *                         +-----------------------+
 *
 * The model is loaded once, before the workers are forked, so they share it
 * copy-on-write. A complete request is handed to an idle worker: its body
 * through memory the two share, a small frame through a pipe. The answer
 * comes back the same way, in pieces of at most 1 MiB, and the loop writes
 * each to the client straight from the shared memory (chunked, when there
 * is more than one), so an answer of any size keeps both processes' memory
 * flat. When every worker is busy, requests wait in a bounded FIFO queue. A
 * worker that dies or runs past the invocation timeout is replaced by a
 * fresh fork of the loop process, which still holds the loaded model.
 *
 * With SAGEMAKER_MULTI_MODEL, no model is loaded at start: each load is a
 * process of its own, forked from the loop, whose model lands in one file
 * shared by every process at one address; workers map a model copy-on-write
 * when they first serve it (section 16b, docs/mme.md).
 *
 * Reading order, one idea per section:
 *   1. limits and defaults          2. configuration
 *   3. utilities                    4. the HTTP parser (a pure function over
 *   5. the chunked decoder             bytes, no I/O: tests and fuzzers call it)
 *   6. frames between the loop and a worker
 *   7. server state (every variable the loop changes, in one block)
 *   8. responses                    9. connections
 *  10. model.h's implementation    11. the worker process
 *  12. starting and replacing workers
 *  13. the request queue           14. hand-over and read-back
 *  15. clients that leave          16. routes
 *  16b. multi-model endpoints
 *  17. the connection state machine
 *  18. accepting connections       19. signals
 *  20. the loop                    21. speed-ups (optional: the server is
 *  22. options, start-up and main      correct without them)
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE  /* mmap's MAP_ANONYMOUS and madvise (Linux and the BSDs have both) */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/select.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#ifdef __linux__
#include <pthread.h>
#include <sys/prctl.h>
#ifndef SCHED_BATCH
#define SCHED_BATCH 3               /* Linux's value; glibc hides it without _GNU_SOURCE */
#endif
#ifndef _GNU_SOURCE
/* sched(7); <sched.h> declares it only with _GNU_SOURCE. */
int sched_getaffinity(pid_t pid, size_t mask_size, void *mask);
#endif
#endif
#include <time.h>
#include <unistd.h>

#include "model.h"

/* ======================================================================== */
/* 1. Limits and defaults: each one a named constant with its reason.       */
/* ======================================================================== */

#define SMSERVE_VERSION "0.1.0"
#define DEFAULT_PORT 8080           /* REQ-15; SAGEMAKER_BIND_TO_PORT, REQ-16 */
#define DEFAULT_MODEL_DIR "/opt/ml/model"
#define MIB ((size_t)1024 * 1024)

/* The request head (request line and fields). 414 and 431 past these.
 * RFC 9112 section 3 asks servers to support request-targets of at least
 * 8000 octets; SageMaker's own headers are at most 1024 bytes each. */
#define MAX_TARGET_BYTES 8192
#define MAX_REQUEST_LINE (MAX_TARGET_BYTES + 32)  /* method, target, version */
#define MAX_HEAD_BYTES ((size_t)32 * 1024)
#define MAX_HEADER_FIELDS 100
#define MAX_AMZN_HEADERS 32
#define MAX_ACCEPT_LINES 8          /* Accept may be split over several lines */

/* Chunked bodies: RFC 9112 7.1 - guard the size against overflow (16 hex
 * digits fill 64 bits) and cap what we skip or validate but do not keep. */
#define MAX_CHUNK_SIZE_DIGITS 16
#define MAX_CHUNK_EXT_BYTES 4096
#define MAX_TRAILER_BYTES 16384

/* InvokeEndpoint accepts bodies up to 6 MiB (REQ-31); SAGEMAKER_MAX_PAYLOAD_IN_MB or
 * --max-body-mb raise it for batch transform. */
#define DEFAULT_MAX_BODY (6u * MIB)
/* Answers: no limit unless --max-response-mb sets one; an answer larger
 * than one piece is streamed, so its size costs no memory. */
#define DEFAULT_MAX_RESPONSE 0
/* An answer crosses from a worker to the loop in pieces of this size, in
 * memory they share; the worker fills one piece while the loop writes the
 * other. An answer that fits in one goes out with Content-Length, as from
 * any server; a larger one, or one the model flushes, is sent chunked. */
#define ANSWER_PIECE ((size_t)1 << 20)
/* What the loop keeps of an answer its client is slow to take, before the
 * worker's next piece waits for the client, while no request waits for a
 * worker: enough that a slow reader of an answer of a few MB does not hold
 * a worker, small enough that an answer of any size keeps the loop's memory
 * flat. (While requests wait, it keeps more, within --max-buffered-mb.) */
#define ANSWER_KEEP_MAX (8 * ANSWER_PIECE)
#define LENGTH_UNKNOWN SIZE_MAX     /* respond_full: the body is streamed */
/* All bodies held in memory at once, across connections: a flood of large
 * uploads gets 503s, not an out-of-memory kill. */
#define DEFAULT_MAX_BUFFERED (256u * MIB)

/* SageMaker allows 60 s per invocation (REQ-32); a batch transform waits
 * 600 s unless the job says otherwise (InvocationsTimeoutInSeconds, REQ-52).
 * REQ-n: the rules in docs/contract.md. */
#define DEFAULT_TIMEOUT_S 60
#define BATCH_TIMEOUT_S 600
/* A streamed answer (InvokeEndpointWithResponseStream) may take 8 minutes
 * (REQ-68); an answer is streamed from its first piece on. */
#define DEFAULT_STREAM_TIMEOUT_S 480
/* Peers that close idle connections after 3-5 s cause "connection reset"
 * errors behind SageMaker; keep them longer than its client does. */
#define DEFAULT_IDLE_TIMEOUT_S 75
/* A whole request head must arrive within this time (slowloris), and a body
 * must make progress at least this often. */
#define DEFAULT_HEADER_TIMEOUT_S 30
#define DEFAULT_BODY_TIMEOUT_S 60
/* After a response with Connection: close we half-close and read what the
 * client still sends for this long, so it sees the response, not a reset. */
#define LINGER_MS 2000
/* SIGKILL follows SIGTERM after 30 s (REQ-6); finish well before it. */
#define DRAIN_LIMIT_S 25
/* Requests waiting for a worker; past this, 503 with Retry-After. */
#define DEFAULT_QUEUE 1024
#define RETRY_AFTER_S 1

#define IN_BUF_INITIAL 4096         /* a connection's first input buffer */
#define IN_BUF_KEEP ((size_t)64 * 1024)  /* larger buffers are shrunk after use */
#define ACCEPTS_PER_TURN 64         /* bound the work done for one event */
#define ERROR_BODY_MAX 2048         /* SageMaker cuts OriginalMessage at 2048 (REQ-37) */
#define MAX_WORKERS 256
#define WORKER_META_MAX (2 * MAX_HEAD_BYTES + 128)  /* custom attributes twice; NULs, ", " */
#define REPLY_META_MAX 2048

/* The speed-ups' knobs (section 21 says why each exists). */
#define IN_BUF_IDLE_RELEASE_MS 1000 /* keep a large buffer this long after use */
#define QUICK_ANSWER_US 500         /* how long a quick answer is waited for */

/* Log lines and the connection table: neither may stop the loop. */
#define LOG_BUFFER_BYTES ((size_t)64 * 1024)  /* per stream: about 700 lines for a slow reader */
#define LOG_LINE_MAX 1024           /* longer lines are cut: one line, one atomic pipe write */
#define LOG_DRAIN_MS 2000           /* at exit, lines still waiting get this long */
#define FDS_PER_WORKER 2            /* the loop's ends of a worker's two pipes */
#define FDS_FOR_RESPAWN 4           /* a respawn opens two pipes before closing the child's ends */
#define DEFAULT_MIN_BODY_RATE 1024  /* bytes/s a body must average after --body-timeout s */

/* Multi-model endpoints (SAGEMAKER_MULTI_MODEL, REQ-57 to REQ-65; section
 * 16b, docs/mme.md). Each model gets an extent of the shared model file, of
 * one fixed size; the file and the address range reserved for it are as
 * large as every extent together, but cost only what models occupy. */
#define DEFAULT_MAX_MODELS 10000
#define DEFAULT_MAX_MODEL_MB 256     /* one extent: the largest model */
#define DEFAULT_LOAD_TIMEOUT_S 120   /* SageMaker goes on loading for 360 s (REQ-64) */
#define LOADS_AT_ONCE 4              /* loader processes running; more loads wait in order */
/* After SIGTERM a load may run this long: a model loaded as the server
 * stops serves nothing, and a hung one must not hold the exit. */
#define DRAIN_LOAD_LIMIT_S 5
#define MODEL_NAME_MAX 1024          /* bytes, decoded (a hash in practice, REQ-59) */
#define MODEL_URL_MAX 4096           /* PATH_MAX */
#define LIST_DEFAULT_LIMIT 100       /* GET /models?limit= (MMS's default, REQ-60) */
#define LIST_MAX_LIMIT 1000
#define BUDGET_RESERVE_MIN (256 * MIB)  /* kept from the default budget for the server */
#define BUDGET_WITHOUT_LIMIT ((size_t)1 << 30)  /* no cgroup limit and no /proc/meminfo */

/* Code off the serving path (--help, --healthcheck, the multi-model
 * management routes and loads): optimized for size, not speed (GCC's and
 * Clang's cold attribute). Not code main() always
 * runs: the compiler would take all that follows it, the loop included,
 * for cold as well. */
#if defined(__GNUC__)
#define START_ONLY __attribute__((cold))
#else
#define START_ONLY
#endif

/* ======================================================================== */
/* 2. Configuration: set from the command line and environment in main(),   */
/*    then only read.                                                       */
/* ======================================================================== */

struct config {
	int port;
	const char *model_dir;
	int workers;
	int timeout_s;              /* invocation timeout */
	int stream_timeout_s;       /* the same, for an answer that streams */
	size_t max_body;
	size_t max_response;
	size_t max_buffered;
	int queue_max;
	int idle_timeout_s;
	int header_timeout_s;
	int body_timeout_s;
	int access_log;             /* one line per request, /ping excepted */
	int batch;                  /* SAGEMAKER_BATCH=true: serving a batch transform */
	int multi_model;            /* SAGEMAKER_MULTI_MODEL=true: models loaded by /models */
	int max_models;             /* models loaded (or loading, unloading) at once */
	size_t max_model_bytes;     /* one model's extent */
	size_t model_budget;        /* bytes all models may occupy together */
	int load_timeout_s;         /* a model_load running longer fails */
};

static struct config cfg = {
	DEFAULT_PORT, DEFAULT_MODEL_DIR, 0, DEFAULT_TIMEOUT_S, DEFAULT_STREAM_TIMEOUT_S,
	DEFAULT_MAX_BODY,
	DEFAULT_MAX_RESPONSE, DEFAULT_MAX_BUFFERED, DEFAULT_QUEUE,
	DEFAULT_IDLE_TIMEOUT_S, DEFAULT_HEADER_TIMEOUT_S, DEFAULT_BODY_TIMEOUT_S, 1, 0,
	0, DEFAULT_MAX_MODELS, (size_t)DEFAULT_MAX_MODEL_MB * MIB, 0, DEFAULT_LOAD_TIMEOUT_S,
};

/* ======================================================================== */
/* 3. Utilities                                                             */
/* ======================================================================== */

static int64_t monotonic_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Every log line, the server's and the access log's, starts with the time
 * in one format: ISO 8601 in UTC, to the second ("2026-12-07T09:30:00Z").
 * Writes 20 characters and a NUL into out; returns 20. */
#define LOG_TIME_LEN 20
static size_t format_log_time(char out[LOG_TIME_LEN + 1], time_t t)
{
	char text[64];                  /* room for any int the fields could hold */
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
		tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	memcpy(out, text, LOG_TIME_LEN);
	out[LOG_TIME_LEN] = '\0';
	return LOG_TIME_LEN;
}

/* ---- Log lines never wait for their reader ----
 * The loop's lines (stderr: events and errors; stdout: the access log) go
 * through a bounded buffer per stream and are written only when the
 * descriptor takes them without waiting: a reader that falls behind (a
 * blocking log driver, a full pipe) would otherwise stop the loop inside
 * write(), and /ping with it. A line that does not fit is dropped and
 * counted; once there is room, a line on the same stream says how many.
 *
 * A buffer per stream, not one for both: stdout and stderr usually have
 * different readers (docker reads each from its own pipe), and one slow
 * reader must not cost the other stream its lines; no reader sees an order
 * between two descriptors anyway. Within a stream the order is kept, and a
 * line is written at once when nothing waits before it, as stdio would.
 *
 * stdout and stderr themselves stay blocking: O_NONBLOCK belongs to the
 * open file description, which the workers (a plug-in may printf) and
 * whoever started the server share, and their writes would start failing
 * with EAGAIN. So the loop writes by a way that changes nothing for them:
 *   - a pipe, FIFO or terminal: opened again through /proc/self/fd/N, which
 *     gives the loop a file description of its own, made non-blocking;
 *   - a socket (systemd's journal): send() with MSG_DONTWAIT, per call;
 *   - a regular file: write(), which never waits for a reader;
 *   - anything else (no /proc): poll() without waiting, then one write. A
 *     pipe that poll() calls writable has room for PIPE_BUF bytes, so this
 *     waits only if another writer fills it in between.
 * Each write is whole lines of at most PIPE_BUF bytes, which a pipe takes
 * whole or not at all: lines a worker writes to the same pipe never land
 * inside one of ours. Before the loop starts (start-up lines), and in any
 * process other than the loop, lines are written at once as before; at
 * exit, what is left gets LOG_DRAIN_MS. */
enum log_route {
	LOG_DIRECT,        /* before the loop starts: stdio, which may block */
	LOG_WRITE,         /* write() on out: a non-blocking description of our
	                    * own, or a regular file (never waits for a reader) */
	LOG_SOCKET,        /* send() with MSG_DONTWAIT */
	LOG_POLL_FIRST,    /* poll(), then write() */
	LOG_BROKEN,        /* the reader is gone: lines are discarded */
};

struct log_stream {
	int fd;                      /* 1 or 2, shared with the workers */
	int out;                     /* where LOG_WRITE writes: fd or our own copy */
	enum log_route route;
	const char *what;            /* named in the line that counts drops */
	size_t start, end;           /* the bytes waiting are buf[start, end) */
	unsigned long dropped;       /* lines lost since that line was last written */
	char *buf;                   /* LOG_BUFFER_BYTES */
};

/* The logging state lives here rather than in section 7: log_line, below,
 * is used by every later section. */
static char log_err_buf[LOG_BUFFER_BYTES], log_out_buf[LOG_BUFFER_BYTES];  /* (zeroed: no file bytes) */
static struct log_stream log_err = { 2, 2, LOG_DIRECT, "log", 0, 0, 0, log_err_buf };
static struct log_stream log_out = { 1, 1, LOG_DIRECT, "access log", 0, 0, 0, log_out_buf };
static pid_t log_owner;                 /* the loop, once log_start ran; 0 before */

/* Chooses how the loop writes to s without blocking (see above). */
static void log_stream_start(struct log_stream *s)
{
	struct stat st;
	char path[32];
	int fd;
	s->route = LOG_POLL_FIRST;
	if (fstat(s->fd, &st) != 0)
		return;
	if (S_ISSOCK(st.st_mode)) {
		s->route = LOG_SOCKET;
		return;
	}
	if (S_ISREG(st.st_mode)) {
		s->route = LOG_WRITE;
		return;
	}
	if (!S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode))
		return;
	snprintf(path, sizeof path, "/proc/self/fd/%d", s->fd);
	fd = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (fd >= FD_SETSIZE) {     /* select() could not watch it */
		close(fd);
		return;
	}
	s->out = fd;
	s->route = LOG_WRITE;
}

static size_t log_waiting(const struct log_stream *s)
{
	return s->end - s->start;
}

/* Makes room for n more bytes at the end, moving what waits to the front
 * if that is what it takes. Returns 0 when they would not fit. */
static int log_room(struct log_stream *s, size_t n)
{
	if (s->end + n <= LOG_BUFFER_BYTES)
		return 1;
	if (log_waiting(s) + n > LOG_BUFFER_BYTES)
		return 0;
	memmove(s->buf, s->buf + s->start, log_waiting(s));
	s->end -= s->start;
	s->start = 0;
	return 1;
}

/* One write of whole lines, at most PIPE_BUF bytes; returns what it wrote,
 * 0 when the descriptor cannot take them now, -1 when it never will. */
static ssize_t log_write_some(struct log_stream *s)
{
	size_t n = log_waiting(s);
	const char *p = s->buf + s->start;
	struct pollfd pfd;
	ssize_t w;
	if (n > PIPE_BUF) {
		n = PIPE_BUF;
		while (n > 1 && p[n - 1] != '\n')
			n--;
		if (n == 1)
			n = PIPE_BUF;       /* no line end: a line cut at LOG_LINE_MAX cannot be */
	}
	pfd.fd = s->fd;
	pfd.events = POLLOUT;
	if (s->route == LOG_POLL_FIRST && (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLOUT)))
		return pfd.revents & (POLLERR | POLLNVAL) ? -1 : 0;
	if (s->route == LOG_SOCKET)
		w = send(s->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	else
		w = write(s->out, p, n);
	if (w < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
	return w;
}

/* Queues n bytes if they fit; returns 0 when they do not. */
static int log_queue(struct log_stream *s, const char *p, size_t n)
{
	if (!log_room(s, n))
		return 0;
	memcpy(s->buf + s->end, p, n);
	s->end += n;
	return 1;
}

/* After lines were dropped, the line that says how many goes where they
 * would have been, before any later line. Returns 0 when it does not fit. */
static int log_queue_drop_count(struct log_stream *s)
{
	char note[LOG_TIME_LEN + 128];
	size_t n = format_log_time(note, time(NULL));
	n += (size_t)snprintf(note + n, sizeof note - n, " smserve: %lu %s line(s) dropped: its "
		"reader fell behind\n", s->dropped, s->what);
	if (!log_queue(s, note, n))
		return 0;
	s->dropped = 0;
	return 1;
}

/* Writes what waits, as far as the descriptor takes it without waiting. */
static void log_flush(struct log_stream *s)
{
	for (;;) {
		ssize_t w;
		if (log_waiting(s) == 0) {
			s->start = s->end = 0;
			if (!s->dropped || !log_queue_drop_count(s))
				return;
		}
		w = log_write_some(s);
		if (w == 0)
			return;
		if (w < 0) {            /* EPIPE, EBADF: nobody will read these */
			s->route = LOG_BROKEN;
			s->start = s->end = 0;
			return;
		}
		s->start += (size_t)w;
	}
}

/* Queues a whole line (ending in '\n'), or drops it when the buffer is full. */
static void log_append(struct log_stream *s, const char *line, size_t n)
{
	int idle = log_waiting(s) == 0;
	if (s->route == LOG_DIRECT || getpid() != log_owner) {
		fwrite(line, 1, n, s->fd == 1 ? stdout : stderr);
		return;
	}
	if (s->route == LOG_BROKEN)
		return;
	if ((s->dropped && !log_queue_drop_count(s)) || !log_queue(s, line, n)) {
		s->dropped++;
		return;
	}
	if (idle)                   /* nothing waited before it: try now */
		log_flush(s);
}

/* At exit from the loop process: lines still waiting get LOG_DRAIN_MS. */
static void log_finish(void)
{
	int64_t until = monotonic_us() / 1000 + LOG_DRAIN_MS, left;
	if (log_owner == 0 || getpid() != log_owner)
		return;                 /* a worker (a plug-in calling exit) writes nothing of ours */
	while ((log_waiting(&log_err) || log_waiting(&log_out)) &&
	       (left = until - monotonic_us() / 1000) > 0) {
		struct pollfd p[2] = { { log_err.fd, POLLOUT, 0 }, { log_out.fd, POLLOUT, 0 } };
		p[0].fd = log_waiting(&log_err) && log_err.route != LOG_BROKEN ? log_err.fd : -1;
		p[1].fd = log_waiting(&log_out) && log_out.route != LOG_BROKEN ? log_out.fd : -1;
		if (poll(p, 2, (int)left) < 0 && errno != EINTR)
			break;
		log_flush(&log_err);
		log_flush(&log_out);
	}
}

/* Called as the loop starts: from now on its lines never wait. */
static void log_start(void)
{
	if (log_owner)
		return;
	fflush(stdout);
	fflush(stderr);
	log_stream_start(&log_err);
	log_stream_start(&log_out);
	log_owner = getpid();
	atexit(log_finish);
}

/* Adds the watched descriptor of a stream with lines waiting to the write
 * set; returns the descriptor, or -1 when nothing waits. */
static int log_descriptor(const struct log_stream *s)
{
	if (!log_waiting(s) || s->route == LOG_DIRECT || s->route == LOG_BROKEN)
		return -1;
	return s->route == LOG_WRITE ? s->out : s->fd;
}

/* Copies text into out (cap bytes, NUL included) with its control bytes
 * written as \xNN, cut to fit; returns the length. A line's text can hold
 * a client's bytes (a model's name, decoded) or a plug-in's message: a
 * newline there would end the line, and the rest would read as a line the
 * server never wrote. */
static size_t escape_controls(char *out, size_t cap, const char *text)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	for (; *text && n + 4 < cap; text++) {
		unsigned char ch = (unsigned char)*text;
		if (ch >= 0x20 && ch != 0x7f) {
			out[n++] = (char)ch;
			continue;
		}
		out[n++] = '\\';
		out[n++] = 'x';
		out[n++] = hex[ch >> 4];
		out[n++] = hex[ch & 15];
	}
	out[n] = '\0';
	return n;
}

/* Log lines go to stderr (SageMaker sends it to CloudWatch), one per event. */
static void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_line(const char *fmt, ...)
{
	char text[LOG_LINE_MAX], buf[LOG_LINE_MAX];
	size_t n = format_log_time(buf, time(NULL));
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	n += (size_t)snprintf(buf + n, sizeof buf - n, " smserve: ");
	n += escape_controls(buf + n, sizeof buf - n - 1, text);  /* room kept for the '\n' */
	buf[n++] = '\n';
	log_append(&log_err, buf, n);
}

static int set_nonblocking(int fd)
{
	int flags = fcntl(fd, F_GETFL, 0);
	return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* ASCII-only tolower: header names are compared without the locale. */
static char lower_ascii(char c)
{
	static const char lower[] = "abcdefghijklmnopqrstuvwxyz";
	if (c >= 'A' && c <= 'Z')
		return lower[c - 'A'];
	return c;
}

/* A slice of the connection's input buffer: the parser never copies. */
struct slice {
	const char *p;
	size_t n;
};

/* Compares with a lower-case literal of length n; the length test rejects
 * most header names at the cost of one comparison. */
static int slice_eq_nocase_n(struct slice s, const char *lit, size_t n)
{
	size_t i;
	if (s.n != n)
		return 0;
	for (i = 0; i < n; i++)
		if (lower_ascii(s.p[i]) != lit[i])
			return 0;
	return 1;
}
#define slice_eq_nocase(s, lit) slice_eq_nocase_n((s), (lit), sizeof(lit) - 1)

static int slice_has_prefix_nocase(struct slice s, const char *lit)
{
	size_t i;
	for (i = 0; lit[i]; i++)
		if (i >= s.n || lower_ascii(s.p[i]) != lit[i])
			return 0;
	return 1;
}

static int slice_eq(struct slice s, const char *lit)
{
	return strlen(lit) == s.n && memcmp(s.p, lit, s.n) == 0;
}

/* RFC 9110 5.6.2: token characters. */
static int is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	switch (c) {
	case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
	case '-': case '.': case '^': case '_': case '`': case '|': case '~':
		return 1;
	default:
		return 0;
	}
}

/* ======================================================================== */
/* 4. The HTTP/1.1 request parser                                           */
/*                                                                          */
/* A pure function over bytes: http_parse_head(buf, len, scan, req) returns */
/* PARSE_DONE with req filled (slices into buf), PARSE_MORE when the head   */
/* is incomplete, or PARSE_ERROR with req->error_status set. The decisions  */
/* it makes, one per row (RFC 9110 / 9112; status; then close):             */
/*                                                                          */
/*   bare LF or bare CR in the head          9112 2.2    400 close          */
/*   one empty line before the request line  9112 2.2    ignored            */
/*   request-target over 8192 bytes          9112 3      414 close          */
/*   head over 32 KiB or 100 fields          9110 5.4    431 close          */
/*   over 32 X-Amzn-SageMaker-* fields       9110 5.4    431 close          */
/*   method not a token / unknown (or `get`) 9110 9.1    400 / 501 close    */
/*   version not HTTP/d.d; major not 1       9110 2.5    400 / 505 close    */
/*   no Host on 1.1; two Hosts, a bad Host   9112 3.2    400 close          */
/*   a fragment in the target                9112 3.2    400 close          */
/*   userinfo or a bad host:port in an                                      */
/*     absolute-form target                  9110 4.2.4  400 close          */
/*   asterisk-form, the method not OPTIONS   9112 3.2.4  400 close          */
/*   space before colon, obs-fold, CTL/NUL   9112 5.1-2  400 close          */
/*   Transfer-Encoding on 1.0                9112 6.1    400 close          */
/*   TE and Content-Length together          9112 6.1    400 close          */
/*   TE not ending in chunked                9112 6.3    400 close          */
/*   unknown coding before chunked           9112 6.1    501 close          */
/*   an empty coding (`chunked, `): stricter                                */
/*     than 9110 5.6.1 allows, on purpose    9112 6.1    400 close          */
/*   Content-Length not digits, or a list or                                */
/*     repeated, even of one value: stricter                                */
/*     than 9110 8.6 allows, on purpose      9112 6.3    400 close          */
/*   Expect other than 100-continue (an                                     */
/*     empty Expect expects nothing)         9110 10.1.1 417 close          */
/*   a second Content-Type                   9110 5.3    400 close          */
/*   Accept on several lines: one list, as  9110 5.3    joined with ", "    */
/*     if on one line; over 8 such lines     9110 5.4    431 close          */
/* ======================================================================== */

enum parse_result { PARSE_ERROR = -1, PARSE_MORE = 0, PARSE_DONE = 1 };

enum method { M_UNKNOWN, M_GET, M_HEAD, M_POST, M_OTHER };

/* Where the search for the end of the head stopped, so that each new read
 * scans only the new bytes (a head arriving one byte at a time stays linear). */
struct head_scan {
	size_t start;          /* 2 when one leading CRLF is skipped */
	size_t pos;            /* bytes already checked */
	size_t first_line_end; /* 0 until the request line's CRLF is seen */
};

struct http_request {
	enum method method;
	struct slice method_name, target, path;
	int minor;                  /* HTTP/1.minor (versions 1.2+ act as 1.1) */
	size_t head_len;            /* bytes up to and including the empty line */
	int keep_alive;
	int conn_close, conn_keep_alive;  /* Connection options seen */
	int chunked;
	int other_coding;           /* a transfer coding other than chunked */
	int has_length;
	uint64_t content_length;
	int expect_continue;
	struct slice content_type, custom_attributes;
	size_t accept_count;        /* Accept lines, in order */
	size_t amzn_count;
	int error_status;           /* set with PARSE_ERROR */
	const char *error;          /* short message for the JSON error body */
	/* Last, so that clearing a request can stop before them: only the first
	 * amzn_count entries are ever read. */
	struct slice amzn_name[MAX_AMZN_HEADERS], amzn_value[MAX_AMZN_HEADERS];
	struct slice accept[MAX_ACCEPT_LINES];
};

/* Clears a request for parsing, except the header arrays (see above). */
static void request_clear(struct http_request *req)
{
	memset(req, 0, offsetof(struct http_request, amzn_name));
}

static int parse_fail(struct http_request *req, int status, const char *why)
{
	req->error_status = status;
	req->error = why;
	return PARSE_ERROR;
}

/* Finds the empty line that ends the head, checking each new byte on the way:
 * every CR must be followed by LF and every LF preceded by CR (RFC 9112 2.2).
 *
 *   G E T   / p i n g   H T T P / 1 . 1 \r \n H o s t : x \r \n \r \n
 *                                       ^ first_line_end             ^ end
 */
static int scan_head(const char *buf, size_t len, struct head_scan *s, struct http_request *req)
{
	size_t i, limit;
	if (s->pos == 0) {              /* RFC 9112 2.2: ignore one leading CRLF */
		if (len < 2 && len > 0 && buf[0] == '\r')
			return PARSE_MORE;
		if (len >= 2 && buf[0] == '\r' && buf[1] == '\n')
			s->start = 2;
		s->pos = s->start;
	}
	/* A request starts with a method token: anything else (a TLS hello, a
	 * stray byte) is answered at once rather than after the header timeout. */
	if (s->pos == s->start && len > s->start && !is_tchar((unsigned char)buf[s->start]))
		return parse_fail(req, 400, "malformed request line");
	/* Errors are found in byte order, the length limits included, so the
	 * answer does not depend on how the head was split into reads: a byte
	 * past the limit is an error before anything is known about it. */
	limit = s->start + (s->first_line_end ? MAX_HEAD_BYTES : MAX_REQUEST_LINE + 1);
	for (i = s->pos;; i++) {
		if (i >= limit)
			return s->first_line_end ? parse_fail(req, 431, "request header section too large")
			                         : parse_fail(req, 414, "request target too long");
		if (i >= len)
			break;
		if ((unsigned char)buf[i] > '\r')
			continue;               /* the common case */
		if (buf[i] == '\n')
			return parse_fail(req, 400, "bare LF in request head");
		if (buf[i] != '\r')
			continue;
		if (i + 1 == len)
			break;                  /* the LF may come in the next read */
		if (buf[i + 1] != '\n')
			return parse_fail(req, 400, "bare CR in request head");
		if (s->first_line_end == 0) {
			s->first_line_end = i;
			limit = s->start + MAX_HEAD_BYTES;
		}
		/* An empty line: CRLF right after the previous CRLF. */
		if (i >= s->start + 2 && buf[i - 1] == '\n') {
			s->pos = i + 2;
			if (s->pos - s->start > MAX_HEAD_BYTES)
				return parse_fail(req, 431, "request header section too large");
			return PARSE_DONE;
		}
		if (i == s->start)
			return parse_fail(req, 400, "empty request line");
		i++;                        /* skip the LF we just checked */
	}
	s->pos = i;
	return PARSE_MORE;
}

static enum method method_of(struct slice m)
{
	static const char *const others[] = { "PUT", "DELETE", "OPTIONS", "PATCH",
		"TRACE", "CONNECT" };
	size_t i;
	if (slice_eq(m, "GET"))
		return M_GET;
	if (slice_eq(m, "HEAD"))
		return M_HEAD;
	if (slice_eq(m, "POST"))
		return M_POST;
	for (i = 0; i < sizeof others / sizeof others[0]; i++)
		if (slice_eq(m, others[i]))
			return M_OTHER;
	return M_UNKNOWN;            /* method names are case-sensitive: `get` too */
}

/* The value of a hexadecimal digit (RFC 5234 HEXDIG, either case), or -1. */
static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = lower_ascii(c);
	return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

static int is_host_char(unsigned char c, int in_brackets)
{
	if (in_brackets)                /* IPv6address: hex digits, ':' and '.' */
		return hex_value((char)c) >= 0 || c == ':' || c == '.';
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	return c != '\0' && strchr("-._~!$&'()*+,;=%", c) != NULL;
}

/* Host = uri-host [ ":" port ] (RFC 9110 7.2, RFC 3986 3.2.2): a reg-name or
 * IPv4 address, or an IPv6 address in brackets (with a ':'; IPvFuture is
 * refused), then an optional port of digits. An empty Host header is
 * allowed, an empty host in an absolute-form target is not. The
 * authority of an absolute-form target is checked the same way, so userinfo
 * ('@') is refused there too (RFC 9110 4.2.4). */
static int valid_host(struct slice v, int host_required)
{
	size_t i = 0, colons = 0;
	if (v.n > 0 && v.p[0] == '[') {
		for (i = 1; i < v.n && v.p[i] != ']'; i++) {
			if (!is_host_char((unsigned char)v.p[i], 1))
				return 0;
			colons += v.p[i] == ':';
		}
		if (i == v.n || colons < 2)
			return 0;               /* no closing bracket, or not IPv6 (zone IDs too) */
		i++;
	} else {
		while (i < v.n && v.p[i] != ':' && is_host_char((unsigned char)v.p[i], 0))
			i++;
		if (i == 0 && host_required)
			return 0;               /* an http URI's host is never empty (RFC 9110 4.2.1) */
	}
	if (i < v.n && v.p[i] == ':')
		for (i++; i < v.n && v.p[i] >= '0' && v.p[i] <= '9'; i++)
			;
	return i == v.n;
}

/* The path of a request-target without its query: origin-form "/p?q", or
 * absolute-form "http://host/p?q" (RFC 9112 3.2.2: servers MUST accept it),
 * or asterisk-form "*". No fragment: it never leaves the client. */
static int target_path(struct slice t, struct slice *path)
{
	size_t i = 0;
	if (memchr(t.p, '#', t.n))
		return -1;                  /* a fragment is the client's alone (RFC 9112 3.2) */
	if (t.n > 0 && t.p[0] != '/') {
		struct slice scheme = { t.p, t.n }, authority;
		if (slice_has_prefix_nocase(scheme, "http://"))
			i = 7;
		else if (slice_has_prefix_nocase(scheme, "https://"))
			i = 8;
		else if (t.n == 1 && t.p[0] == '*') {
			*path = t;               /* asterisk-form (OPTIONS *) */
			return 0;
		} else
			return -1;
		authority.p = t.p + i;
		while (i < t.n && t.p[i] != '/' && t.p[i] != '?')
			i++;
		authority.n = (size_t)(t.p + i - authority.p);
		/* host[:port], as in Host: no userinfo (RFC 9110 4.2.4), and
		 * not empty */
		if (!valid_host(authority, 1))
			return -1;
	}
	path->p = t.p + i;
	path->n = 0;
	while (i + path->n < t.n && t.p[i + path->n] != '?')
		path->n++;
	if (path->n == 0)
		path->p = "/", path->n = 1;
	return 0;
}

static int parse_request_line(struct slice line, struct http_request *req)
{
	size_t i = 0, start;
	while (i < line.n && is_tchar((unsigned char)line.p[i]))
		i++;
	if (i == 0 || i >= line.n || line.p[i] != ' ')
		return parse_fail(req, 400, "malformed request line");
	req->method_name.p = line.p;
	req->method_name.n = i;
	req->method = method_of(req->method_name);
	start = ++i;
	while (i < line.n && (unsigned char)line.p[i] > ' ' && (unsigned char)line.p[i] < 0x7f)
		i++;
	if (i == start || i >= line.n || line.p[i] != ' ')
		return parse_fail(req, 400, "malformed request line");
	req->target.p = line.p + start;
	req->target.n = i - start;
	if (req->target.n > MAX_TARGET_BYTES)
		return parse_fail(req, 414, "request target too long");
	i++;
	/* HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 2.3) */
	if (line.n - i != 8 || memcmp(line.p + i, "HTTP/", 5) != 0 ||
	    line.p[i + 5] < '0' || line.p[i + 5] > '9' || line.p[i + 6] != '.' ||
	    line.p[i + 7] < '0' || line.p[i + 7] > '9')
		return parse_fail(req, 400, "malformed HTTP version");
	if (line.p[i + 5] != '1')
		return parse_fail(req, 505, "HTTP version not supported");
	req->minor = line.p[i + 7] - '0';
	if (req->method == M_UNKNOWN)
		return parse_fail(req, 501, "method not implemented");
	if (target_path(req->target, &req->path) != 0)
		return parse_fail(req, 400, "malformed request target");
	if (slice_eq(req->path, "*") && !slice_eq(req->method_name, "OPTIONS"))
		return parse_fail(req, 400, "asterisk-form target is for OPTIONS only");
	return PARSE_DONE;
}

/* Content-Length = 1*DIGIT (RFC 9112 6.3), overflow-checked by hand (never
 * strtol, which takes signs, spaces and prefixes). RFC 9110 8.6
 * lets a recipient take a list or repeated lines of one same value; smserve
 * faces the network alone and refuses every ambiguous framing, as nginx
 * does: one line, one number. */
static int parse_content_length(struct slice v, struct http_request *req)
{
	uint64_t n = 0;
	size_t i;
	if (req->has_length)
		return parse_fail(req, 400, "more than one Content-Length");
	if (v.n == 0)
		return parse_fail(req, 400, "invalid Content-Length");
	for (i = 0; i < v.n; i++) {
		unsigned d = (unsigned)(v.p[i] - '0');
		if (v.p[i] < '0' || v.p[i] > '9')
			return parse_fail(req, 400, "invalid Content-Length");
		if (n > (UINT64_MAX - d) / 10)
			return parse_fail(req, 400, "Content-Length too large");
		n = n * 10 + d;
	}
	req->has_length = 1;
	req->content_length = n;
	return PARSE_DONE;
}

/* Calls fn for each comma-separated element of a list field (RFC 9110 5.6.1),
 * trimmed of whitespace; empty elements are passed too, as a zero-length slice. */
static int for_each_element(struct slice v, struct http_request *req,
	int (*fn)(struct slice, struct http_request *))
{
	size_t i = 0;
	for (;;) {
		size_t b = i, e;
		int r;
		while (i < v.n && v.p[i] != ',')
			i++;
		e = i;
		while (b < e && (v.p[b] == ' ' || v.p[b] == '\t'))
			b++;
		while (e > b && (v.p[e - 1] == ' ' || v.p[e - 1] == '\t'))
			e--;
		{
			struct slice el = { v.p + b, e - b };
			r = fn(el, req);
		}
		if (r != PARSE_DONE)
			return r;
		if (i >= v.n)
			return PARSE_DONE;
		i++;
	}
}

/* Transfer-Encoding: only `chunked`, last and once, is ours to decode. The
 * codings of every Transfer-Encoding line form one list (RFC 9110 5.3), so
 * whether chunked came last is decided in check_framing. */
static int transfer_coding(struct slice el, struct http_request *req)
{
	if (el.n == 0)
		return parse_fail(req, 400, "empty transfer coding");
	if (req->chunked)               /* chunked must be the last, applied once */
		return parse_fail(req, 400, "chunked is not the final transfer coding");
	if (slice_eq_nocase(el, "chunked"))
		req->chunked = 1;
	else
		req->other_coding = 1;
	return PARSE_DONE;
}

/* Connection options; `close` wins over `keep-alive` in any order. */
static int connection_option(struct slice el, struct http_request *req)
{
	if (slice_eq_nocase(el, "close"))
		req->conn_close = 1;
	else if (slice_eq_nocase(el, "keep-alive"))
		req->conn_keep_alive = 1;
	return PARSE_DONE;
}

/* One field line "name: value". Field values may hold visible ASCII,
 * obs-text, spaces and tabs; any other control byte is rejected (RFC 9110 5.5). */
static int parse_field(struct slice line, struct http_request *req, int *hosts, int *saw_te,
	int *saw_expect)
{
	struct slice name, value;
	size_t i = 0;
	if (line.p[0] == ' ' || line.p[0] == '\t')
		return parse_fail(req, 400, "obsolete line folding");
	while (i < line.n && is_tchar((unsigned char)line.p[i]))
		i++;
	if (i == 0 || i >= line.n || line.p[i] != ':')
		return parse_fail(req, 400, "malformed header field");
	name.p = line.p;
	name.n = i++;
	while (i < line.n && (line.p[i] == ' ' || line.p[i] == '\t'))
		i++;
	value.p = line.p + i;
	value.n = line.n - i;
	while (value.n > 0 && (value.p[value.n - 1] == ' ' || value.p[value.n - 1] == '\t'))
		value.n--;
	for (i = 0; i < value.n; i++) {
		unsigned char c = (unsigned char)value.p[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return parse_fail(req, 400, "control character in header field");
	}
	if (slice_eq_nocase(name, "host")) {
		if (++*hosts > 1)
			return parse_fail(req, 400, "more than one Host header");
		if (!valid_host(value, 0))
			return parse_fail(req, 400, "invalid Host header");
	} else if (slice_eq_nocase(name, "content-length")) {
		return parse_content_length(value, req);
	} else if (slice_eq_nocase(name, "transfer-encoding")) {
		*saw_te = 1;
		return for_each_element(value, req, transfer_coding);
	} else if (slice_eq_nocase(name, "connection")) {
		return for_each_element(value, req, connection_option);
	} else if (slice_eq_nocase(name, "expect")) {
		if (value.n == 0)
			return PARSE_DONE;      /* an empty list expects nothing (RFC 9110 10.1.1) */
		if (!slice_eq_nocase(value, "100-continue"))
			return parse_fail(req, 417, "unsupported expectation");
		*saw_expect = 1;
	} else if (slice_eq_nocase(name, "content-type")) {
		if (req->content_type.p)
			return parse_fail(req, 400, "more than one Content-Type header");
		req->content_type = value;
	} else if (slice_eq_nocase(name, "accept")) {
		/* A list field (RFC 9110 12.5.1): two lines mean what one line
		 * with both values would, so none may be dropped. */
		if (req->accept_count == MAX_ACCEPT_LINES)
			return parse_fail(req, 431, "too many Accept headers");
		req->accept[req->accept_count++] = value;
	} else if (slice_has_prefix_nocase(name, "x-amzn-sagemaker-")) {
		if (req->amzn_count == MAX_AMZN_HEADERS)
			return parse_fail(req, 431, "too many X-Amzn-SageMaker headers");
		req->amzn_name[req->amzn_count] = name;
		req->amzn_value[req->amzn_count++] = value;
		if (slice_eq_nocase(name, "x-amzn-sagemaker-custom-attributes"))
			req->custom_attributes = value;
	}
	return PARSE_DONE;
}

/* Checks framing once every field is known (RFC 9112 6.1 and 6.3). */
static int check_framing(struct http_request *req, int saw_te, int saw_expect)
{
	if (saw_te && req->minor == 0)
		return parse_fail(req, 400, "Transfer-Encoding in an HTTP/1.0 request");
	if (saw_te && req->has_length)
		return parse_fail(req, 400, "both Transfer-Encoding and Content-Length");
	if (saw_te && !req->chunked)
		return parse_fail(req, 400, "final transfer coding is not chunked");
	if (saw_te && req->other_coding)
		return parse_fail(req, 501, "unsupported transfer coding");
	/* RFC 9112 9.3: 1.1 is persistent unless closed; 1.0 only if asked. */
	req->keep_alive = !req->conn_close && (req->minor >= 1 || req->conn_keep_alive);
	/* RFC 9110 15.2: never send 1xx to an HTTP/1.0 client. */
	req->expect_continue = saw_expect && req->minor >= 1 &&
		(req->chunked || req->content_length > 0);
	return PARSE_DONE;
}

static int http_parse_head(const char *buf, size_t len, struct head_scan *s,
	struct http_request *req)
{
	int r, hosts = 0, saw_te = 0, saw_expect = 0, fields = 0;
	size_t line_start, i;
	struct slice line;

	r = scan_head(buf, len, s, req);
	if (r != PARSE_DONE)
		return r;
	request_clear(req);
	line.p = buf + s->start;
	line.n = s->first_line_end - s->start;
	if ((r = parse_request_line(line, req)) != PARSE_DONE)
		return r;
	line_start = s->first_line_end + 2;
	for (i = line_start;; i++) {
		if (buf[i] != '\r')
			continue;
		if (i == line_start)
			break;                  /* the empty line */
		if (++fields > MAX_HEADER_FIELDS)
			return parse_fail(req, 431, "too many header fields");
		line.p = buf + line_start;
		line.n = i - line_start;
		if ((r = parse_field(line, req, &hosts, &saw_te, &saw_expect)) != PARSE_DONE)
			return r;
		line_start = i + 2;
		i++;
	}
	req->head_len = i + 2;
	if (hosts == 0 && req->minor >= 1)
		return parse_fail(req, 400, "missing Host header");
	return check_framing(req, saw_te, saw_expect);
}

/* ======================================================================== */
/* 5. The chunked decoder (RFC 9112 7.1)                                    */
/*                                                                          */
/* Resumable and in place: raw bytes at buf[*src, len) are decoded and the  */
/* payload moved down to buf[*dst...], so a chunked body ends up contiguous */
/* just like a Content-Length one. Returns PARSE_DONE after the last chunk  */
/* and trailers, PARSE_MORE, or PARSE_ERROR with the status in *status.     */
/* ======================================================================== */

/* In the order of a chunked body: the states from CH_LINE_START on read the
 * trailer section (chunked_decode counts its bytes by that). */
enum chunk_state {
	CH_SIZE, CH_SIZE_BWS,
	/* chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ) */
	CH_EXT_NAME0, CH_EXT_NAME, CH_EXT_AFTER_NAME, CH_EXT_VALUE0, CH_EXT_TOKEN,
	CH_EXT_QUOTED, CH_EXT_QUOTED_ESCAPE, CH_EXT_AFTER_VALUE,
	CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF,
	CH_LINE_START, CH_TRAILER_NAME, CH_TRAILER_VALUE, CH_TRAILER_LF, CH_FINAL_LF, CH_DONE
};

struct chunked {
	enum chunk_state state;
	uint64_t size;        /* size of the current chunk; then bytes left in it */
	unsigned digits;      /* hex digits of the size read so far */
	size_t ext_bytes;     /* chunk-extension bytes skipped, all chunks */
	size_t trailer_bytes;
	uint64_t total;       /* payload bytes decoded */
};

static int chunk_fail(int *status, int code)
{
	*status = code;
	return PARSE_ERROR;
}

/* A byte of a chunk extension (RFC 9112 7.1.1), checked against the grammar
 * though its meaning is ignored: an extension without a name, or a quoted
 * string left open at the end of the line, is a 400, not something to skip.
 * BWS is a space or tab; a quoted string holds visible ASCII, obs-text,
 * spaces and tabs, and backslash escapes. Whitespace after a name or value,
 * before the CRLF, is let through (the grammar has BWS only around ';' and
 * '='): harmless, and what common clients' encoders never send anyway. */
static int chunk_extension_byte(struct chunked *c, char ch, int *status)
{
	unsigned char u = (unsigned char)ch;
	int bws = ch == ' ' || ch == '\t', token = is_tchar(u), quotable = bws || (u >= 0x21 && u != 0x7f);
	int end = ch == '\r', next_ext = ch == ';';
	enum chunk_state s = c->state, next;
	if (!end && ++c->ext_bytes > MAX_CHUNK_EXT_BYTES)
		return chunk_fail(status, 400);
	if (s == CH_EXT_NAME0 && (bws || token))               /* after ';' */
		next = bws ? CH_EXT_NAME0 : CH_EXT_NAME;
	else if (s == CH_EXT_NAME && (token || bws || ch == '=' || next_ext || end))
		next = token ? CH_EXT_NAME : bws ? CH_EXT_AFTER_NAME : ch == '=' ? CH_EXT_VALUE0 :
		       next_ext ? CH_EXT_NAME0 : CH_SIZE_LF;
	else if (s == CH_EXT_AFTER_NAME && (bws || ch == '=' || next_ext || end))
		next = bws ? CH_EXT_AFTER_NAME : ch == '=' ? CH_EXT_VALUE0 : next_ext ? CH_EXT_NAME0 :
		       CH_SIZE_LF;
	else if (s == CH_EXT_VALUE0 && (bws || ch == '"' || token))   /* after '=' */
		next = bws ? CH_EXT_VALUE0 : ch == '"' ? CH_EXT_QUOTED : CH_EXT_TOKEN;
	else if (s == CH_EXT_TOKEN && (token || bws || next_ext || end))
		next = token ? CH_EXT_TOKEN : bws ? CH_EXT_AFTER_VALUE : next_ext ? CH_EXT_NAME0 :
		       CH_SIZE_LF;
	else if (s == CH_EXT_QUOTED && quotable)
		next = ch == '"' ? CH_EXT_AFTER_VALUE : ch == '\\' ? CH_EXT_QUOTED_ESCAPE : CH_EXT_QUOTED;
	else if (s == CH_EXT_QUOTED_ESCAPE && quotable)
		next = CH_EXT_QUOTED;
	else if (s == CH_EXT_AFTER_VALUE && (bws || next_ext || end))
		next = bws ? CH_EXT_AFTER_VALUE : next_ext ? CH_EXT_NAME0 : CH_SIZE_LF;
	else
		return chunk_fail(status, 400);
	c->state = next;
	return PARSE_MORE;
}

/* The framing bytes (everything but chunk data), one at a time. */
static int chunk_framing_byte(struct chunked *c, char ch, uint64_t max_body, int *status)
{
	int h;
	switch (c->state) {
	case CH_SIZE:
		if ((h = hex_value(ch)) >= 0) {
			if (++c->digits > MAX_CHUNK_SIZE_DIGITS)
				return chunk_fail(status, 400);
			c->size = c->size * 16 + (uint64_t)h;
			if (c->size > max_body - c->total)
				return chunk_fail(status, 413);
			return PARSE_MORE;
		}
		if (c->digits == 0)
			return chunk_fail(status, 400);
		if (ch == ';')
			c->state = CH_EXT_NAME0;
		else if (ch == ' ' || ch == '\t')
			c->state = CH_SIZE_BWS;
		else if (ch == '\r')
			c->state = CH_SIZE_LF;
		else
			return chunk_fail(status, 400);
		return PARSE_MORE;
	case CH_SIZE_BWS:               /* whitespace is allowed only before ";" */
		if (ch == ';')
			c->state = CH_EXT_NAME0;
		else if ((ch != ' ' && ch != '\t') || ++c->ext_bytes > MAX_CHUNK_EXT_BYTES)
			return chunk_fail(status, 400);
		return PARSE_MORE;
	case CH_EXT_NAME0: case CH_EXT_NAME: case CH_EXT_AFTER_NAME: case CH_EXT_VALUE0:
	case CH_EXT_TOKEN: case CH_EXT_QUOTED: case CH_EXT_QUOTED_ESCAPE: case CH_EXT_AFTER_VALUE:
		return chunk_extension_byte(c, ch, status);   /* unknown extensions are skipped */
	case CH_SIZE_LF:
		if (ch != '\n')
			return chunk_fail(status, 400);
		c->state = c->size ? CH_DATA : CH_LINE_START;
		return PARSE_MORE;
	case CH_DATA_CR:
		if (ch != '\r')
			return chunk_fail(status, 400);
		c->state = CH_DATA_LF;
		return PARSE_MORE;
	case CH_DATA_LF:
		if (ch != '\n')
			return chunk_fail(status, 400);
		c->state = CH_SIZE;
		c->size = 0;
		c->digits = 0;
		return PARSE_MORE;
	case CH_LINE_START:             /* a trailer field, or the final CRLF */
		if (ch == '\r') {
			c->state = CH_FINAL_LF;
			return PARSE_MORE;
		}
		if (!is_tchar((unsigned char)ch))
			return chunk_fail(status, 400);
		c->state = CH_TRAILER_NAME;
		return PARSE_MORE;
	case CH_TRAILER_NAME:           /* trailers are validated like fields, then dropped */
		if (ch == ':')
			c->state = CH_TRAILER_VALUE;
		else if (!is_tchar((unsigned char)ch))
			return chunk_fail(status, 400);
		return PARSE_MORE;
	case CH_TRAILER_VALUE:
		if (ch == '\r')
			c->state = CH_TRAILER_LF;
		else if (((unsigned char)ch < 0x20 && ch != '\t') || ch == 0x7f)
			return chunk_fail(status, 400);
		return PARSE_MORE;
	case CH_TRAILER_LF:
		if (ch != '\n')
			return chunk_fail(status, 400);
		c->state = CH_LINE_START;
		return PARSE_MORE;
	case CH_FINAL_LF:
		if (ch != '\n')
			return chunk_fail(status, 400);
		c->state = CH_DONE;
		return PARSE_DONE;
	case CH_DATA:
	case CH_DONE:
		break;
	}
	return chunk_fail(status, 400);
}

static int chunked_decode(struct chunked *c, char *buf, size_t len, size_t *src, size_t *dst,
	uint64_t max_body, int *status)
{
	while (*src < len && c->state != CH_DONE) {
		if (c->state == CH_DATA) {
			size_t n = len - *src;
			if (n > c->size)
				n = (size_t)c->size;
			memmove(buf + *dst, buf + *src, n);
			*src += n;
			*dst += n;
			c->size -= n;
			c->total += n;
			if (c->size == 0)
				c->state = CH_DATA_CR;
			continue;
		}
		if (c->state >= CH_LINE_START && ++c->trailer_bytes > MAX_TRAILER_BYTES)
			return chunk_fail(status, 431);
		if (chunk_framing_byte(c, buf[(*src)++], max_body, status) == PARSE_ERROR)
			return PARSE_ERROR;
	}
	return c->state == CH_DONE ? PARSE_DONE : PARSE_MORE;
}

/* ======================================================================== */
/* 6. Frames between the loop and a worker                                  */
/*                                                                          */
/* Bodies and answers do not cross the pipes. Each worker slot has a region */
/* of memory shared with the loop (mapped once, before any fork): room for  */
/* one request body (--max-body-mb), then two answer pieces. The pipes      */
/* carry small frames (host byte order: both ends are this binary):         */
/*   request: struct frame_request, then meta (NUL-separated strings:       */
/*            content type, accept, custom attributes, then name/value      */
/*            pairs of X-Amzn-SageMaker-* headers); the body is in the      */
/*            region                                                        */
/*   reply:   struct frame_reply for each piece of the answer, whose bytes  */
/*            are in the region's answer slot it names; the first frame     */
/*            carries meta (content type, custom attributes), a broken      */
/*            answer's frame the reason                                     */
/*   ack:     one byte, loop to worker: the loop is done with a PIECE_MORE, */
/*            whose slot the worker may fill again. The worker waits for it */
/*            before its next frame, so the loop holds at most one piece of */
/*            each worker, and a client that reads slowly slows the model   */
/*            down rather than filling memory. A PIECE_LAST is not acked:   */
/*            the loop is done with it before it hands the worker a request.*/
/* ======================================================================== */

#define FRAME_MAGIC 0x736d7376u  /* "smsv" */

enum piece_kind {
	PIECE_LAST,     /* the answer's last (or only) piece */
	PIECE_MORE,     /* more pieces follow: the answer streams */
	PIECE_BROKEN,   /* a streaming answer failed: meta says why */
};

struct frame_request {
	uint32_t magic;
	uint32_t meta_len;
	uint32_t header_count;
	uint32_t extent;           /* multi-model: the model's extent (section 16b) */
	uint64_t body_len;
	uint64_t handle;           /* multi-model: the model's handle; 0: the_model */
	uint64_t generation;       /* multi-model: which load of the extent it is */
};

struct frame_reply {
	uint32_t magic;
	int32_t status;
	uint32_t meta_len;
	uint32_t kind;             /* enum piece_kind */
	uint32_t slot;             /* the answer slot holding the piece: 0 or 1 */
	uint32_t reserved;
	uint64_t len;              /* the piece's bytes */
};

/* A worker slot's shared region: the request body, then the answer slots. */
static size_t region_size(void);
static char *answer_slot(char *region, unsigned slot);

/* ======================================================================== */
/* 7. Server state: the types of a connection and a worker, and every       */
/*    variable the loop process changes, in one block                       */
/* ======================================================================== */

enum conn_state {
	CONN_READ_HEAD,   /* waiting for (the rest of) a request head */
	CONN_READ_BODY,   /* head parsed, reading the body */
	CONN_IN_MODEL,    /* queued for, or running in, a worker */
	CONN_WRITE,       /* writing the response */
	CONN_LINGER,      /* response sent, half-closed, discarding input */
};

enum route { ROUTE_PING, ROUTE_EXEC_PARAMS, ROUTE_INVOCATIONS, ROUTE_MODEL_LIST,
	ROUTE_MODEL_LOAD, ROUTE_MODEL_DESCRIBE, ROUTE_MODEL_UNLOAD, ROUTE_MODEL_INVOKE, ROUTE_ERROR };

struct mm_model;

struct conn {
	int fd;
	enum conn_state state;
	char *in;                 /* bytes read: head, body, pipelined requests */
	size_t in_len, in_cap;
	struct head_scan scan;
	struct http_request req;
	enum route route;
	size_t body_start;        /* offset of the body in `in` */
	size_t body_len;          /* body bytes received (decoded, if chunked) */
	size_t raw_pos;           /* chunked: first undecoded byte */
	size_t req_end;           /* offset just past this request */
	struct chunked chunk;
	int close_after;          /* close once the response is written */
	int resent;               /* queued again after a worker died taking it */
	int input_seen;           /* with the model: more input or its end came (see check_client) */
	int probed;               /* queued, its input ended: an interim 100 went out */
	int64_t deadline;         /* ms; 0 when none */
	int64_t release_at;       /* ms: give a large idle input buffer back (0: none) */
	int64_t started_us;       /* first byte of this request, for the log */
	/* the response: a head built here (with a piece's chunk-size line), a
	 * body (static, a worker's answer slot, or owned), a tail (a chunk's
	 * CRLF, the last chunk) */
	char head[2048];
	size_t head_len;
	const char *body;
	size_t body_out_len;
	const char *tail;
	size_t tail_len;
	char *owned;              /* the rest of an answer the client was slow to take */
	size_t owned_len;         /* charged to --max-buffered-mb */
	size_t owned_cap;
	size_t out_off;           /* bytes of head+body+tail already written */
	size_t bytes_out;         /* bytes of the whole response written, for the log */
	int streaming;            /* an answer in pieces, more of them to come */
	int chunked;              /* its pieces go out as chunks (RFC 9112 7.1) */
	int ack_owed;             /* its worker waits for this client (piece_arrived) */
	size_t written_since_deadline;  /* the deadline moves once per ANSWER_PIECE */
	int status;
	char small_body[ERROR_BODY_MAX + 64];  /* error JSON, /execution-parameters */
	struct conn *next_queued;
	struct mm_model *mm;      /* multi-model: the model this invocation is for */
	struct mm_model *awaits;  /* multi-model: the load or unload this waits for */
};

struct worker {
	pid_t pid;                 /* > 0 running; 0 slot empty; < 0 just reaped */
	int to_worker;             /* write end of the request pipe */
	int from_worker;           /* read end of the reply pipe; EOF when it dies */
	int quick;                 /* its last answer came within QUICK_ANSWER_US */
	struct conn *conn;         /* the request it runs, or NULL when idle */
	char *region;              /* shared with it: the body, the answer slots */
	char *frame;               /* request frame header and meta */
	size_t frame_len, sent;    /* bytes of the frame sent so far */
	char reply[sizeof(struct frame_reply) + REPLY_META_MAX];  /* a reply frame */
	size_t got;                /* bytes of it read so far */
	int64_t deadline;          /* invocation timeout, ms */
	int64_t handed_us;         /* when it was given its request */
	size_t region_used;        /* bytes of the region its last request touched */
	int64_t region_release_at; /* ms: give those pages back, if still idle (0: not set) */
};

/* Requests waiting for a worker, oldest first, linked through
 * conn.next_queued (section 13). */
struct request_queue {
	struct conn *head, *tail;
	int len;
};

/* The clock, read once per turn of the loop. */
static int64_t now_ms;                  /* monotonic, in ms */
static char http_date[40];              /* the Date header of the current second */
static char log_date[LOG_TIME_LEN + 1]; /* the same second, as log lines show it */
static time_t http_date_second = -1;    /* the second both show */

/* Clients. */
static struct conn *conns[FD_SETSIZE];  /* indexed by file descriptor */
static int max_conn_fd = -1;            /* the highest in conns; -1: none */
static size_t buffered_bytes;           /* input buffer bytes over the initial size,
                                         * charged to --max-buffered-mb */
static struct request_queue queue;      /* requests waiting for a worker */
static int64_t refused_logged_ms = -1000;  /* refuse() logs at most once a second */
static long refused_unlogged;           /* connections refused since its last line */
static int64_t next_client_check_ms;    /* check_waiting_clients' next turn */

/* Workers and the model. */
static struct worker workers[MAX_WORKERS];  /* cfg.workers of them are used */
/* The one model, loaded before the fork; NULL in multi-model mode, where
 * the table below holds the models (section 16b). */
static model *the_model;
static pid_t loop_pid;                  /* for the workers' parent-death check */

/* Multi-model endpoints (section 16b). A model is in the name table from
 * its POST until its DELETE; then in the unloading list until the
 * invocations running on it end. */
/* MM_KILLED: a load whose loader was SIGKILLed (it timed out, or closed its
 * pipe) but not yet reaped; the entry lives on only to hold its extent
 * (see loader_stop). */
enum mm_state { MM_LOADING, MM_LOADED, MM_UNLOADING, MM_KILLED };

struct mm_model {
	char *name;                /* opaque bytes (not NUL-terminated for use) */
	size_t name_len;
	char *url;                 /* the directory model_load is given */
	enum mm_state state;
	uint64_t handle;           /* the plug-in's model: an address valid in every process */
	uint32_t extent;           /* its place in the model file */
	uint64_t generation;       /* which load of that extent (workers remap on a change) */
	size_t bytes;              /* what it occupies in its extent */
	struct conn *waiter;       /* the POST or DELETE waiting for it, or NULL */
	int64_t load_started_us;
	struct mm_model *next_in_bucket;
	struct mm_model *next;     /* in the loads waiting for a loader, or the unloading list */
};

/* A loader process: forked from the loop for one load (section 16b). */
struct loader {
	struct mm_model *m;        /* the load it runs; NULL: the slot is free */
	pid_t pid;                 /* > 0 running; < 0 reaped */
	pid_t ended;               /* the last loader of this slot, not yet reaped */
	struct mm_model *held;     /* MM_KILLED: that loader's load, freed when it is reaped */
	int fd;                    /* the read end of its reply pipe */
	int64_t deadline;          /* ms: --load-timeout */
	char reply[1024];          /* a struct mm_load_reply, as it arrives */
	size_t got;
};

/* An entry of the name table. */
struct mm_ref {
	struct mm_model *m;
};
static struct mm_ref *mm_buckets;       /* the name table: chained, a power of two */
static struct mm_model **mm_by_name;    /* the loaded models in name order (GET /models) */
static size_t mm_by_name_count;
static size_t mm_bucket_mask;
static uint32_t *mm_free_extents;       /* a stack of free extents */
static size_t mm_free_count;
static struct mm_model *mm_waiting_head, *mm_waiting_tail;  /* loads waiting for a loader */
static struct mm_model *mm_unloading;   /* unloads waiting for invocations to end */
static struct loader loaders[LOADS_AT_ONCE];
static size_t mm_occupied;              /* bytes the loaded and unloading models occupy */
static uint64_t mm_generation;          /* the last generation given out */
static int mm_fd = -1;                  /* the model file (memfd), shared by every process */
static char *mm_base;                   /* the range reserved for it, at one address in all */
static size_t mm_span;                  /* its size: every extent */
/* Shared with the workers (mapped before any fork): [0] counts the unloads
 * done, [1 + extent] is the generation the extent holds (0: none). A worker
 * drops its copy-on-write pages of a model gone (worker_drop_unloaded). */
static volatile uint64_t *mm_live;

/* Descriptors that are not connections or worker pipes. */
static int listen_fd = -1;
static int reserve_fd = -1;             /* spare descriptor for EMFILE (see accept_clients) */
static int signal_pipe[2] = { -1, -1 }; /* signal handlers write, the loop reads */

/* Stopping (REQ-6: SIGTERM, then SIGKILL 30 s later). */
static volatile sig_atomic_t stop_signals;  /* SIGTERM/SIGINT seen */
static int draining;                    /* SIGTERM seen: finish and exit */
static int64_t drain_deadline;          /* ms; 0 until the drain begins */

/* A full connection table, slow bodies, workers that cannot be replaced. */
static int client_fd_limit = FD_SETSIZE;  /* clients get numbers below it; the rest
                                           * stay free for the workers' pipes */
static long min_body_rate = DEFAULT_MIN_BODY_RATE;  /* --min-body-rate: bytes/s, 0: none */
static int64_t displaced_logged_ms = -1000;  /* make_room logs at most once a second */
static long displaced_unlogged;         /* clients displaced since its last line */
static int64_t respawn_failed_logged_ms = -1000;  /* the same for failed respawns */

/* Functions called before their section: the state machine's entry point,
 * the queue's dispatcher, the checks for a client gone, and the speed-ups
 * of section 21. */
static void conn_process(struct conn *c);
static void dispatch_queued(void);
static void model_abandon(struct conn *c);
static struct worker *worker_running(const struct conn *c);
static int client_reset(struct conn *c);
static void client_left(struct conn *c, const char *how);
static void keep_buffer_a_while(struct conn *c);
static void conn_release_buffer(struct conn *c);
static int release_idle_buffers(void);
static void release_idle_region(struct worker *w);
static void piece_written(struct conn *c);
#ifdef __linux__
static void worker_mark_as_batch(void);
#endif
static void note_answer_time(struct worker *w);
static int wait_for_events(int maxfd, fd_set *rd, fd_set *wr, struct timeval *tv);
/* The multi-model endpoints' (section 16b). */
static model *worker_model(const struct frame_request *fr);
static void worker_drop_unloaded(int from_loop);
static int request_within(int fd, int ms);
static enum route mm_route_of(const struct http_request *r, int *status, const char **allow,
	const char **message);
static void mm_request_complete(struct conn *c);
static void mm_watch(fd_set *rd, int *maxfd, int64_t *next);
static void mm_events(fd_set *rd);
static void mm_check(void);
static int mm_child_reaped(pid_t pid);
static void mm_drain(void);

/* ======================================================================== */
/* 8. Responses: the status line, the headers, error bodies, the access log */
/* ======================================================================== */

/* RFC 9110 5.6.7: Date is an IMF-fixdate in GMT. Formatted by hand, not with
 * strftime, so no locale or time-zone file is read (the image has no /etc).
 * The log lines' time of the same second is made here too. */
static void update_http_date(void)
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t t = time(NULL);
	struct tm tm;
	if (t == http_date_second)
		return;
	http_date_second = t;
	gmtime_r(&t, &tm);
	snprintf(http_date, sizeof http_date, "%s, %02d %s %04d %02d:%02d:%02d GMT",
		days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900,
		tm.tm_hour, tm.tm_min, tm.tm_sec);
	format_log_time(log_date, t);
}

static const char *reason_phrase(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 205: return "Reset Content";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 417: return "Expectation Failed";
	case 422: return "Unprocessable Content";
	case 424: return "Failed Dependency";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	case 507: return "Insufficient Storage";
	default: return status < 300 ? "OK" : status < 400 ? "Redirection" :
		status < 500 ? "Client Error" : "Server Error";
	}
}

/* Writes {"error": "<message>"} into out, escaping as JSON; returns length. */
static size_t json_error_body(char *out, size_t cap, const char *message)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	const char *p;
	const char *tail = "\"}\n";
	n += (size_t)snprintf(out, cap, "{\"error\": \"");
	for (p = message; *p && n + 8 + strlen(tail) < cap; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c < 0x20) {
			n += (size_t)snprintf(out + n, cap - n, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
		} else
			out[n++] = (char)c;
	}
	memcpy(out + n, tail, strlen(tail) + 1);
	return n + strlen(tail);
}

static int64_t seconds_from_now(int s)
{
	return now_ms + (int64_t)s * 1000;
}

/* Appends to the response head, never past its end. The head is sized for
 * the longest one smserve builds (a 255-byte Content-Type and 1024 bytes of
 * custom attributes), so nothing is cut in practice. Plain copies, not
 * snprintf: this runs once per response. */
static void head_append(struct conn *c, const char *s, size_t n)
{
	if (n > sizeof c->head - c->head_len)
		n = sizeof c->head - c->head_len;
	memcpy(c->head + c->head_len, s, n);
	c->head_len += n;
}

static void head_append_str(struct conn *c, const char *s)
{
	head_append(c, s, strlen(s));
}

static void head_append_number(struct conn *c, uint64_t v)
{
	char digits[20];
	size_t i = sizeof digits;
	do {
		digits[--i] = "0123456789"[v % 10];
		v /= 10;
	} while (v);
	head_append(c, digits + i, sizeof digits - i);
}

/* Builds the response head. body may be NULL for an empty body; for HEAD
 * requests the head describes the body but the body is not sent. A len of
 * LENGTH_UNKNOWN starts a streamed answer: chunked for HTTP/1.1, and for
 * HTTP/1.0, which has no chunks, a body that ends where the connection
 * does (RFC 9112 6.3); its pieces follow (piece_output). */
static void respond_full(struct conn *c, int status, const char *type, const char *body,
	size_t len, const char *extra)
{
	size_t keep = c->head_len - c->out_off;  /* an unsent interim 100, if any */
	if (draining || !c->req.keep_alive)
		c->close_after = 1;
	memmove(c->head, c->head + c->out_off, keep);
	c->head_len = keep;
	head_append_str(c, "HTTP/1.1 ");
	head_append_number(c, (uint64_t)status);
	head_append_str(c, " ");
	head_append_str(c, reason_phrase(status));
	head_append_str(c, "\r\nDate: ");
	head_append_str(c, http_date);
	if (len > 0 || (type && status != 204)) {
		head_append_str(c, "\r\nContent-Type: ");
		head_append_str(c, type ? type : "application/octet-stream");
	}
	c->chunked = len == LENGTH_UNKNOWN && c->req.minor >= 1;
	if (len == LENGTH_UNKNOWN && !c->chunked)
		c->close_after = 1;
	if (c->chunked)
		head_append_str(c, "\r\nTransfer-Encoding: chunked");
	else if (status != 204 && len != LENGTH_UNKNOWN) {  /* RFC 9110 8.6: none on 204 */
		head_append_str(c, "\r\nContent-Length: ");
		head_append_number(c, len);
	}
	if (c->close_after)
		head_append_str(c, "\r\nConnection: close");
	else if (c->req.minor == 0)
		head_append_str(c, "\r\nConnection: keep-alive");
	head_append_str(c, "\r\n");
	if (extra)
		head_append_str(c, extra);       /* whole header lines, each ending in CRLF */
	head_append_str(c, "\r\n");
	c->out_off = 0;
	c->body = c->req.method == M_HEAD ? NULL : body;
	c->body_out_len = c->req.method == M_HEAD || len == LENGTH_UNKNOWN ? 0 : len;
	c->tail_len = 0;
	c->status = status;
	c->state = CONN_WRITE;
	c->deadline = seconds_from_now(cfg.body_timeout_s);
	c->written_since_deadline = 0;
}

static void respond_error_with(struct conn *c, int status, const char *message, const char *extra)
{
	size_t n = json_error_body(c->small_body, sizeof c->small_body, message);
	respond_full(c, status, "application/json", c->small_body, n, extra);
}

static void respond_error(struct conn *c, int status, const char *message)
{
	respond_error_with(c, status, message, NULL);
}

/* Errors found while the request is still arriving: the rest of it cannot
 * be trusted or skipped, so answer and close (RFC 9112 9.3). */
static void fail_and_close(struct conn *c, int status, const char *message)
{
	log_line("%d %s", status, message);   /* one line per error, access log or not */
	c->close_after = 1;
	respond_error(c, status, message);
}

static void log_access(struct conn *c)
{
	if (!cfg.access_log || c->route == ROUTE_PING || c->req.method_name.n == 0)
		return;
	char line[LOG_LINE_MAX];
	int n = snprintf(line, sizeof line, "%s %.*s %.*s %d in=%zu out=%zu us=%lld\n", log_date,
		(int)(c->req.method_name.n > 64 ? 64 : c->req.method_name.n), c->req.method_name.p,
		(int)(c->req.path.n > 200 ? 200 : c->req.path.n), c->req.path.p, c->status,
		c->req_end ? c->req_end : c->in_len, c->bytes_out,
		(long long)(monotonic_us() - c->started_us));
	if (n > 0 && (size_t)n < sizeof line)
		log_append(&log_out, line, (size_t)n);
}

/* ======================================================================== */
/* 9. Connections: buffers, the budget, the write path, the next request    */
/* ======================================================================== */

/* The parsed request's slices point into the input buffer; when realloc
 * moves the buffer, move them with it. */
static void rebase_slice(struct slice *s, uintptr_t old_base, size_t len, char *new_base)
{
	uintptr_t at = (uintptr_t)s->p;
	if (s->p && at >= old_base && at <= old_base + len)
		s->p = new_base + (at - old_base);
}

static void rebase_request(struct http_request *r, uintptr_t old_base, size_t len, char *new_base)
{
	size_t i;
	struct slice *all[] = { &r->method_name, &r->target, &r->path, &r->content_type,
		&r->custom_attributes };
	for (i = 0; i < sizeof all / sizeof all[0]; i++)
		rebase_slice(all[i], old_base, len, new_base);
	for (i = 0; i < r->accept_count; i++)
		rebase_slice(&r->accept[i], old_base, len, new_base);
	for (i = 0; i < r->amzn_count; i++) {
		rebase_slice(&r->amzn_name[i], old_base, len, new_base);
		rebase_slice(&r->amzn_value[i], old_base, len, new_base);
	}
}

/* Grows or shrinks a connection's input buffer, charging the global budget.
 * Returns 0, or -1 when the budget or malloc says no. */
static int conn_resize(struct conn *c, size_t cap)
{
	size_t old_charge = c->in_cap > IN_BUF_INITIAL ? c->in_cap - IN_BUF_INITIAL : 0;
	size_t new_charge = cap > IN_BUF_INITIAL ? cap - IN_BUF_INITIAL : 0;
	uintptr_t old_base = (uintptr_t)c->in;
	char *p;
	if (new_charge > old_charge && buffered_bytes - old_charge + new_charge > cfg.max_buffered)
		return -1;
	p = realloc(c->in, cap);
	if (!p)
		return -1;
	if (old_base && (uintptr_t)p != old_base)
		rebase_request(&c->req, old_base, c->in_len, p);
	c->in = p;
	c->in_cap = cap;
	buffered_bytes = buffered_bytes - old_charge + new_charge;
	return 0;
}

static struct conn *conn_new(int fd)
{
	struct conn *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->fd = fd;
	if (conn_resize(c, IN_BUF_INITIAL) != 0) {
		free(c);
		return NULL;
	}
	c->deadline = now_ms + (int64_t)cfg.idle_timeout_s * 1000;
	conns[fd] = c;
	if (fd > max_conn_fd)
		max_conn_fd = fd;
	return c;
}

/* The rest of an answer kept for a slow client, given back. */
static void drop_owned_answer(struct conn *c)
{
	free(c->owned);
	buffered_bytes -= c->owned_len;
	c->owned = NULL;
	c->owned_len = c->owned_cap = 0;
}

/* Frees a connection. Who may call it, so that a reader can see where a
 * connection can disappear: conn_read (end of stream, error, linger over),
 * conn_write (write error; it then returns -1), conn_timeout, check_client
 * and dispatch_queued (the client of a request with the model gone),
 * begin_drain and close_all_connections. Nothing called from a request's
 * processing closes its connection: errors there only queue a response. */
static void conn_close(struct conn *c)
{
	if (c->state == CONN_IN_MODEL || c->streaming)
		model_abandon(c);
	conns[c->fd] = NULL;
	while (max_conn_fd >= 0 && !conns[max_conn_fd])
		max_conn_fd--;
	close(c->fd);
	buffered_bytes -= c->in_cap > IN_BUF_INITIAL ? c->in_cap - IN_BUF_INITIAL : 0;
	free(c->in);
	drop_owned_answer(c);
	free(c);
}

/* Whether a connection between requests holds nothing but (part of) a CRLF,
 * which comes before no request line (RFC 9112 2.2 says to ignore it): it is
 * idle, under the idle timeout rather than the header timeout. */
static int holds_no_request(const struct conn *c)
{
	return c->in_len <= 2 && memcmp(c->in, "\r\n", c->in_len) == 0;
}

/* Ready for the next request: keep pipelined bytes, drop the rest. */
static void conn_reset(struct conn *c)
{
	size_t used = c->req_end, left = c->in_len - used;
	/* A CRLF after a body is not the next request (RFC 9112 2.2: some old
	 * clients send one after a POST): drop it, and the connection is idle. */
	if (left >= 2 && c->in[used] == '\r' && c->in[used + 1] == '\n')
		used += 2, left -= 2;
	memmove(c->in, c->in + used, left);
	c->in_len = left;
	drop_owned_answer(c);
	c->body = NULL;
	c->head_len = c->out_off = c->body_out_len = c->tail_len = c->bytes_out = 0;
	c->streaming = c->chunked = c->ack_owed = 0;
	memset(&c->scan, 0, sizeof c->scan);
	request_clear(&c->req);
	memset(&c->chunk, 0, sizeof c->chunk);
	c->body_start = c->body_len = c->raw_pos = c->req_end = 0;
	c->resent = c->input_seen = c->probed = 0;
	c->mm = c->awaits = NULL;
	c->route = ROUTE_ERROR;
	c->state = CONN_READ_HEAD;
	if (c->in_cap > IN_BUF_KEEP && left <= IN_BUF_INITIAL)
		keep_buffer_a_while(c);      /* (section 21) */
	c->started_us = monotonic_us();
	c->deadline = holds_no_request(c) ? seconds_from_now(cfg.idle_timeout_s)
	                                  : seconds_from_now(cfg.header_timeout_s);
}

/* Called when the whole response has been written. */
static void response_done(struct conn *c)
{
	log_access(c);
	if (c->close_after || draining) {  /* (a head built before SIGTERM lacks the close) */
		/* Half-close and keep reading briefly, so a client still sending
		 * gets our response rather than a reset (RFC 9112 9.6). */
		shutdown(c->fd, SHUT_WR);
		c->state = CONN_LINGER;
		c->deadline = now_ms + LINGER_MS;
		return;
	}
	conn_reset(c);
	if (c->in_len > 0)
		conn_process(c);             /* a pipelined request is waiting */
}

static int has_pending_output(const struct conn *c)
{
	return c->out_off < c->head_len + c->body_out_len + c->tail_len;
}

/* Adds the part of s (len bytes, which start at output offset `at`) that is
 * not yet written to iov. */
static void add_unwritten(struct iovec *iov, int *n, const struct conn *c, const char *s,
	size_t len, size_t at)
{
	size_t done = c->out_off > at ? c->out_off - at : 0;
	if (done >= len)
		return;
	iov[*n].iov_base = (char *)(uintptr_t)(s + done);
	iov[(*n)++].iov_len = len - done;
}

/* Writes pending output; returns -1 if the connection was closed. A finished
 * response moves straight on to the next pipelined request, in a loop rather
 * than by recursion, so a thousand pipelined requests cost no stack. The
 * deadline set when the output became ready moves only once a whole piece
 * (ANSWER_PIECE) has gone: a client must take each piece of an answer, or
 * the whole of a smaller one, within --body-timeout, however it reads. */
static int conn_write(struct conn *c)
{
again:
	while (has_pending_output(c)) {
		struct iovec iov[3];
		int n = 0;
		ssize_t w;
		add_unwritten(iov, &n, c, c->head, c->head_len, 0);
		add_unwritten(iov, &n, c, c->body, c->body_out_len, c->head_len);
		add_unwritten(iov, &n, c, c->tail, c->tail_len, c->head_len + c->body_out_len);
		w = writev(c->fd, iov, n);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return 0;
			conn_close(c);
			return -1;
		}
		c->out_off += (size_t)w;
		c->bytes_out += (size_t)w;
		c->written_since_deadline += (size_t)w;
		if (c->written_since_deadline >= ANSWER_PIECE) {
			c->written_since_deadline = 0;
			c->deadline = seconds_from_now(cfg.body_timeout_s);
		}
	}
	if (c->state == CONN_WRITE && c->streaming) {
		piece_written(c);              /* the next piece comes from the worker */
	} else if (c->state == CONN_WRITE) {
		response_done(c);
		if (has_pending_output(c))
			goto again;
	} else {                        /* an interim 100 Continue went out */
		c->head_len = c->body_out_len = c->tail_len = c->out_off = 0;
		drop_owned_answer(c);
		if (c->state == CONN_READ_BODY)   /* (the body may be complete by now) */
			c->deadline = seconds_from_now(cfg.body_timeout_s);
	}
	return 0;
}

/* ======================================================================== */
/* 10. model.h's implementation: the answer a plug-in builds in a worker    */
/* ======================================================================== */

/* The answer is written straight into the worker's answer slots, which the
 * loop reads (section 6). A full slot goes to the loop as a piece when more
 * bytes come, not when it fills: an answer of exactly one piece still goes
 * out whole, with Content-Length, and the limit is checked before a piece
 * leaves, so an answer past it is a clean 500 while nothing is sent. */
struct model_response {
	int status;
	int bad_status, status_invalid;   /* an out-of-range status was set */
	int overflow;                     /* the answer passed --max-response-mb */
	int broken;                       /* an error after the first piece went */
	char broken_reason[256];
	char type[256];
	char attributes[1025];
	char *region;                     /* the worker's shared region */
	unsigned slot;                    /* the answer slot being filled */
	size_t len;                       /* bytes in it */
	size_t sent;                      /* bytes in the pieces already sent */
	int streaming;                    /* a piece went: status and headers fixed */
	int awaiting_ack;                 /* the loop still has the other slot */
	int to_loop, from_loop;
};

static int send_piece(model_response *out, enum piece_kind kind);

/* 204 and 205 have no body (RFC 9110 15.3.5, 15.3.6): what is written is dropped. */
static int bodiless(const model_response *out)
{
	return out->status == 204 || out->status == 205;
}

int model_response_status(model_response *out, int status)
{
	/* 1xx are not final answers, and 304 would end the response at its
	 * head (RFC 9112 6.3), leaving any body to be read as the next one. */
	if (out->streaming)
		return -1;                     /* the head went with the first piece */
	if (status < 200 || status > 599 || status == 304) {
		out->bad_status = status;
		out->status_invalid = 1;
		return -1;
	}
	out->status = status;
	return 0;
}

/* Header values the model sets must not be able to inject header lines. */
static int copy_header_value(char *dst, size_t cap, const char *value, int allow_space)
{
	size_t i, n = strlen(value);
	if (n >= cap)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)value[i];
		if (c < 0x20 || c > 0x7e || (c == ' ' && !allow_space))
			return -1;
	}
	memcpy(dst, value, n + 1);
	return 0;
}

int model_response_type(model_response *out, const char *content_type)
{
	if (out->streaming)
		return -1;
	return copy_header_value(out->type, sizeof out->type, content_type, 1);
}

int model_response_custom_attributes(model_response *out, const char *value)
{
	if (out->streaming)
		return -1;
	return copy_header_value(out->attributes, sizeof out->attributes, value, 1);
}

int model_response_write(model_response *out, const void *data, size_t len)
{
	const char *p = data;
	if (out->overflow || out->broken)
		return -1;
	if (cfg.max_response && len > cfg.max_response - out->sent - out->len) {
		out->overflow = 1;
		return -1;
	}
	while (len > 0) {
		size_t room = ANSWER_PIECE - out->len, n;
		if (room == 0) {
			if (send_piece(out, PIECE_MORE) != 0)
				return -1;
			room = ANSWER_PIECE;
		}
		n = len < room ? len : room;
		memcpy(answer_slot(out->region, out->slot) + out->len, p, n);
		out->len += n;
		p += n;
		len -= n;
	}
	return 0;
}

int model_response_flush(model_response *out)
{
	if (out->overflow || out->broken)
		return -1;
	if (bodiless(out) || (out->streaming && out->len == 0))
		return 0;
	return send_piece(out, PIECE_MORE);
}

int model_response_error(model_response *out, int status, const char *message)
{
	char body[ERROR_BODY_MAX];
	size_t n = json_error_body(body, sizeof body, message);
	if (out->streaming) {              /* too late for a status: the answer breaks */
		out->broken = 1;
		snprintf(out->broken_reason, sizeof out->broken_reason, "%s", message);
		return -1;
	}
	out->len = 0;
	out->overflow = 0;
	if (model_response_status(out, status) != 0)
		return -1;
	strcpy(out->type, "application/json");
	return model_response_write(out, body, n);
}

/* ======================================================================== */
/* 11. The worker process: read a frame, run the model, send the reply      */
/*     (blocking I/O is fine here: a worker serves one request at a time)   */
/* ======================================================================== */

/* Reads until *have >= need, growing *buf to at least need bytes. Each read
 * asks for all the room there is, so a small request frame, which the loop
 * sends with one writev, usually arrives in one read. */
static int grow_buffer(char **buf, size_t *cap, size_t need)
{
	char *p;
	if (need <= *cap)
		return 0;
	if (!(p = realloc(*buf, need)))
		return -1;
	*buf = p;
	*cap = need;
	return 0;
}

static int read_at_least(int fd, char **buf, size_t *cap, size_t *have, size_t need)
{
	if (grow_buffer(buf, cap, need) != 0)
		return -1;
	while (*have < need) {
		ssize_t r = read(fd, *buf + *have, *cap - *have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		*have += (size_t)r;
	}
	return 0;
}

static int write_full(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Splits the request meta into the strings model_request points at. */
static int unpack_request(char *meta, size_t meta_len, uint32_t count, model_request *req,
	model_header *headers)
{
	const char *fields[3 + 2 * MAX_AMZN_HEADERS] = { 0 };
	size_t want = 3 + 2 * (size_t)count, got = 0, i = 0;
	if (count > MAX_AMZN_HEADERS || !meta || meta_len == 0 || meta[meta_len - 1] != '\0')
		return -1;
	while (i < meta_len && got < want) {
		fields[got++] = meta + i;
		i += strlen(meta + i) + 1;
	}
	if (got != want)
		return -1;
	req->content_type = fields[0];
	req->accept = fields[1];
	req->custom_attributes = fields[2];
	for (i = 0; i < count; i++) {
		headers[i].name = fields[3 + 2 * i];
		headers[i].value = fields[4 + 2 * i];
	}
	req->headers = headers;
	req->header_count = count;
	return 0;
}

/* Waits until the loop is done with the piece sent last (its ack, section
 * 6): the slot it is in may then be filled again. */
static void wait_for_ack(model_response *out)
{
	char ack;
	ssize_t r;
	if (!out->awaiting_ack)
		return;
	while ((r = read(out->from_loop, &ack, 1)) < 0 && errno == EINTR)
		;
	if (r != 1)
		_exit(0);                      /* the loop is gone */
	out->awaiting_ack = 0;
}

/* Hands the filled slot to the loop as one piece of the answer. The first
 * frame carries the content type and custom attributes. */
static int send_piece(model_response *out, enum piece_kind kind)
{
	struct frame_reply fr = { FRAME_MAGIC, 0, 0, 0, 0, 0, 0 };
	char meta[sizeof out->type + sizeof out->attributes];
	struct iovec iov[2];
	if (bodiless(out) && kind == PIECE_MORE) {
		out->len = 0;                  /* dropped: nothing to stream */
		return 0;
	}
	if (!out->streaming && kind != PIECE_BROKEN) {
		size_t tl = strlen(out->type), al = strlen(out->attributes);
		memcpy(meta, out->type, tl + 1);
		memcpy(meta + tl + 1, out->attributes, al + 1);
		fr.meta_len = (uint32_t)(tl + al + 2);
	} else if (kind == PIECE_BROKEN) {
		fr.meta_len = (uint32_t)strlen(out->broken_reason) + 1;
		memcpy(meta, out->broken_reason, fr.meta_len);
	}
	fr.status = out->status;
	fr.kind = kind;
	fr.slot = out->slot;
	fr.len = kind == PIECE_BROKEN || bodiless(out) ? 0 : out->len;
	iov[0].iov_base = &fr;
	iov[0].iov_len = sizeof fr;
	iov[1].iov_base = meta;
	iov[1].iov_len = fr.meta_len;
	wait_for_ack(out);
	if (write_full(out->to_loop, iov, 2) != 0)
		_exit(0);
	out->sent += out->len;
	out->len = 0;
	if (kind == PIECE_MORE) {
		out->streaming = out->awaiting_ack = 1;
		out->slot ^= 1;
	}
	return 0;
}

/* The model returned: send the last piece, or, if the answer cannot be
 * what the model meant, a 500 in its place while nothing has gone out, and
 * a broken answer after that. */
static void finish_answer(model_response *out)
{
	char msg[96];
	msg[0] = '\0';
	if (out->status_invalid)
		snprintf(msg, sizeof msg, "the model returned an invalid HTTP status (%d)",
			out->bad_status);
	else if (out->overflow)
		snprintf(msg, sizeof msg, "the model's response is larger than the limit of %zu bytes",
			cfg.max_response);
	if (msg[0] && out->streaming) {
		out->broken = 1;
		snprintf(out->broken_reason, sizeof out->broken_reason, "%s", msg);
	} else if (msg[0]) {
		model_response_error(out, 500, msg);
		out->attributes[0] = '\0';  /* the error replaces the whole answer */
	}
	send_piece(out, out->broken ? PIECE_BROKEN : PIECE_LAST);
}

static void answer_begin(model_response *out, char *region, int to_loop, int from_loop)
{
	memset(out, 0, sizeof *out);
	out->status = 200;
	out->region = region;
	out->to_loop = to_loop;
	out->from_loop = from_loop;
}

/* A worker: read a request, run the model, send the answer, forever. It
 * exits when the loop closes its end of the request pipe (shutdown). The
 * request's body is in the shared region (the loop gives its pages back
 * when the worker stays idle: section 21). */
static void worker_main(int from_loop, int to_loop, char *region)
{
	size_t cap = sizeof(struct frame_request) + WORKER_META_MAX;
	char *buf = malloc(cap), *meta;
	model_header headers[MAX_AMZN_HEADERS];
	if (!buf)
		_exit(4);
	for (;;) {
		struct frame_request fr;
		model_request req;
		model_response out;
		size_t have = 0;              /* the loop sends one frame at a time */
		worker_drop_unloaded(from_loop);     /* (multi-model: section 16b) */
		if (read_at_least(from_loop, &buf, &cap, &have, sizeof fr) != 0)
			_exit(0);
		memcpy(&fr, buf, sizeof fr);
		if (fr.magic != FRAME_MAGIC || fr.meta_len > WORKER_META_MAX || fr.body_len > cfg.max_body)
			_exit(3);
		if (read_at_least(from_loop, &buf, &cap, &have, sizeof fr + fr.meta_len) != 0)
			_exit(0);
		meta = buf + sizeof fr;
		memset(&req, 0, sizeof req);
		if (unpack_request(meta, fr.meta_len, fr.header_count, &req, headers) != 0)
			_exit(3);
		req.body = (const unsigned char *)region;
		req.body_len = (size_t)fr.body_len;
		answer_begin(&out, region, to_loop, from_loop);
		model_invoke(worker_model(&fr), &req, &out);
		finish_answer(&out);
	}
}

/* ======================================================================== */
/* 12. Starting, replacing and stopping workers                             */
/* ======================================================================== */

static int workers_alive(void)
{
	int i, n = 0;
	for (i = 0; i < cfg.workers; i++)
		n += workers[i].pid > 0;
	return n;
}

/* Two pipes join the loop and a worker, one each way, rather than one
 * socketpair: a pipe keeps its readers and writers on separate wait queues,
 * so the loop reading a reply does not also wake the worker asleep in
 * read() (on a socketpair, freeing send space wakes every sleeper on the
 * socket). Both must be numbers select() can watch. */
static int open_pipes(int req[2], int rep[2])
{
	if (pipe(req) != 0)
		return -1;
	if (pipe(rep) != 0) {
		close(req[0]);
		close(req[1]);
		return -1;
	}
	if (req[1] >= FD_SETSIZE || rep[0] >= FD_SETSIZE) {
		close(req[0]);
		close(req[1]);
		close(rep[0]);
		close(rep[1]);
		errno = EMFILE;         /* (what the log line says) */
		return -1;
	}
	return 0;
}

/* The listener, its spare descriptor and the signal pipe: closed by a new
 * worker, and by the loop when it stops. */
static void close_listener_and_signals(void)
{
	if (listen_fd >= 0)
		close(listen_fd);
	if (reserve_fd >= 0)
		close(reserve_fd);
	close(signal_pipe[0]);
	close(signal_pipe[1]);
}

/* In a new worker in slot i: drop every descriptor that belongs to the
 * loop, and the other workers' shared regions. */
static void close_loop_descriptors(int i)
{
	int fd, j;
	for (fd = 0; fd <= max_conn_fd; fd++)
		if (conns[fd])
			close(fd);
	for (j = 0; j < cfg.workers; j++) {
		if (workers[j].pid > 0) {
			close(workers[j].to_worker);
			close(workers[j].from_worker);
		}
		if (j != i && workers[j].region)
			munmap(workers[j].region, region_size());
	}
	for (j = 0; j < LOADS_AT_ONCE; j++)
		if (loaders[j].m)
			close(loaders[j].fd);
	close_listener_and_signals();
}

/* Forks a worker or a loader. stdio is flushed first, or the child would
 * print it again; every signal waits until the child has replaced the
 * loop's handlers, which write to the loop's signal pipe (child_begins; the
 * mask is inherited). The parent's mask is restored; *before keeps it for
 * the child. */
static pid_t fork_signals_held(sigset_t *before)
{
	sigset_t all;
	pid_t pid;
	fflush(stdout);
	fflush(stderr);
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, before);
	pid = fork();
	if (pid != 0)
		sigprocmask(SIG_SETMASK, before, NULL);
	return pid;
}

/* In a new child of the loop (a worker, or a model loader), its signals
 * blocked since before the fork: the loop's handlers go (they write to the
 * loop's signal pipe), and the child dies with the loop. Returns 0, or -1
 * if the loop is gone already. */
static int child_begins(const sigset_t *before)
{
	signal(SIGTERM, SIG_IGN);  /* the loop decides when children stop */
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);   /* what an init passes on: ignored, as by the loop */
	signal(SIGUSR1, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
	signal(SIGALRM, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	sigprocmask(SIG_SETMASK, before, NULL);
#ifdef __linux__
	/* If the loop dies (even by SIGKILL), die too: a worker stuck in a
	 * model would otherwise never read its pipe and see the EOF. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != loop_pid)
		return -1;                 /* the loop died before prctl */
#endif
	return 0;
}

/* Forks a worker into slot i. The child closes every descriptor that
 * belongs to the loop (clients, other workers, the listener) first. */
static int worker_spawn(int i)
{
	struct worker *w = &workers[i];
	int req[2], rep[2];
	sigset_t before;
	pid_t pid;
	if (open_pipes(req, rep) != 0)
		return -1;
	pid = fork_signals_held(&before);
	if (pid < 0) {
		close(req[0]);
		close(req[1]);
		close(rep[0]);
		close(rep[1]);
		return -1;
	}
	if (pid == 0) {
		if (child_begins(&before) != 0)
			_exit(0);
#ifdef __linux__
		worker_mark_as_batch();      /* (section 21) */
#endif
		close(req[1]);
		close(rep[0]);
		close_loop_descriptors(i);
		worker_main(req[0], rep[1], w->region);
	}
	close(req[0]);
	close(rep[1]);
	set_nonblocking(req[1]);
	set_nonblocking(rep[0]);
	w->pid = pid;
	w->to_worker = req[1];
	w->from_worker = rep[0];
	w->conn = NULL;
	w->sent = w->got = 0;
	w->quick = 0;
	return 0;
}

/* The shared region of a worker slot (section 6). The pages are the
 * kernel's to give: none is used until written, and the worker gives back
 * what a large request used (section 21). Mapped once per slot, before the
 * first fork, so every worker ever forked into the slot has it. */
static size_t region_size(void)
{
	return cfg.max_body + 2 * ANSWER_PIECE;
}

static char *answer_slot(char *region, unsigned slot)
{
	return region + cfg.max_body + (slot & 1) * ANSWER_PIECE;
}

static char *map_region(void)
{
#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif
	/* MAP_NORESERVE: the region is an upper bound, not a commitment, so it
	 * counts against no overcommit limit (proc(5), overcommit_memory). */
	void *p = mmap(NULL, region_size(), PROT_READ | PROT_WRITE,
		MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* Forgets a worker that died or was killed; its zombie is reaped on SIGCHLD. */
static void worker_forget(struct worker *w)
{
	close(w->to_worker);
	close(w->from_worker);
	w->to_worker = w->from_worker = -1;
	w->pid = 0;
	w->conn = NULL;
	w->got = 0;
}

/* Makes the coming close a reset (SO_LINGER of 0, socket(7)): what the
 * kernel still holds to send is dropped, and the client sees an error, not
 * an end of stream. */
static void reset_at_close(struct conn *c)
{
	struct linger reset = { 1, 0 };
	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
}

/* An answer that already streams cannot become an error: its connection is
 * closed without the last chunk, which tells an HTTP/1.1 client the answer
 * is incomplete (RFC 9112 7.1); an HTTP/1.0 client, whose body ends at the
 * close, is sent a reset instead. */
static void answer_break(struct conn *c)
{
	c->streaming = 0;
	if (!c->chunked)
		reset_at_close(c);   /* a close would pass for the end of the body */
	conn_close(c);
}

/* A worker failed during a request: the client gets an error (or, if its
 * answer streams, a broken answer), the worker is killed (if still alive)
 * and replaced. */
static void worker_fail(struct worker *w, int status, const char *message)
{
	struct conn *c = w->conn;
	log_line("worker %ld: %s", (long)(w->pid < 0 ? -w->pid : w->pid), message);
	if (w->pid > 0)
		kill(w->pid, SIGKILL);  /* harmless if it is already a zombie */
	worker_forget(w);
	if (c && c->streaming) {
		/* Closed before the slot is used again: a new worker may write
		 * into it while the client is still sent its last piece. */
		answer_break(c);
	} else if (c) {
		/* Queued, not written here: the caller may still be using c, and a
		 * failed write would free it. The loop writes it on its next turn. */
		respond_error(c, status, message);
	}
	worker_spawn((int)(w - workers));
	dispatch_queued();
}

static int start_workers(void)
{
	int i;
	for (i = 0; i < cfg.workers; i++) {
		workers[i].to_worker = workers[i].from_worker = -1;
		workers[i].frame = malloc(sizeof(struct frame_request) + WORKER_META_MAX);
		workers[i].region = map_region();
		if (!workers[i].frame || !workers[i].region || worker_spawn(i) != 0)
			return -1;
	}
	return 0;
}

/* Replaces workers that died. Descriptors are kept for them (see
 * client_limit_for_workers), so a failure here is fork's, or the system's
 * file table's: logged once a second at most, and retried on every turn of
 * the loop (at least once a second). */
static void respawn_missing_workers(void)
{
	int i;
	for (i = 0; i < cfg.workers; i++)
		if (workers[i].pid <= 0 && worker_spawn(i) != 0) {
			if (now_ms - respawn_failed_logged_ms >= 1000) {
				log_line("cannot start a model worker (%d of %d running): %s; retrying",
					workers_alive(), cfg.workers, strerror(errno));
				respawn_failed_logged_ms = now_ms;
			}
			break;
		}
	dispatch_queued();
}

/* Stops the workers: closing their request pipes makes them exit; SIGKILL any
 * that are still running (a model stuck in a loop) after a short wait. */
static void stop_workers(void)
{
	int i, tries;
	for (i = 0; i < cfg.workers; i++)
		if (workers[i].pid > 0)
			close(workers[i].to_worker);
	for (tries = 0; tries < 100; tries++) {
		int left = 0;
		for (i = 0; i < cfg.workers; i++) {
			if (workers[i].pid > 0 && waitpid(workers[i].pid, NULL, WNOHANG) == workers[i].pid)
				workers[i].pid = 0;
			left += workers[i].pid > 0;
		}
		if (!left)
			break;
		nanosleep(&(struct timespec){ 0, 10L * 1000 * 1000 }, NULL);
	}
	for (i = 0; i < cfg.workers; i++) {
		if (workers[i].pid > 0) {
			kill(workers[i].pid, SIGKILL);
			waitpid(workers[i].pid, NULL, 0);
			workers[i].pid = 0;
		}
		free(workers[i].frame);
		if (workers[i].region)
			munmap(workers[i].region, region_size());
	}
}

/* ======================================================================== */
/* 13. The request queue: complete requests waiting for an idle worker,     */
/*     oldest first (bounded by --queue; past it, 503 with Retry-After)     */
/* ======================================================================== */

static void queue_push(struct conn *c)
{
	c->next_queued = NULL;
	if (queue.tail)
		queue.tail->next_queued = c;
	else
		queue.head = c;
	queue.tail = c;
	queue.len++;
}

/* Back to the front: a request that a dead worker never received. */
static void queue_push_front(struct conn *c)
{
	c->next_queued = queue.head;
	queue.head = c;
	if (!queue.tail)
		queue.tail = c;
	queue.len++;
}

/* The oldest request, taken off the queue; NULL when it is empty. */
static struct conn *queue_pop(void)
{
	struct conn *c = queue.head;
	if (!c)
		return NULL;
	queue.head = c->next_queued;
	if (!queue.head)
		queue.tail = NULL;
	queue.len--;
	c->next_queued = NULL;        /* the connection may be queued again later */
	return c;
}

/* Takes c off the queue; returns 0 if it was not on it. */
static int queue_remove(struct conn *c)
{
	struct conn *prev = NULL, *q;
	for (q = queue.head; q && q != c; q = q->next_queued)
		prev = q;
	if (!q)
		return 0;
	if (prev)
		prev->next_queued = q->next_queued;
	else
		queue.head = q->next_queued;
	if (queue.tail == q)
		queue.tail = prev;
	q->next_queued = NULL;
	queue.len--;
	return 1;
}

/* ======================================================================== */
/* 14. Hand-over and read-back: a request framed to a worker, its reply     */
/*     turned into the HTTP response                                        */
/* ======================================================================== */

static struct worker *idle_worker(void)
{
	int i;
	for (i = 0; i < cfg.workers; i++)
		if (workers[i].pid > 0 && !workers[i].conn)
			return &workers[i];
	return NULL;
}

static void put_meta(char *meta, size_t *n, struct slice s)
{
	if (s.n)
		memcpy(meta + *n, s.p, s.n);
	*n += s.n;
	meta[(*n)++] = '\0';
}

/* The Accept lines as the one list they stand for, "a, b" (RFC 9110 5.3),
 * leaving out empty ones as a list's empty elements are (5.6.1). With no
 * Accept, InvokeEndpointWithResponseStream's X-Amzn-SageMaker-Accept stands
 * for it (REQ-67). */
static void put_accept(char *meta, size_t *n, const struct http_request *r)
{
	size_t i, start = *n;
	for (i = 0; i < r->accept_count; i++) {
		if (r->accept[i].n == 0)
			continue;
		if (*n > start) {
			memcpy(meta + *n, ", ", 2);
			*n += 2;
		}
		memcpy(meta + *n, r->accept[i].p, r->accept[i].n);
		*n += r->accept[i].n;
	}
	for (i = 0; i < r->amzn_count && *n == start; i++)
		if (slice_eq_nocase(r->amzn_name[i], "x-amzn-sagemaker-accept")) {
			memcpy(meta + *n, r->amzn_value[i].p, r->amzn_value[i].n);
			*n += r->amzn_value[i].n;
		}
	meta[(*n)++] = '\0';
}

/* Frames the request for the worker; its body goes into their shared
 * region, one copy (section 6). */
static void worker_start(struct worker *w, struct conn *c)
{
	struct frame_request fr = { FRAME_MAGIC, 0, 0, 0, 0, 0, 0 };
	struct http_request *r = &c->req;
	size_t n = sizeof fr, i;
	put_meta(w->frame, &n, r->content_type);
	put_accept(w->frame, &n, r);
	put_meta(w->frame, &n, r->custom_attributes);
	for (i = 0; i < r->amzn_count; i++) {
		put_meta(w->frame, &n, r->amzn_name[i]);
		put_meta(w->frame, &n, r->amzn_value[i]);
	}
	fr.meta_len = (uint32_t)(n - sizeof fr);
	fr.header_count = (uint32_t)r->amzn_count;
	fr.body_len = c->body_len;
	if (c->mm) {                     /* multi-model: which model, where (section 16b) */
		fr.handle = c->mm->handle;
		fr.extent = c->mm->extent;
		fr.generation = c->mm->generation;
	}
	memcpy(w->frame, &fr, sizeof fr);
	if (c->body_len > 0)
		memcpy(w->region, c->in + c->body_start, c->body_len);
	w->frame_len = n;
	w->sent = w->got = 0;
	w->region_used = c->body_len;
	w->region_release_at = 0;
	w->conn = c;
	w->deadline = seconds_from_now(cfg.timeout_s);
	w->handed_us = monotonic_us();
}

/* Sends more of the request frame. */
static void worker_send(struct worker *w)
{
	struct conn *c = w->conn;
	while (w->sent < w->frame_len) {
		ssize_t s = write(w->to_worker, w->frame + w->sent, w->frame_len - w->sent);
		if (s < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			/* Nothing was delivered: the worker died while idle, before the
			 * loop saw it, and the model never ran on the request. It goes
			 * back to the front of the queue, once. */
			if (w->sent == 0 && !c->resent) {
				c->resent = 1;
				w->conn = NULL;
				queue_push_front(c);
				c->deadline = seconds_from_now(cfg.timeout_s);
			}
			worker_fail(w, 500, "the model worker stopped while receiving the request");
			return;
		}
		w->sent += (size_t)s;
	}
}

static int sending(const struct worker *w)
{
	return w->conn && w->sent < w->frame_len;
}

static int valid_reply_text(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

/* The meta of an answer's first frame: two printable strings, the content
 * type and the custom attributes, filling it exactly. */
static int valid_answer_meta(const char *meta, size_t len)
{
	size_t tl = strnlen(meta, len);
	return tl < len && valid_reply_text(meta) && tl + 1 < len &&
	       strnlen(meta + tl + 1, len - tl - 1) == len - tl - 2 && valid_reply_text(meta + tl + 1);
}

/* The answer's first piece: its status and headers make the response head. */
static int answer_head(struct worker *w, const struct frame_reply *fr, const char *meta)
{
	struct conn *c = w->conn;
	const char *attrs;
	char extra[1100];
	if (!valid_answer_meta(meta, fr->meta_len) || fr->status < 200 || fr->status > 599) {
		worker_fail(w, 500, "the model worker sent a malformed reply");
		return -1;
	}
	attrs = meta + strlen(meta) + 1;
	extra[0] = '\0';
	if (*attrs)
		snprintf(extra, sizeof extra, "X-Amzn-SageMaker-Custom-Attributes: %s\r\n", attrs);
	respond_full(c, fr->status, *meta ? meta : NULL, NULL,
		fr->kind == PIECE_LAST ? (size_t)fr->len : LENGTH_UNKNOWN, extra);
	return 0;
}

/* Points the connection's output at a piece in the worker's answer slot,
 * framed as a chunk when the answer is chunked (an empty piece is no chunk:
 * a chunk of size 0 ends the body). */
static void piece_output(struct conn *c, const char *data, size_t len, int last)
{
	if (c->chunked && len > 0) {
		char line[20];
		int n = snprintf(line, sizeof line, "%zx\r\n", len);
		head_append(c, line, (size_t)n);
	}
	c->body = data;
	c->body_out_len = len;
	c->tail = !c->chunked ? "" : len > 0 && last ? "\r\n0\r\n\r\n" : len > 0 ? "\r\n" :
		last ? "0\r\n\r\n" : "";
	c->tail_len = strlen(c->tail);
	c->state = CONN_WRITE;
	c->deadline = seconds_from_now(cfg.body_timeout_s);
	c->written_since_deadline = 0;
}

/* Appends bytes to the output kept in c->owned (charged to
 * --max-buffered-mb, which may pass it: see piece_arrived). */
static int keep_output(struct conn *c, const char *data, size_t len)
{
	if (len == 0)
		return 0;
	if (!c->owned || c->owned_len + len > c->owned_cap) {  /* doubling: few reallocs */
		size_t cap = c->owned_cap ? c->owned_cap : IN_BUF_KEEP;
		char *p;
		while (cap < c->owned_len + len)
			cap *= 2;
		if (!(p = realloc(c->owned, cap)))
			return -1;
		c->owned = p;
		c->owned_cap = cap;
	}
	memcpy(c->owned + c->owned_len, data, len);
	c->owned_len += len;
	buffered_bytes += len;
	c->body = c->owned;               /* the output is the kept bytes alone */
	c->body_out_len = c->owned_len;
	return 0;
}

/* Moves what is left to write of the output (head, body, tail) into
 * c->owned, so that nothing refers to the worker's answer slot any more. */
static int keep_unwritten_output(struct conn *c)
{
	char head[sizeof c->head];
	const char *part[3];
	size_t len[3], at = 0, done;
	int i;
	if (c->owned)                          /* the output is c->owned already */
		return 0;
	memcpy(head, c->head, c->head_len);
	part[0] = head, part[1] = c->body, part[2] = c->tail;
	len[0] = c->head_len, len[1] = c->body_out_len, len[2] = c->tail_len;
	c->head_len = c->tail_len = c->body_out_len = 0;
	for (i = 0; i < 3; i++) {
		done = c->out_off > at ? c->out_off - at : 0;
		if (done < len[i] && keep_output(c, part[i] + done, len[i] - done) != 0)
			return -1;
		at += len[i];
	}
	c->out_off = 0;
	return 0;
}

/* A piece arrives while the client still takes earlier ones: it is kept,
 * framed as it will go out. */
static int keep_piece(struct conn *c, const char *data, size_t len, int last)
{
	char line[20];
	int n = snprintf(line, sizeof line, "%zx\r\n", len);
	if (!c->chunked)
		return keep_output(c, data, len);
	if (len > 0 && (keep_output(c, line, (size_t)n) != 0 || keep_output(c, data, len) != 0 ||
	                keep_output(c, "\r\n", 2) != 0))
		return -1;
	return last ? keep_output(c, "0\r\n\r\n", 5) : 0;
}

/* Sends the worker the ack for its last piece (section 6). A failed ack
 * means the worker is dead, which its pipe's end of file tells the loop. */
static void send_ack(struct worker *w, struct conn *c)
{
	c->ack_owed = 0;
	if (write(w->to_worker, "", 1) != 1)
		log_line("worker %ld: the answer's ack could not be sent", (long)w->pid);
}

/* Hands a piece to the client: written at once if it will take it, and what
 * it does not take is kept, so the worker's slot is free again (the rest
 * goes out as the client reads). Between pieces, output still to go is
 * always kept output (c->owned). Returns 0, -1 if the connection was
 * closed, -2 if there was no memory to keep the piece. */
static int piece_to_client(struct conn *c, const char *data, size_t len, int last)
{
	if (c->owned)
		return keep_piece(c, data, len, last) == 0 ? 0 : -2;
	piece_output(c, data, len, last);
	if (conn_write(c) != 0)
		return -1;
	/* Only this answer's output is kept. Once it is all written, what may
	 * be pending belongs to a pipelined request (an interim 100, an answer
	 * the loop made), which refers to no slot: kept, a 100 went out again
	 * and again. */
	if (c->state == CONN_WRITE && c->body == data && has_pending_output(c) &&
	    keep_unwritten_output(c) != 0)
		return -2;
	return 0;
}

/* Whether the worker of a client slow to take its answer may go on with
 * the next piece now, the loop keeping what the client has not taken, or
 * must wait for the client (its ack waits). Kept bytes are charged to
 * --max-buffered-mb, which is never passed for this. Within it, a worker
 * is worth the memory while requests wait for one; otherwise the loop keeps
 * at most ANSWER_KEEP_MAX of the answer, and memory stays flat however
 * large the answer. */
static int may_keep_more(const struct conn *c)
{
	return buffered_bytes <= cfg.max_buffered && (queue.head || c->owned_len <= ANSWER_KEEP_MAX);
}

/* A request was queued: workers held back by slow clients may go on, if
 * the budget allows, to be free for it sooner. */
static void release_held_workers(void)
{
	int i;
	for (i = 0; i < cfg.workers; i++) {
		struct worker *w = &workers[i];
		if (w->pid > 0 && w->conn && w->conn->ack_owed && may_keep_more(w->conn))
			send_ack(w, w->conn);
	}
}

/* One frame of the answer has arrived (section 6). */
static void piece_arrived(struct worker *w, const struct frame_reply *fr, const char *meta)
{
	struct conn *c = w->conn;
	int last = fr->kind == PIECE_LAST;
	if (fr->kind == PIECE_BROKEN) {   /* (only once it streams: reply_complete) */
		log_line("worker %ld: the answer broke after it began: %.*s", (long)w->pid,
			(int)strnlen(meta, fr->meta_len), meta);
		w->conn = NULL;               /* the worker is fine: it goes on */
		answer_break(c);
		dispatch_queued();
		return;
	}
	w->region_used += (size_t)fr->len;
	if (!c->streaming && answer_head(w, fr, meta) != 0)
		return;
	if (!c->streaming && !last)       /* it streams from here, with its own deadline */
		w->deadline = w->handed_us / 1000 + (int64_t)cfg.stream_timeout_s * 1000;
	c->streaming = !last;
	switch (piece_to_client(c, answer_slot(w->region, fr->slot), (size_t)fr->len, last)) {
	case -1:                           /* closed: a streaming answer's worker with it */
		if (last) {
			w->conn = NULL;
			dispatch_queued();
		}
		return;
	case -2:
		c->chunked = 0;                /* a reset tells the client */
		if (!last) {
			worker_fail(w, 500, "out of memory for an answer a client is slow to take");
			return;
		}
		log_line("out of memory for an answer a client is slow to take: connection closed");
		w->conn = NULL;
		answer_break(c);
		dispatch_queued();
		return;
	}
	if (last) {
		w->conn = NULL;
		note_answer_time(w);          /* (section 21) */
		dispatch_queued();
	} else if (!has_pending_output(c) || may_keep_more(c))
		send_ack(w, c);
	else
		c->ack_owed = 1;
}

/* The client has taken all the output of a streaming answer: an ack held
 * back goes out, and the kept bytes are given back. */
static void piece_written(struct conn *c)
{
	struct worker *w = worker_running(c);
	c->head_len = c->out_off = c->body_out_len = c->tail_len = 0;
	drop_owned_answer(c);
	c->deadline = 0;                   /* the worker's deadline rules */
	if (w && c->ack_owed)
		send_ack(w, c);
}

/* Checks a reply frame's header: whether the whole frame is here (1), not
 * yet (0), or it is malformed (-1, the worker failed). */
static int reply_complete(struct worker *w)
{
	struct frame_reply fr;
	if (w->got < sizeof fr)
		return 0;
	memcpy(&fr, w->reply, sizeof fr);
	if (fr.magic != FRAME_MAGIC || fr.meta_len > REPLY_META_MAX || fr.kind > PIECE_BROKEN ||
	    fr.slot > 1 || fr.len > ANSWER_PIECE ||
	    (fr.kind == PIECE_BROKEN && (fr.meta_len == 0 || !w->conn->streaming))) {
		worker_fail(w, 500, "the model worker sent a malformed reply");
		return -1;
	}
	if (w->got > sizeof fr + fr.meta_len) {   /* a second frame: not the protocol */
		worker_fail(w, 500, "the model worker sent a malformed reply");
		return -1;
	}
	return w->got == sizeof fr + fr.meta_len;
}

/* Reads a reply frame from a worker; a whole one is acted on. */
static void worker_receive(struct worker *w)
{
	struct frame_reply fr;
	ssize_t r;
	if (!w->conn) {  /* an idle worker's pipe: only its death makes this readable */
		char byte;
		/* unless the mark is stale: a worker replaced in this pass may have
		 * been given the dead one's descriptor numbers */
		if (read(w->from_worker, &byte, 1) < 0 && errno == EAGAIN)
			return;
		worker_fail(w, 500, "the model worker exited while idle");
		return;
	}
	for (;;) {
		r = read(w->from_worker, w->reply + w->got, sizeof w->reply - w->got);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (r <= 0) {
			worker_fail(w, 500, "the model worker crashed during the request");
			return;
		}
		w->got += (size_t)r;
		switch (reply_complete(w)) {
		case -1:
			return;
		case 0:
			continue;
		}
		memcpy(&fr, w->reply, sizeof fr);
		w->got = 0;
		piece_arrived(w, &fr, w->reply + sizeof fr);
		return;                       /* the worker waits for the loop now */
	}
}

/* Hands queued requests to idle workers, oldest first. */
static void dispatch_queued(void)
{
	struct worker *w;
	while (queue.head && (w = idle_worker()) != NULL) {
		struct conn *c = queue_pop();
		if (c->probed && client_reset(c)) {   /* (others: once a second) */
			client_left(c, "closed");
			continue;
		}
		c->deadline = 0;             /* the worker's deadline rules from here */
		worker_start(w, c);
		worker_send(w);
	}
}

/* ======================================================================== */
/* 15. Clients that leave while their request is queued or running          */
/* ======================================================================== */

/* The worker running c's request, if one is. */
static struct worker *worker_running(const struct conn *c)
{
	int i;
	for (i = 0; i < cfg.workers; i++)
		if (workers[i].pid > 0 && workers[i].conn == c)
			return &workers[i];
	return NULL;
}

/* A connection closes while its request waits for a worker or runs in one:
 * take it off the queue, or stop that worker, whose answer has nowhere to go
 * and which may still be reading the body from the buffer about to be freed.
 * The loop forks a replacement on its next turn (unless it is draining). */
static void model_abandon(struct conn *c)
{
	struct worker *w;
	if (c->awaits) {                 /* a load or unload goes on without its client */
		c->awaits->waiter = NULL;
		c->awaits = NULL;
		return;
	}
	if (queue_remove(c))
		return;
	if ((w = worker_running(c)) != NULL) {
		if (!draining)
			log_line("worker %ld: client gone, stopping its request", (long)w->pid);
		kill(w->pid, SIGKILL);
		worker_forget(w);
	}
}

/* Whether the connection of a request with the model was reset: by the
 * client, or in answer to the probe (see check_client). Once bytes have
 * come (the end of the stream, or a pipelined request not yet read), recv
 * would say that again, so the socket's pending error is asked for. */
static int client_reset(struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof err;
	return getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0;
}

static void client_left(struct conn *c, const char *how)
{
	log_line("client %s the connection before its answer: request %s", how,
		 worker_running(c) ? "stopped" : "taken off the queue");
	conn_close(c);
}

/* A CRLF right after a body, which some old clients send after a POST, is
 * not the client's next request (RFC 9112 2.2 says to ignore it), and must
 * not end the checks below: reads it from the socket, once a check, and says
 * whether it did. ahead holds the first r bytes of the socket (peeked), and
 * nothing past the request waits in c->in, so they follow the body. */
static int skip_stray_crlf(struct conn *c, const char *ahead, ssize_t r)
{
	char sink[2];
	return r == 2 && ahead[0] == '\r' && ahead[1] == '\n' && recv(c->fd, sink, 2, 0) == 2;
}

/* Has the client of a request that is with the model (queued, or running in
 * a worker) left? Asked once a second (check_waiting_clients), not by
 * select(): watching every such connection made each select() call dearer,
 * and one-record invocations 20% slower. Once anything has come, only a
 * reset to the probe below is looked for until the answer is written. What
 * came:
 *  - bytes: the client's next request, read once this one is answered (but
 *    a stray CRLF is skipped, and what follows it looked at);
 *  - a reset: the client is gone and nobody waits for the answer. The request
 *    leaves the queue, or its worker is stopped and replaced, rather than
 *    spend a worker on it (in an overload, clients time out and close);
 *  - the end of the stream: the client closed the connection, or only its
 *    sending half (RFC 9112 9.6 lets it, and it still wants the answer).
 *    Which one shows only when something is sent: a closed socket answers
 *    with a reset. So a queued HTTP/1.1 request is sent an interim
 *    "100 Continue", which every HTTP/1.1 client must accept (RFC 9110
 *    15.2); the next check, or dispatch_queued before handing the request
 *    to a worker, looks for the reset. A running request is answered
 *    either way. */
static void check_client(struct conn *c)
{
	char ahead[2];
	ssize_t r;
	if (client_reset(c)) {          /* (to the probe: the client had closed) */
		client_left(c, c->probed ? "closed" : "reset");
		return;
	}
	if (c->input_seen)
		return;
	r = recv(c->fd, ahead, sizeof ahead, MSG_PEEK);
	if (r > 0 && c->in_len == c->req_end && skip_stray_crlf(c, ahead, r))
		r = recv(c->fd, ahead, sizeof ahead, MSG_PEEK);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (r < 0) {
		client_left(c, "reset");
		return;
	}
	c->input_seen = 1;
	if (r == 0 && c->req.minor >= 1 && !worker_running(c) && !has_pending_output(c)) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		memcpy(c->head, cont, sizeof cont - 1);
		c->head_len = sizeof cont - 1;
		c->out_off = 0;
		c->probed = 1;
		if (conn_write(c) != 0)      /* (which closed it) */
			log_line("client closed the connection before its answer: "
				 "request taken off the queue");
	}
}

/* check_client for every connection whose request is with the model, once
 * a second. */
static void check_waiting_clients(void)
{
	int fd;
	if (now_ms < next_client_check_ms)
		return;
	next_client_check_ms = now_ms + 1000;
	for (fd = 0; fd <= max_conn_fd; fd++)
		if (conns[fd] && conns[fd]->state == CONN_IN_MODEL)
			check_client(conns[fd]);
}

/* ======================================================================== */
/* 16. Routes                                                               */
/* ======================================================================== */

/* Decides what a request is for, from its head alone, so errors can be
 * sent before a body is read. Sets *status and *allow for ROUTE_ERROR. */
static enum route route_of(const struct http_request *r, int *status, const char **allow,
	const char **message)
{
	enum method m = r->method;
	*allow = NULL;
	if (cfg.multi_model && (slice_eq(r->path, "/models") || slice_has_prefix_nocase(r->path, "/models/")))
		return mm_route_of(r, status, allow, message);
	if (cfg.multi_model && slice_eq(r->path, "/invocations")) {
		*status = 404;
		*message = "this server hosts several models (multi-model mode): "
		           "invoke one with POST /models/{name}/invoke";
		return ROUTE_ERROR;
	}
	if (slice_eq(r->path, "/ping")) {
		if (m == M_GET || m == M_HEAD || m == M_POST)
			return ROUTE_PING;
		*allow = "Allow: GET, HEAD, POST\r\n";  /* a 405 names them (RFC 9110 15.5.6) */
	} else if (slice_eq(r->path, "/invocations")) {
		if (m == M_POST)
			return ROUTE_INVOCATIONS;
		*allow = "Allow: POST\r\n";            /* (the same) */
	} else if (slice_eq(r->path, "/execution-parameters")) {
		if (m == M_GET || m == M_HEAD)
			return ROUTE_EXEC_PARAMS;
		*allow = "Allow: GET, HEAD\r\n";
	} else {
		*status = 404;
		*message = cfg.multi_model ? "no such path; use /ping or /models"
		                           : "no such path; use /ping or /invocations";
		return ROUTE_ERROR;
	}
	*status = 405;
	*message = "method not allowed on this path";
	return ROUTE_ERROR;
}

/* Ready is a 200 with an empty body (REQ-25), to GET and POST alike (REQ-29). */
static void serve_ping(struct conn *c)
{
	if ((the_model || cfg.multi_model) && workers_alive() > 0)
		respond_full(c, 200, NULL, NULL, 0, NULL);
	else
		respond_error(c, 503, "no model worker is running");
}

/* Batch transform asks this before it starts (REQ-46). SageMaker refuses a job whose
 * MaxPayloadInMB is over 100, or whose MaxConcurrentTransforms times
 * MaxPayloadInMB is (CreateTransformJob), so both are capped: on a 32-CPU
 * instance with the 6 MB default, 16 requests at a time, not 32. */
static void serve_execution_parameters(struct conn *c)
{
	size_t mb = cfg.max_body / MIB, most = 100;
	int n, concurrent;
	mb = mb < 1 ? 1 : mb > most ? most : mb;
	concurrent = (size_t)cfg.workers * mb > most ? (int)(most / mb) : cfg.workers;
	n = snprintf(c->small_body, sizeof c->small_body,
		"{\"MaxConcurrentTransforms\": %d, \"BatchStrategy\": \"MULTI_RECORD\", "
		"\"MaxPayloadInMB\": %zu}\n", concurrent, mb);
	respond_full(c, 200, "application/json", c->small_body, (size_t)n, NULL);
}

static void serve_invocation(struct conn *c)
{
	struct worker *w;
	c->state = CONN_IN_MODEL;
	c->deadline = 0;
	if (!queue.head && buffered_bytes <= cfg.max_buffered && (w = idle_worker()) != NULL) {
		worker_start(w, c);
		worker_send(w);
		return;
	}
	if (queue.len >= cfg.queue_max) {
		static const char retry[] = "Retry-After: 1\r\n";
		log_line("503 queue full (%d requests waiting)", queue.len);
		respond_error_with(c, 503, "server busy: every model worker is busy and the queue is full",
			retry);
		return;
	}
	if (buffered_bytes > cfg.max_buffered) {
		/* Answers kept for clients slow to read them passed the budget
		 * (piece_arrived): no new work until they are taken. */
		log_line("503 answers waiting for slow clients fill the %zu-byte budget", cfg.max_buffered);
		respond_error_with(c, 503, "server busy: too many answers waiting to be read",
			"Retry-After: 1\r\n");
		return;
	}
	queue_push(c);
	/* A request may wait for a worker no longer than it may run in one. */
	c->deadline = seconds_from_now(cfg.timeout_s);
	release_held_workers();
}

/* The request (head and body) is complete. */
static void request_complete(struct conn *c)
{
	switch (c->route) {
	case ROUTE_PING:
		serve_ping(c);
		break;
	case ROUTE_EXEC_PARAMS:
		serve_execution_parameters(c);
		break;
	case ROUTE_INVOCATIONS:
		serve_invocation(c);
		break;
	case ROUTE_MODEL_LIST: case ROUTE_MODEL_LOAD: case ROUTE_MODEL_DESCRIBE:
	case ROUTE_MODEL_UNLOAD: case ROUTE_MODEL_INVOKE:
		mm_request_complete(c);
		break;
	case ROUTE_ERROR:
		break;
	}
}

/* ======================================================================== */
/* 16b. Multi-model endpoints (SAGEMAKER_MULTI_MODEL; REQ-57 to REQ-65;     */
/*      docs/mme.md says why it is built this way)                          */
/*                                                                          */
/* The loop never runs model code, loads included. At start, one memfd     */
/* ("the model file") and one range of addresses the same size are made    */
/* before any fork, so the range is at one address in every process. Each  */
/* model gets an extent of it (--max-model-mb). A load is a process forked  */
/* from the loop: it maps the model's extent shared over its place in the   */
/* range and calls model_load, whose allocations land in the extent (the    */
/* plug-in is compiled with malloc and friends renamed to the functions     */
/* below: see the Makefile). It reports the handle and the bytes used over  */
/* a pipe, and exits. A worker maps an extent private (copy-on-write: its   */
/* writes to the model stay its own) the first time it serves that load of  */
/* it. DELETE waits for the model's invocations, then punches the extent's  */
/* pages out of the file: the memory goes back at once.                     */
/* ======================================================================== */

/* ---- The allocator the plug-in is compiled against ----
 * In a loader, a bump allocator over the extent: each block has a header
 * with its size; freeing the last block gives it back, realloc of the last
 * block grows it in place, other frees are lost (a model is built, not
 * churned). Everywhere else (workers, single-model mode), libc's, and a
 * pointer into an extent is the model's: a worker's free of one does
 * nothing, and its realloc copies into libc's memory. */
void *smserve_plugin_malloc(size_t n);
void *smserve_plugin_calloc(size_t count, size_t size);
void *smserve_plugin_realloc(void *p, size_t n);
void smserve_plugin_free(void *p);
char *smserve_plugin_strdup(const char *s);
char *smserve_plugin_strndup(const char *s, size_t n);

#define ARENA_ALIGN 16            /* max_align_t's alignment on x86-64 and arm64 */
#define ARENA_NO_LAST SIZE_MAX

static struct {
	char *base;
	size_t cap;                   /* what it may hold: the extent, or the budget left */
	size_t used, high;            /* bytes in use; the most ever in use */
	size_t last;                  /* the header offset of the last block, or ARENA_NO_LAST */
	int active;                   /* in a loader, during model_load */
	int full;                     /* an allocation did not fit */
} arena;

static int in_model_file(const void *p)
{
	uintptr_t a = (uintptr_t)p, b = (uintptr_t)mm_base;
	return mm_base && a >= b && a - b < mm_span;
}

static size_t arena_block_size(const void *p)
{
	size_t n;
	memcpy(&n, (const char *)p - ARENA_ALIGN, sizeof n);
	return n;
}

static size_t arena_span(size_t n)
{
	return ARENA_ALIGN + ((n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1));
}

static void *arena_alloc(size_t n)
{
	char *p;
	if (n > arena.cap || arena_span(n) > arena.cap - arena.used) {
		arena.full = 1;
		errno = ENOMEM;
		return NULL;
	}
	p = arena.base + arena.used;
	memcpy(p, &n, sizeof n);
	arena.last = arena.used;
	arena.used += arena_span(n);
	if (arena.used > arena.high)
		arena.high = arena.used;
	return p + ARENA_ALIGN;
}

static int arena_is_last(const void *p)
{
	return arena.last != ARENA_NO_LAST && (const char *)p == arena.base + arena.last + ARENA_ALIGN;
}

void *smserve_plugin_malloc(size_t n)
{
	return arena.active ? arena_alloc(n) : malloc(n);
}

void *smserve_plugin_calloc(size_t count, size_t size)
{
	void *p;
	if (!arena.active)
		return calloc(count, size);
	if (size && count > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	if ((p = arena_alloc(count * size)) != NULL)
		memset(p, 0, count * size);   /* (a block given back and taken again is not) */
	return p;
}

void smserve_plugin_free(void *p)
{
	if (!in_model_file(p)) {
		free(p);
		return;
	}
	if (arena.active && arena_is_last(p)) {
		arena.used = arena.last;
		arena.last = ARENA_NO_LAST;
	}
}

void *smserve_plugin_realloc(void *p, size_t n)
{
	size_t old;
	void *q;
	if (!p)
		return smserve_plugin_malloc(n);
	if (!in_model_file(p))
		return realloc(p, n);
	old = arena_block_size(p);
	if (arena.active && arena_is_last(p) && n <= arena.cap &&
	    arena_span(n) <= arena.cap - arena.last) {
		arena.used = arena.last + arena_span(n);
		if (arena.used > arena.high)
			arena.high = arena.used;
		memcpy((char *)p - ARENA_ALIGN, &n, sizeof n);
		return p;
	}
	q = arena.active ? arena_alloc(n) : malloc(n);
	if (q)
		memcpy(q, p, old < n ? old : n);
	return q;
}

char *smserve_plugin_strndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = smserve_plugin_malloc(len + 1);
	if (p) {
		memcpy(p, s, len);
		p[len] = '\0';
	}
	return p;
}

char *smserve_plugin_strdup(const char *s)
{
	return smserve_plugin_strndup(s, SIZE_MAX);
}

/* ---- The model file ---- */

#ifdef __linux__
#ifndef _GNU_SOURCE
/* memfd_create(2), fallocate(2): <sys/mman.h> and <fcntl.h> declare them
 * only with _GNU_SOURCE. */
int memfd_create(const char *name, unsigned int flags);
int fallocate(int fd, int mode, off_t offset, off_t len);
#endif
#define PUNCH_HOLE_KEEP_SIZE (0x01 | 0x02)   /* FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE */
#endif

static off_t extent_offset(uint32_t extent)
{
	return (off_t)extent * (off_t)cfg.max_model_bytes;
}

static char *extent_address(uint32_t extent)
{
	return mm_base + (size_t)extent * cfg.max_model_bytes;
}

/* Gives an extent's pages back to the system (the file keeps its size). */
START_ONLY static void punch_extent(uint32_t extent, size_t from)
{
#ifdef __linux__
	from = (from + 4095) & ~(size_t)4095;
	if (from < cfg.max_model_bytes &&
	    fallocate(mm_fd, PUNCH_HOLE_KEEP_SIZE, extent_offset(extent) + (off_t)from,
		      (off_t)(cfg.max_model_bytes - from)) != 0)
		log_line("cannot give a model's memory back (fallocate): %s", strerror(errno));
#else
	(void)extent;
	(void)from;
#endif
}

/* Maps an extent of the model file at its place in the range. */
static int map_extent(uint32_t extent, int flags)
{
	void *p = mmap(extent_address(extent), cfg.max_model_bytes, PROT_READ | PROT_WRITE,
		flags | MAP_FIXED, mm_fd, extent_offset(extent));
	return p == MAP_FAILED ? -1 : 0;
}

/* In a worker: which load of each extent is mapped here (0: none), and the
 * extents mapped, to look over when models are unloaded. */
static uint64_t *worker_mapped;
static uint32_t *worker_extents;
static size_t worker_extent_count;
static uint64_t worker_unloads_seen;

/* In a worker: the model a request is for, its extent mapped copy-on-write
 * the first time this worker serves that load of it. */
static model *worker_model(const struct frame_request *fr)
{
	if (!fr->handle)
		return the_model;
	if (!mm_base || fr->extent >= (uint32_t)cfg.max_models)
		_exit(3);
	if (!worker_mapped && (!(worker_mapped = calloc((size_t)cfg.max_models, sizeof *worker_mapped)) ||
	                       !(worker_extents = malloc((size_t)cfg.max_models * sizeof *worker_extents))))
		_exit(4);
	if (worker_mapped[fr->extent] != fr->generation) {
		if (map_extent(fr->extent, MAP_PRIVATE) != 0)
			_exit(4);
		if (!worker_mapped[fr->extent])
			worker_extents[worker_extent_count++] = fr->extent;
		worker_mapped[fr->extent] = fr->generation;
	}
	return (model *)(uintptr_t)fr->handle;
}

/* In a worker between requests: the pages it copied (wrote) of a model
 * since unloaded are its own, not the file's, so the unload's hole punch
 * cannot take them: the worker drops them by mapping bare addresses over
 * the extent. An idle worker holding models looks once a second. */
static void worker_drop_unloaded(int from_loop)
{
	if (!mm_live || !worker_extent_count)
		return;
	do {
		size_t i = 0;
		if (mm_live[0] == worker_unloads_seen)
			continue;
		worker_unloads_seen = mm_live[0];
		while (i < worker_extent_count) {
			uint32_t e = worker_extents[i];
			if (mm_live[1 + e] == worker_mapped[e]) {
				i++;
				continue;
			}
			(void)mmap(extent_address(e), cfg.max_model_bytes, PROT_NONE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
			worker_mapped[e] = 0;
			worker_extents[i] = worker_extents[--worker_extent_count];
		}
	} while (worker_extent_count && !request_within(from_loop, 1000));
}

/* ---- The name table ---- */

static size_t name_hash(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603u;     /* FNV-1a */
	while (n--)
		h = (h ^ (unsigned char)*p++) * 1099511628211u;
	return (size_t)h;
}

static struct mm_model **mm_slot_of(const char *name, size_t len)
{
	struct mm_model **at = &mm_buckets[name_hash(name, len) & mm_bucket_mask].m;
	while (*at && !((*at)->name_len == len && memcmp((*at)->name, name, len) == 0))
		at = &(*at)->next_in_bucket;
	return at;
}

static struct mm_model *mm_find(const char *name, size_t len)
{
	return *mm_slot_of(name, len);
}

START_ONLY static void mm_forget_name(struct mm_model *m)
{
	struct mm_model **at = mm_slot_of(m->name, m->name_len);
	if (*at == m)
		*at = m->next_in_bucket;
	m->next_in_bucket = NULL;
}

/* Whether the name (p, n) sorts after the name (t, tn): bytes, then length. */
START_ONLY static int name_after(const char *p, size_t n, const char *t, size_t tn)
{
	int d = memcmp(p, t, n < tn ? n : tn);
	return d > 0 || (d == 0 && n > tn);
}

/* The loaded models are kept in name order as they load and unload (a
 * move of pointers, microseconds for 10,000), so that a page costs a binary
 * search and its own entries: sorting every model for each page took 7 ms
 * at 10,000, and a client asking for pages back to back held /ping for
 * seconds. The first position whose name sorts after (t, tn): */
START_ONLY static size_t mm_by_name_after(const char *t, size_t tn)
{
	size_t low = 0, high = mm_by_name_count;
	while (low < high) {
		size_t mid = low + (high - low) / 2;
		if (name_after(mm_by_name[mid]->name, mm_by_name[mid]->name_len, t, tn))
			high = mid;
		else
			low = mid + 1;
	}
	return low;
}

START_ONLY static void mm_by_name_add(struct mm_model *m)
{
	size_t at = mm_by_name_after(m->name, m->name_len);   /* names are unique */
	memmove(mm_by_name + at + 1, mm_by_name + at,
		(mm_by_name_count - at) * sizeof(struct mm_model *));
	mm_by_name[at] = m;
	mm_by_name_count++;
}

START_ONLY static void mm_by_name_remove(const struct mm_model *m)
{
	size_t at = mm_by_name_after(m->name, m->name_len) - 1;   /* m itself */
	if (at >= mm_by_name_count || mm_by_name[at] != m)
		return;                     /* (not listed: nothing to take out) */
	memmove(mm_by_name + at, mm_by_name + at + 1,
		(mm_by_name_count - at - 1) * sizeof(struct mm_model *));
	mm_by_name_count--;
}

/* The model's extent is free again, its pages given back; the entry goes. */
START_ONLY static void mm_release(struct mm_model *m)
{
	punch_extent(m->extent, 0);
	mm_live[1 + m->extent] = 0;
	mm_live[0]++;                  /* workers drop their copies of it */
	mm_free_extents[mm_free_count++] = m->extent;
	free(m->name);
	free(m->url);
	free(m);
}

/* ---- Answers ---- */

/* A growing buffer for answers of any length (a page of GET /models). */
struct grow {
	char *p;
	size_t n, cap;
	int failed;
};

START_ONLY static void grow_add(struct grow *g, const char *s, size_t n)
{
	if (g->failed)
		return;
	if (g->n + n > g->cap) {
		size_t cap = g->cap ? g->cap : 1024;
		char *p;
		while (cap < g->n + n)
			cap *= 2;
		if (!(p = realloc(g->p, cap))) {
			g->failed = 1;
			return;
		}
		g->p = p;
		g->cap = cap;
	}
	memcpy(g->p + g->n, s, n);
	g->n += n;
}

START_ONLY static void grow_str(struct grow *g, const char *s)
{
	grow_add(g, s, strlen(s));
}

/* Adds bytes as a JSON string, quoted and escaped. */
START_ONLY static void grow_json(struct grow *g, const char *s, size_t n)
{
	size_t i;
	grow_add(g, "\"", 1);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[8];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			grow_add(g, esc, 2);
		} else if (c < 0x20) {
			snprintf(esc, sizeof esc, "\\u%04x", c);
			grow_add(g, esc, 6);
		} else
			grow_add(g, s + i, 1);
	}
	grow_add(g, "\"", 1);
}

/* Answers 200 with the JSON built in g, which the connection then owns
 * (charged to --max-buffered-mb until written, as an answer kept is). */
START_ONLY static void respond_grown(struct conn *c, struct grow *g)
{
	if (g->failed) {
		free(g->p);
		respond_error(c, 500, "out of memory for the answer");
		return;
	}
	drop_owned_answer(c);
	c->owned = g->p;
	c->owned_len = g->n;
	c->owned_cap = g->cap;
	buffered_bytes += g->n;
	respond_full(c, 200, "application/json", c->owned, c->owned_len, NULL);
}

/* An error naming the model: "model 'NAME' ..." (the name cut to fit). */
START_ONLY static void respond_model_error(struct conn *c, int status, const char *name, size_t len,
	const char *what)
{
	char msg[ERROR_BODY_MAX / 2];
	snprintf(msg, sizeof msg, "model '%.*s' %s", (int)(len > 256 ? 256 : len), name, what);
	respond_error(c, status, msg);
}

/* The waiter of a load or unload, if it is still there, gets its answer. */
START_ONLY static struct conn *mm_take_waiter(struct mm_model *m)
{
	struct conn *c = m->waiter;
	m->waiter = NULL;
	if (c)
		c->awaits = NULL;
	return c;
}

/* ---- Loads ---- */

/* What a loader sends back, in one write (smaller than PIPE_BUF: atomic). */
struct mm_load_reply {
	int32_t status;            /* 200, or the load's error status */
	uint32_t reserved;
	uint64_t handle;
	uint64_t bytes;
	char error[512];
};

/* A load ended: the model is in, or its extent is free again. */
START_ONLY static void mm_load_finished(struct mm_model *m, const struct mm_load_reply *r)
{
	struct conn *c = mm_take_waiter(m);
	int status = r->status;
	const char *why = r->error;
	if (status == 200 && r->bytes > cfg.model_budget - (mm_occupied < cfg.model_budget ?
	                                                    mm_occupied : cfg.model_budget)) {
		status = 507;          /* loads side by side passed it together */
		why = "loading it would pass the memory budget for models";
	}
	if (status == 200) {
		m->state = MM_LOADED;
		mm_by_name_add(m);
		m->handle = r->handle;
		m->bytes = (size_t)r->bytes;
		mm_occupied += m->bytes;
		log_line("model '%.*s' loaded from %s: %zu bytes in %lld ms", (int)(m->name_len > 256 ?
			256 : m->name_len), m->name, m->url, m->bytes,
			(long long)(monotonic_us() - m->load_started_us) / 1000);
		if (c) {
			static const char ok[] = "{\"status\": \"model loaded\"}\n";
			respond_full(c, 200, "application/json", ok, sizeof ok - 1, NULL);
		}
		return;
	}
	log_line("%d model '%.*s' not loaded from %s: %s", status,
		(int)(m->name_len > 256 ? 256 : m->name_len), m->name, m->url, why);
	if (c)
		respond_error(c, status, why[0] ? why : "the model could not be loaded");
	mm_forget_name(m);
	if (m->state != MM_KILLED)         /* (else the reap releases it: mm_child_reaped) */
		mm_release(m);
}

START_ONLY static void mm_load_failed(struct mm_model *m, int status, const char *why)
{
	struct mm_load_reply r;
	memset(&r, 0, sizeof r);
	r.status = status;
	snprintf(r.error, sizeof r.error, "%s", why);
	mm_load_finished(m, &r);
}

/* A loader process: map the extent, run model_load with its allocations
 * in the extent, report, exit. cap: what the model may occupy. */
START_ONLY static void loader_main(struct mm_model *m, int to_loop, size_t cap)
{
	struct mm_load_reply r;
	char err[sizeof r.error];
	model *handle;
	struct stat st;
	memset(&r, 0, sizeof r);
	err[0] = '\0';
	/* SageMaker gives a directory (REQ-59); a plug-in that needs no file
	 * must not make a wrong path look loaded. */
	if (stat(m->url, &st) != 0 || !S_ISDIR(st.st_mode)) {
		const char *why = stat(m->url, &st) != 0 ? strerror(errno) : "not a directory";
		r.status = 400;
		snprintf(r.error, sizeof r.error, "%.*s: %s", (int)sizeof r.error - 64, m->url, why);
	} else if (map_extent(m->extent, MAP_SHARED) != 0) {
		r.status = 500;
		snprintf(r.error, sizeof r.error, "cannot map the model's memory: %s", strerror(errno));
	} else {
		arena.base = extent_address(m->extent);
		arena.cap = cap;
		arena.last = ARENA_NO_LAST;
		arena.active = 1;
		handle = model_load(m->url, err, sizeof err);
		arena.active = 0;
		err[sizeof err - 1] = '\0';
		r.status = handle ? 200 : arena.full ? (cap < cfg.max_model_bytes ? 507 : 500) : 500;
		r.handle = (uint64_t)(uintptr_t)handle;
		r.bytes = (arena.used + 4095) & ~(size_t)4095;
		if (!handle && arena.full && cap < cfg.max_model_bytes)
			snprintf(r.error, sizeof r.error, "the model needs more memory than is left in "
				"the budget for models (%zu bytes)", cap);
		else if (!handle && arena.full)
			snprintf(r.error, sizeof r.error, "the model needs more than --max-model-mb (%zu MiB)",
				cfg.max_model_bytes / MIB);
		else if (!handle)
			snprintf(r.error, sizeof r.error, "%s", err[0] ? err : "model_load failed");
		/* what the plug-in freed at the end (scratch space) is given back */
		punch_extent(m->extent, handle ? arena.used : 0);
	}
	fflush(stdout);
	fflush(stderr);
	while (write(to_loop, &r, sizeof r) < 0 && errno == EINTR)
		;
	_exit(0);
}

/* Forks a loader for m into slot l. */
START_ONLY static int loader_start(struct loader *l, struct mm_model *m)
{
	size_t left = cfg.model_budget > mm_occupied ? cfg.model_budget - mm_occupied : 0;
	size_t cap = left < cfg.max_model_bytes ? left : cfg.max_model_bytes;
	sigset_t before;
	int p[2];
	pid_t pid;
	if (pipe(p) != 0)
		return -1;
	if (p[0] >= FD_SETSIZE) {
		close(p[0]);
		close(p[1]);
		errno = EMFILE;
		return -1;
	}
	pid = fork_signals_held(&before);
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		if (child_begins(&before) != 0)
			_exit(0);
		close(p[0]);
		close_loop_descriptors(-1);
		loader_main(m, p[1], cap);
	}
	close(p[1]);
	set_nonblocking(p[0]);
	l->m = m;
	l->pid = pid;
	l->fd = p[0];
	l->got = 0;
	l->deadline = seconds_from_now(draining ? DRAIN_LOAD_LIMIT_S : cfg.load_timeout_s);
	return 0;
}

/* Starts waiting loads while loader slots are free, oldest first. */
/* How many loader slots wait for a killed loader's reap (each holding its
 * load's extent). */
START_ONLY static int mm_held_slots(void)
{
	int i, held = 0;
	for (i = 0; i < LOADS_AT_ONCE; i++)
		held += loaders[i].held != NULL;
	return held;
}

START_ONLY static void mm_start_loads(void)
{
	int i;
	for (i = 0; i < LOADS_AT_ONCE && mm_waiting_head; i++) {
		struct mm_model *m;
		if (loaders[i].m || loaders[i].held)
			continue;
		m = mm_waiting_head;
		mm_waiting_head = m->next;
		if (!mm_waiting_head)
			mm_waiting_tail = NULL;
		m->next = NULL;
		m->load_started_us = monotonic_us();
		if (loader_start(&loaders[i], m) != 0) {
			char why[128];
			snprintf(why, sizeof why, "cannot start a loader process: %s", strerror(errno));
			mm_load_failed(m, 500, why);
		}
	}
}

/* The loader in slot l is done (its answer read, or it died or timed out). */
START_ONLY static void loader_end(struct loader *l)
{
	close(l->fd);
	l->fd = -1;
	l->m = NULL;
	l->ended = l->pid > 0 ? l->pid : 0;
	l->pid = 0;
}

/* Fails every load waiting for a loader slot. */
START_ONLY static void mm_fail_waiting(int status, const char *why)
{
	while (mm_waiting_head) {
		struct mm_model *m = mm_waiting_head;
		mm_waiting_head = m->next;
		m->next = NULL;
		mm_load_failed(m, status, why);
	}
	mm_waiting_tail = NULL;
}

/* Ends slot l's load when its loader may still be running (it timed out,
 * or closed its pipe without an answer): SIGKILL. Killed is not yet dead:
 * the process runs none of its own code, but a read() into the extent
 * goes on filling pages, which would land in the next model loaded
 * there. So the model holds its extent, and the slot, until the reap
 * (mm_child_reaped); with every slot held no load can start, and those
 * waiting fail rather than wait on reaps that may be slow. */
START_ONLY static void loader_stop(struct loader *l)
{
	if (l->pid > 0) {
		kill(l->pid, SIGKILL);
		l->m->state = MM_KILLED;
		l->held = l->m;
	}
	loader_end(l);
	if (mm_held_slots() == LOADS_AT_ONCE)
		mm_fail_waiting(503, "cannot be loaded yet: loads that timed out are still being "
			"stopped; retry");
}

START_ONLY static void loader_read(struct loader *l)
{
	struct mm_model *m = l->m;
	struct mm_load_reply r;
	ssize_t n = read(l->fd, l->reply + l->got, sizeof r - l->got);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n > 0) {
		l->got += (size_t)n;
		if (l->got < sizeof r)
			return;
		memcpy(&r, l->reply, sizeof r);
		r.error[sizeof r.error - 1] = '\0';
		loader_end(l);
		mm_load_finished(m, &r);
	} else { /* it died, or closed its pipe and runs on */
		loader_stop(l);
		mm_load_failed(m, 500, "the model's loader crashed while loading it");
	}
}

/* ---- Unloads ---- */

/* Whether an invocation of m is queued or running. */
static int mm_busy(const struct mm_model *m)
{
	const struct conn *c;
	int i;
	for (c = queue.head; c; c = c->next_queued)
		if (c->mm == m)
			return 1;
	for (i = 0; i < cfg.workers; i++)
		if (workers[i].pid > 0 && workers[i].conn && workers[i].conn->mm == m)
			return 1;
	return 0;
}

/* Unloads whose invocations have all ended give their memory back, and
 * their DELETE is answered. */
START_ONLY static void mm_finish_unloads(void)
{
	struct mm_model **at = &mm_unloading;
	while (*at) {
		struct mm_model *m = *at;
		struct conn *c;
		if (mm_busy(m)) {
			at = &m->next;
			continue;
		}
		*at = m->next;
		mm_occupied -= m->bytes;
		log_line("model '%.*s' unloaded: %zu bytes given back",
			(int)(m->name_len > 256 ? 256 : m->name_len), m->name, m->bytes);
		if ((c = mm_take_waiter(m)) != NULL) {
			static const char ok[] = "{\"status\": \"model unloaded\"}\n";
			respond_full(c, 200, "application/json", ok, sizeof ok - 1, NULL);
		}
		mm_release(m);
	}
}

/* ---- The loop's side: descriptors, events, deadlines ---- */

static void mm_watch(fd_set *rd, int *maxfd, int64_t *next)
{
	int i;
	for (i = 0; i < LOADS_AT_ONCE; i++)
		if (loaders[i].m) {
			FD_SET(loaders[i].fd, rd);
			if (loaders[i].fd > *maxfd)
				*maxfd = loaders[i].fd;
			if (*next == 0 || loaders[i].deadline < *next)
				*next = loaders[i].deadline;
		}
}

static void mm_events(fd_set *rd)
{
	int i;
	for (i = 0; i < LOADS_AT_ONCE; i++)
		if (loaders[i].m && FD_ISSET(loaders[i].fd, rd))
			loader_read(&loaders[i]);
	if (mm_waiting_head)
		mm_start_loads();
}

static void mm_check(void)
{
	int i;
	for (i = 0; i < LOADS_AT_ONCE; i++) {
		struct loader *l = &loaders[i];
		struct mm_model *m = l->m;
		char why[96];
		if (!m || now_ms < l->deadline)
			continue;
		loader_stop(l);
		if (draining)
			snprintf(why, sizeof why, "the server is stopping (SIGTERM)");
		else
			snprintf(why, sizeof why, "loading the model did not finish within %d s",
				cfg.load_timeout_s);
		mm_load_failed(m, draining ? 503 : 500, why);
	}
	if (mm_waiting_head)
		mm_start_loads();
	if (mm_unloading)
		mm_finish_unloads();
}

/* A child was reaped: if it was a loader, its pid is never signalled
 * again. Returns whether it was one. */
static int mm_child_reaped(pid_t pid)
{
	int i;
	for (i = 0; i < LOADS_AT_ONCE; i++) {
		if (loaders[i].m && loaders[i].pid == pid) {
			loaders[i].pid = -pid;
			return 1;
		}
		if (loaders[i].ended == pid) {
			loaders[i].ended = 0;
			if (loaders[i].held) {
				mm_release(loaders[i].held);
				loaders[i].held = NULL;
			}
			return 1;
		}
	}
	return 0;
}

/* SIGTERM: loads running get at most DRAIN_LOAD_LIMIT_S more. */
START_ONLY static void mm_drain(void)
{
	int i;
	int64_t limit = seconds_from_now(DRAIN_LOAD_LIMIT_S);
	for (i = 0; i < LOADS_AT_ONCE; i++)
		if (loaders[i].m && loaders[i].deadline > limit)
			loaders[i].deadline = limit;
}

/* At exit: loaders still running are stopped. */
START_ONLY static void mm_stop(void)
{
	int i;
	for (i = 0; i < LOADS_AT_ONCE; i++)
		if (loaders[i].m && loaders[i].pid > 0) {
			kill(loaders[i].pid, SIGKILL);
			waitpid(loaders[i].pid, NULL, 0);
		}
}

/* ---- Routes ---- */

/* /models (list, load), /models/NAME (describe, unload) and
 * /models/NAME/invoke. The name is URL-encoded in the path: one segment. */
static enum route mm_route_of(const struct http_request *r, int *status, const char **allow,
	const char **message)
{
	enum method m = r->method;
	struct slice rest = { r->path.p + 8, r->path.n > 8 ? r->path.n - 8 : 0 };
	const char *slash = memchr(rest.p, '/', rest.n);
	if (slice_eq(r->path, "/models")) {
		if (m == M_GET || m == M_HEAD)
			return ROUTE_MODEL_LIST;
		if (m == M_POST)
			return ROUTE_MODEL_LOAD;
		*allow = "Allow: GET, HEAD, POST\r\n";
	} else if (memcmp(r->path.p, "/models/", 8) != 0 || rest.n == 0 || slash == rest.p ||
	           (slash && (size_t)(rest.p + rest.n - slash) != 7) ||
	           (slash && memcmp(slash, "/invoke", 7) != 0)) {
		*status = 404;
		*message = "no such path; use /models, /models/{name} or /models/{name}/invoke";
		return ROUTE_ERROR;
	} else if (slash) {
		if (m == M_POST)
			return ROUTE_MODEL_INVOKE;
		*allow = "Allow: POST\r\n";
	} else {
		if (m == M_GET || m == M_HEAD)
			return ROUTE_MODEL_DESCRIBE;
		if (slice_eq(r->method_name, "DELETE"))
			return ROUTE_MODEL_UNLOAD;
		*allow = "Allow: GET, HEAD, DELETE\r\n";
	}
	*status = 405;
	*message = "method not allowed on this path";
	return ROUTE_ERROR;
}

/* Percent-decodes s into out (at most cap bytes); returns the length, or
 * -1 for a bad escape or a result too long. */
static long percent_decode(struct slice s, char *out, size_t cap)
{
	size_t i, n = 0;
	for (i = 0; i < s.n; i++) {
		char ch = s.p[i];
		if (ch == '%') {
			if (i + 2 >= s.n)
				return -1;
			if (hex_value(s.p[i + 1]) < 0 || hex_value(s.p[i + 2]) < 0)
				return -1;
			ch = (char)(hex_value(s.p[i + 1]) * 16 + hex_value(s.p[i + 2]));
			i += 2;
		}
		if (n == cap)
			return -1;
		out[n++] = ch;
	}
	return (long)n;
}

/* The model named in the path (/models/NAME[/invoke]), decoded into name;
 * returns its length, or -1 (answered 400). */
static long name_in_path(struct conn *c, char *name)
{
	struct slice seg = { c->req.path.p + 8, c->req.path.n - 8 };
	const char *slash = memchr(seg.p, '/', seg.n);
	long n;
	if (slash)
		seg.n = (size_t)(slash - seg.p);
	n = percent_decode(seg, name, MODEL_NAME_MAX);
	if (n <= 0)
		respond_error(c, 400, "malformed model name in the path");
	return n > 0 ? n : -1;
}

/* The loaded model the path names, or NULL once the client is answered
 * (400 for a malformed name, 404 for one not loaded). */
static struct mm_model *loaded_model_in_path(struct conn *c)
{
	char name[MODEL_NAME_MAX];
	long n = name_in_path(c, name);
	struct mm_model *m;
	if (n < 0)
		return NULL;
	m = mm_find(name, (size_t)n);
	if (!m || m->state != MM_LOADED) {
		respond_model_error(c, 404, name, (size_t)n, "is not loaded");
		return NULL;
	}
	return m;
}

START_ONLY static void mm_serve_describe(struct conn *c)
{
	struct mm_model *m = loaded_model_in_path(c);
	struct grow g = { NULL, 0, 0, 0 };
	if (!m)
		return;
	grow_str(&g, "{\"modelName\": ");
	grow_json(&g, m->name, m->name_len);
	grow_str(&g, ", \"modelUrl\": ");
	grow_json(&g, m->url, strlen(m->url));
	grow_str(&g, "}\n");
	respond_grown(c, &g);
}

START_ONLY static void mm_serve_unload(struct conn *c)
{
	struct mm_model *m = loaded_model_in_path(c);
	if (!m)
		return;
	mm_forget_name(m);                /* later invocations: 404 */
	mm_by_name_remove(m);
	m->state = MM_UNLOADING;
	m->waiter = c;
	m->next = mm_unloading;
	mm_unloading = m;
	c->awaits = m;
	c->state = CONN_IN_MODEL;
	c->deadline = 0;                  /* the invocations' own timeouts bound the wait */
	mm_finish_unloads();
}

static void mm_serve_invoke(struct conn *c)
{
	struct mm_model *m = loaded_model_in_path(c);
	if (!m)
		return;
	c->mm = m;
	serve_invocation(c);
}

/* ---- GET /models: a page of the loaded models, by name ---- */

/* The query's limit and next_page_token (the hex of the last name of the
 * page before: names sort after it). Returns 0, or -1 (answered 400). */
START_ONLY static int list_query(struct conn *c, long *limit, char *token, size_t *token_len)
{
	const struct slice t = c->req.target, p = c->req.path;
	const char *q = p.p + p.n, *end = t.p + t.n;
	*limit = LIST_DEFAULT_LIMIT;
	*token_len = 0;
	if (!(q > t.p && q < end && *q == '?'))
		return 0;
	while (q < end) {
		const char *key = ++q, *eq, *amp;
		char value[2 * MODEL_NAME_MAX + 1];
		long n, i;
		while (q < end && *q != '&')
			q++;
		amp = q;
		eq = memchr(key, '=', (size_t)(amp - key));
		if (!eq)
			continue;
		n = percent_decode((struct slice){ eq + 1, (size_t)(amp - eq - 1) }, value, sizeof value - 1);
		if (n >= 0)
			value[n] = '\0';
		if (eq - key == 5 && !memcmp(key, "limit", 5)) {
			char *stop;
			*limit = n > 0 ? strtol(value, &stop, 10) : 0;
			if (n <= 0 || *stop || value[0] < '0' || value[0] > '9' || *limit < 1 ||
			    *limit > LIST_MAX_LIMIT) {
				respond_error(c, 400, "limit must be a whole number from 1 to 1000");
				return -1;
			}
		} else if (eq - key == 15 && !memcmp(key, "next_page_token", 15) && n != 0) {
			if (n < 0 || n % 2)
				goto bad_token;
			for (i = 0; i < n; i += 2) {
				if (hex_value(value[i]) < 0 || hex_value(value[i + 1]) < 0)
					goto bad_token;
				token[i / 2] = (char)(hex_value(value[i]) * 16 + hex_value(value[i + 1]));
			}
			*token_len = (size_t)n / 2;
		}
	}
	return 0;
bad_token:
	respond_error(c, 400, "invalid next_page_token");
	return -1;
}

START_ONLY static void mm_serve_list(struct conn *c)
{
	char token[MODEL_NAME_MAX];
	size_t token_len, i, shown;
	struct grow g = { NULL, 0, 0, 0 };
	long limit;
	if (list_query(c, &limit, token, &token_len) != 0)
		return;
	i = token_len ? mm_by_name_after(token, token_len) : 0;
	grow_str(&g, "{\"models\": [");
	for (shown = 0; i < mm_by_name_count && shown < (size_t)limit; i++, shown++) {
		const struct mm_model *m = mm_by_name[i];
		grow_str(&g, shown ? ", {\"modelName\": " : "{\"modelName\": ");
		grow_json(&g, m->name, m->name_len);
		grow_str(&g, ", \"modelUrl\": ");
		grow_json(&g, m->url, strlen(m->url));
		grow_str(&g, "}");
	}
	grow_str(&g, "]");
	if (i < mm_by_name_count) {       /* more to come: the token is the last name shown */
		const struct mm_model *last = mm_by_name[i - 1];
		size_t k;
		grow_str(&g, ", \"nextPageToken\": \"");
		for (k = 0; k < last->name_len; k++) {
			char hex[3];
			snprintf(hex, sizeof hex, "%02x", (unsigned char)last->name[k]);
			grow_add(&g, hex, 2);
		}
		grow_str(&g, "\"");
	}
	grow_str(&g, "}\n");
	respond_grown(c, &g);
}

/* ---- POST /models: {"model_name": "...", "url": "..."} ---- */

struct json {
	const char *p, *end;
	int depth;
};

START_ONLY static void json_space(struct json *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

START_ONLY static int json_hex4(struct json *j, unsigned *v)
{
	int i;
	*v = 0;
	if (j->end - j->p < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		int h = hex_value(*j->p++);
		if (h < 0)
			return -1;
		*v = *v * 16 + (unsigned)h;
	}
	return 0;
}

START_ONLY static void grow_utf8(struct grow *g, unsigned cp)
{
	char b[4];
	size_t n;
	if (cp < 0x80)
		b[0] = (char)cp, n = 1;
	else if (cp < 0x800)
		b[0] = (char)(0xc0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
	else if (cp < 0x10000)
		b[0] = (char)(0xe0 | cp >> 12), b[1] = (char)(0x80 | ((cp >> 6) & 0x3f)),
		b[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
	else
		b[0] = (char)(0xf0 | cp >> 18), b[1] = (char)(0x80 | ((cp >> 12) & 0x3f)),
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), b[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
	grow_add(g, b, n);
}

/* The length of the well-formed UTF-8 sequence at p (before end), 0 if
 * there is none (RFC 3629 4: no overlong form, no surrogate, nothing past
 * U+10FFFF). */
START_ONLY static size_t utf8_length(const unsigned char *p, const unsigned char *end)
{
	size_t n = p[0] < 0x80 ? 1 : p[0] >= 0xc2 && p[0] <= 0xdf ? 2 :
		p[0] >= 0xe0 && p[0] <= 0xef ? 3 : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : 0;
	size_t i;
	if (n == 0 || (size_t)(end - p) < n)
		return 0;
	for (i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) ||
	    (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))
		return 0;                   /* overlong, a surrogate, past U+10FFFF */
	return n;
}

/* A JSON string at j->p (RFC 8259 7), decoded into out (NULL: skipped).
 * Its text must be UTF-8 (RFC 8259 8.1): a name that is not would make
 * every answer that lists it something no JSON reader accepts. */
START_ONLY static int json_string(struct json *j, struct grow *out)
{
	struct grow sink = { NULL, 0, 0, 1 };   /* (failed: keeps nothing) */
	if (!out)
		out = &sink;
	if (j->p >= j->end || *j->p++ != '"')
		return -1;
	while (j->p < j->end) {
		unsigned char c = (unsigned char)*j->p++;
		unsigned cp, low;
		if (c == '"')
			return 0;
		if (c < 0x20)
			return -1;
		if (c >= 0x80) {
			size_t n = utf8_length((const unsigned char *)j->p - 1,
				(const unsigned char *)j->end);
			if (n == 0)
				return -1;
			grow_add(out, j->p - 1, n);
			j->p += n - 1;
			continue;
		}
		if (c != '\\') {
			grow_add(out, (const char *)&c, 1);
			continue;
		}
		if (j->p >= j->end)
			return -1;
		switch (c = (unsigned char)*j->p++) {
		case '"': case '\\': case '/': grow_add(out, (const char *)&c, 1); break;
		case 'b': grow_add(out, "\b", 1); break;
		case 'f': grow_add(out, "\f", 1); break;
		case 'n': grow_add(out, "\n", 1); break;
		case 'r': grow_add(out, "\r", 1); break;
		case 't': grow_add(out, "\t", 1); break;
		case 'u':
			if (json_hex4(j, &cp) != 0)
				return -1;
			if (cp >= 0xd800 && cp < 0xdc00) {     /* a surrogate pair */
				if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u')
					return -1;
				j->p += 2;
				if (json_hex4(j, &low) != 0 || low < 0xdc00 || low > 0xdfff)
					return -1;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
			} else if (cp >= 0xdc00 && cp < 0xe000)
				return -1;
			grow_utf8(out, cp);
			break;
		default:
			return -1;
		}
	}
	return -1;
}

/* Skips the digits at j->p; returns how many. */
START_ONLY static int json_digits(struct json *j)
{
	int n = 0;
	while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
		j->p++, n++;
	return n;
}

/* Skips a JSON number (RFC 8259 6): -? (0 | [1-9][0-9]*) (.[0-9]+)?
 * ([eE][+-]?[0-9]+)? */
START_ONLY static int json_number(struct json *j)
{
	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p < j->end && *j->p == '0')
		j->p++;
	else if (json_digits(j) == 0)
		return -1;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (json_digits(j) == 0)
			return -1;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (json_digits(j) == 0)
			return -1;
	}
	return 0;
}

/* Skips any JSON value (nested at most 32 deep). */
START_ONLY static int json_skip(struct json *j)
{
	json_space(j);
	if (j->p >= j->end)
		return -1;
	if (*j->p == '"')
		return json_string(j, NULL);
	if (*j->p == '{' || *j->p == '[') {
		char close = *j->p == '{' ? '}' : ']';
		int object = close == '}';
		if (++j->depth > 32)
			return -1;
		j->p++;
		json_space(j);
		if (j->p < j->end && *j->p == close) {
			j->p++;
			j->depth--;
			return 0;
		}
		for (;;) {
			if (object) {
				json_space(j);
				if (json_string(j, NULL) != 0)
					return -1;
				json_space(j);
				if (j->p >= j->end || *j->p++ != ':')
					return -1;
			}
			if (json_skip(j) != 0)
				return -1;
			json_space(j);
			if (j->p >= j->end)
				return -1;
			if (*j->p == close) {
				j->p++;
				j->depth--;
				return 0;
			}
			if (*j->p++ != ',')
				return -1;
		}
	}
	if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9'))
		return json_number(j);
	if (j->end - j->p >= 4 && (!memcmp(j->p, "true", 4) || !memcmp(j->p, "null", 4))) {
		j->p += 4;
		return 0;
	}
	if (j->end - j->p >= 5 && !memcmp(j->p, "false", 5)) {
		j->p += 5;
		return 0;
	}
	return -1;
}

/* Reads the load request's body into name and url. Returns NULL, or what
 * is wrong with it. */
START_ONLY static const char *parse_load_body(const char *body, size_t len, struct grow *name, struct grow *url)
{
	struct json j = { body, body + len, 0 };
	int have_name = 0, have_url = 0;
	json_space(&j);
	if (j.p >= j.end || *j.p++ != '{')
		return "the body must be a JSON object: {\"model_name\": \"...\", \"url\": \"...\"}";
	json_space(&j);
	if (j.p < j.end && *j.p == '}')
		j.p++;
	else
		for (;;) {
			struct grow key = { NULL, 0, 0, 0 };
			int is_name, is_url, r;
			json_space(&j);
			r = json_string(&j, &key);
			is_name = r == 0 && key.n == 10 && !memcmp(key.p, "model_name", 10);
			is_url = r == 0 && key.n == 3 && !memcmp(key.p, "url", 3);
			free(key.p);
			json_space(&j);
			if (r != 0 || j.p >= j.end || *j.p++ != ':')
				return "malformed JSON body";
			json_space(&j);
			if ((is_name || is_url) && (j.p >= j.end || *j.p != '"'))
				return is_name ? "model_name must be a string" : "url must be a string";
			if (is_name)
				have_name = 1, name->n = 0, r = json_string(&j, name);
			else if (is_url)
				have_url = 1, url->n = 0, r = json_string(&j, url);
			else
				r = json_skip(&j);
			json_space(&j);
			if (r != 0 || j.p >= j.end)
				return "malformed JSON body";
			if (*j.p == '}') {
				j.p++;
				break;
			}
			if (*j.p++ != ',')
				return "malformed JSON body";
		}
	json_space(&j);
	if (j.p != j.end)
		return "malformed JSON body";
	if (name->failed || url->failed)
		return "out of memory";
	if (!have_name)
		return "missing model_name";
	if (!have_url)
		return "missing url";
	if (name->n == 0 || name->n > MODEL_NAME_MAX)
		return "model_name must be 1 to 1024 bytes";
	if (url->n == 0 || url->n >= MODEL_URL_MAX || memchr(url->p, '\0', url->n))
		return "url must be a path of 1 to 4095 bytes";
	return NULL;
}

START_ONLY static void mm_serve_load(struct conn *c)
{
	struct grow name = { NULL, 0, 0, 0 }, url = { NULL, 0, 0, 0 };
	const char *bad = parse_load_body(c->in + c->body_start, c->body_len, &name, &url);
	struct mm_model *m = NULL;
	if (bad) {
		respond_error(c, 400, bad);
	} else if (mm_find(name.p, name.n)) {
		respond_model_error(c, 409, name.p, name.n, "is already loaded");
	} else if ((mm_free_count == 0 && mm_held_slots() > 0) || mm_held_slots() == LOADS_AT_ONCE) {
		respond_model_error(c, 503, name.p, name.n, "cannot be loaded yet: loads that "
			"timed out are still being stopped; retry");
	} else if (mm_free_count == 0) {
		respond_model_error(c, 507, name.p, name.n, "cannot be loaded: as many models as "
			"--max-models allows are loaded");
	} else if (mm_occupied >= cfg.model_budget) {
		respond_model_error(c, 507, name.p, name.n, "cannot be loaded: the memory budget "
			"for models is used up");
	} else if (!(m = calloc(1, sizeof *m)) || !(m->url = malloc(url.n + 1))) {
		respond_error(c, 500, "out of memory");
	} else {
		memcpy(m->url, url.p, url.n);
		m->url[url.n] = '\0';
		m->name = name.p;
		m->name_len = name.n;
		name.p = NULL;
		m->state = MM_LOADING;
		m->extent = mm_free_extents[--mm_free_count];
		m->generation = ++mm_generation;
		mm_live[1 + m->extent] = m->generation;
		*mm_slot_of(m->name, m->name_len) = m;
		m->waiter = c;
		c->awaits = m;
		c->state = CONN_IN_MODEL;
		c->deadline = 0;              /* the loader's timeout bounds the wait */
		if (mm_waiting_tail)
			mm_waiting_tail->next = m;
		else
			mm_waiting_head = m;
		mm_waiting_tail = m;
		m = NULL;
		mm_start_loads();
	}
	if (m)
		free(m->url);
	free(m);
	free(name.p);
	free(url.p);
}

/* The routes that manage models (all but invoke): optimized for size, as
 * start-up is (START_ONLY): a load costs a fork, and they are called once
 * per model, not once per invocation. */
START_ONLY static void mm_manage(struct conn *c)
{
	switch (c->route) {
	case ROUTE_MODEL_LIST: mm_serve_list(c); break;
	case ROUTE_MODEL_LOAD: mm_serve_load(c); break;
	case ROUTE_MODEL_DESCRIBE: mm_serve_describe(c); break;
	case ROUTE_MODEL_UNLOAD: mm_serve_unload(c); break;
	default: break;
	}
}

static void mm_request_complete(struct conn *c)
{
	if (c->route == ROUTE_MODEL_INVOKE)
		mm_serve_invoke(c);
	else
		mm_manage(c);
}

/* ---- Start-up ---- */

/* A number read from the first line of a file; 0 if it has none. */
START_ONLY static uint64_t number_in_file(const char *path, const char *after)
{
	char line[256];
	uint64_t v = 0;
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f)) {
		const char *p = line;
		if (after && strncmp(line, after, strlen(after)) != 0)
			continue;
		p += after ? strlen(after) : 0;
		while (*p == ' ')
			p++;
		v = strtoull(p, NULL, 10);
		break;
	}
	fclose(f);
	return v;
}

/* What models may occupy when no budget is given: what the container may
 * use (cgroup v2 memory.max, v1 memory.limit_in_bytes; a v1 "no limit" is
 * a huge number), else what is available, less a reserve for the server:
 * a tenth, at least BUDGET_RESERVE_MIN. */
START_ONLY static size_t default_model_budget(void)
{
	uint64_t limit = number_in_file("/sys/fs/cgroup/memory.max", NULL), reserve;
	if (!limit) {
		limit = number_in_file("/sys/fs/cgroup/memory/memory.limit_in_bytes", NULL);
		if (limit >= (uint64_t)1 << 60)
			limit = 0;
	}
	if (!limit)
		limit = number_in_file("/proc/meminfo", "MemAvailable:") * 1024;
	if (!limit)
		return BUDGET_WITHOUT_LIMIT;
	reserve = limit / 10 > BUDGET_RESERVE_MIN ? limit / 10 : BUDGET_RESERVE_MIN;
	return limit > 2 * reserve ? (size_t)(limit - reserve) : (size_t)(limit / 2);
}

/* Before any fork: the model file, its range of addresses, the tables. */
START_ONLY static int mm_start(void)
{
#ifdef __linux__
	size_t buckets = 1, i;
	void *p;
	if (!cfg.model_budget)
		cfg.model_budget = default_model_budget();
	mm_span = (size_t)cfg.max_models * cfg.max_model_bytes;
	mm_fd = memfd_create("smserve-models", 0);
	if (mm_fd < 0 || ftruncate(mm_fd, (off_t)mm_span) != 0)
		return -1;
	/* Addresses only: no memory, and no commitment against overcommit. */
	p = mmap(NULL, mm_span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	mm_base = p;
	p = mmap(NULL, ((size_t)cfg.max_models + 1) * sizeof *mm_live, PROT_READ | PROT_WRITE,
		MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	mm_live = p;
	while (buckets < (size_t)cfg.max_models)
		buckets *= 2;
	mm_bucket_mask = buckets - 1;
	mm_buckets = calloc(buckets, sizeof *mm_buckets);
	mm_free_extents = malloc((size_t)cfg.max_models * sizeof *mm_free_extents);
	mm_by_name = malloc((size_t)cfg.max_models * sizeof(struct mm_model *));
	if (!mm_buckets || !mm_free_extents || !mm_by_name)
		return -1;
	for (i = 0; i < (size_t)cfg.max_models; i++)   /* extent 0 on top */
		mm_free_extents[i] = (uint32_t)(cfg.max_models - 1 - (int)i);
	mm_free_count = (size_t)cfg.max_models;
	return 0;
#else
	errno = ENOSYS;
	return -1;
#endif
}

/* ======================================================================== */
/* 17. The connection state machine: parse what has arrived, act on it.     */
/* ======================================================================== */

/* A body must make progress every --body-timeout seconds, and, so that a
 * byte sent just inside that cannot hold a connection for ever, arrive at
 * --min-body-rate bytes a second on average, after a grace of
 * --body-timeout seconds from the start of its request (the idea of
 * Apache's mod_reqtimeout MinRate): each byte received buys 1/rate s more.
 * Only decoded body bytes count, so chunk extensions and trailers sent
 * slowly buy nothing. The default, 1 KiB/s, passes any real sender (a
 * 6 MiB body may take over 100 minutes) and ends a trickle of a byte a
 * minute after about a minute. Returns 0 when there is no minimum. */
static int64_t body_rate_deadline(const struct conn *c)
{
	if (min_body_rate <= 0)
		return 0;
	return c->started_us / 1000 + (int64_t)cfg.body_timeout_s * 1000 +
	       (int64_t)(c->body_len / (size_t)min_body_rate * 1000) +
	       (int64_t)(c->body_len % (size_t)min_body_rate * 1000 / (size_t)min_body_rate);
}

/* The deadline of a body being read: the sooner of the two above. */
static int64_t body_deadline(const struct conn *c)
{
	int64_t stall = seconds_from_now(cfg.body_timeout_s), rate = body_rate_deadline(c);
	return rate && rate < stall ? rate : stall;
}

/* The head is parsed: route it, check the body's size, make room for it. */
static void head_complete(struct conn *c)
{
	struct http_request *r = &c->req;
	int status = 0;
	const char *allow, *message = NULL;
	int body_coming = r->chunked || r->content_length > 0;
	c->route = route_of(r, &status, &allow, &message);
	c->body_start = r->head_len;
	if (c->route == ROUTE_ERROR) {
		c->close_after = body_coming;  /* an unread body: close (RFC 9112 9.3) */
		c->req_end = r->head_len;
		respond_error_with(c, status, message, allow);
		return;
	}
	if (r->content_length > cfg.max_body) {
		char msg[96];
		snprintf(msg, sizeof msg, "request body larger than the limit of %zu bytes", cfg.max_body);
		fail_and_close(c, 413, msg);
		return;
	}
	c->raw_pos = r->head_len;
	c->state = CONN_READ_BODY;
	c->deadline = body_deadline(c);
	/* RFC 9110 10.1.1: answer 100-continue at once, not after a wait. */
	if (r->expect_continue && c->in_len == r->head_len) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		memcpy(c->head, cont, sizeof cont - 1);
		c->head_len = sizeof cont - 1;
		c->out_off = 0;
	}
}

/* Moves the body forward with what has arrived. Returns 1 when complete. */
static int body_progress(struct conn *c)
{
	struct http_request *r = &c->req;
	if (!r->chunked) {
		size_t have = c->in_len - c->body_start;
		c->body_len = have < r->content_length ? have : (size_t)r->content_length;
		c->req_end = c->body_start + c->body_len;
		return c->body_len == r->content_length;
	} else {
		size_t dst = c->body_start + c->body_len, left;
		int status = 400, res;
		res = chunked_decode(&c->chunk, c->in, c->in_len, &c->raw_pos, &dst, cfg.max_body, &status);
		c->body_len = dst - c->body_start;
		if (res == PARSE_ERROR) {
			fail_and_close(c, status, status == 413 ? "request body larger than the limit"
				: "malformed chunked body");
			return 0;
		}
		/* Close the gap between decoded and raw bytes, so the buffer holds
		 * only the body and what is not yet decoded. */
		left = c->in_len - c->raw_pos;
		memmove(c->in + dst, c->in + c->raw_pos, left);
		c->in_len = dst + left;
		c->raw_pos = dst;
		c->req_end = dst;
		return res == PARSE_DONE;
	}
}

static void conn_process(struct conn *c)
{
	if (c->state == CONN_READ_HEAD) {
		int r = http_parse_head(c->in, c->in_len, &c->scan, &c->req);
		if (r == PARSE_MORE)
			return;
		if (r == PARSE_ERROR) {
			fail_and_close(c, c->req.error_status, c->req.error);
			return;
		}
		head_complete(c);
		if (c->state != CONN_READ_BODY)
			return;
	}
	if (c->state == CONN_READ_BODY && body_progress(c))
		request_complete(c);
}

/* Makes room to read into, doubling up to what the current phase may hold.
 * A body's buffer grows as its bytes arrive rather than to Content-Length at
 * once, so a client that announces 6 MiB and sends nothing holds 4 KiB, not
 * 6 MiB of the budget. (Large reallocs are mremap calls, not copies.) */
static int conn_make_room(struct conn *c)
{
	size_t limit, cap;
	if (c->in_len < c->in_cap)
		return 0;
	if (c->state == CONN_READ_HEAD)
		limit = MAX_HEAD_BYTES + 2;
	else if (c->req.chunked)
		limit = c->body_start + cfg.max_body + IN_BUF_KEEP;  /* room for framing */
	else
		limit = c->body_start + (size_t)c->req.content_length;
	if (c->in_cap >= limit)
		return -1;
	cap = c->in_cap * 2 < limit ? c->in_cap * 2 : limit;
	if (conn_resize(c, cap) == 0)
		return 0;
	return release_idle_buffers() ? conn_resize(c, cap) : -1;
}

static void conn_read(struct conn *c)
{
	ssize_t r;
	int idle;
	if (c->state == CONN_IN_MODEL || c->state == CONN_WRITE)
		return;                     /* one request at a time: read later */
	if (c->state == CONN_LINGER) {   /* discard until EOF or the deadline */
		char sink[4096];
		r = read(c->fd, sink, sizeof sink);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			conn_close(c);
		return;
	}
	if (conn_make_room(c) != 0) {
		/* The memory budget said no (a head too large is found by scan_head
		 * first, a body too large by head_complete or the chunked decoder). */
		log_line("503 request bodies in memory would pass %zu bytes", cfg.max_buffered);
		c->close_after = 1;
		respond_error_with(c, 503, "server busy: too many request bodies in memory",
			"Retry-After: 1\r\n");
		conn_write(c);
		return;
	}
	r = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
	if (r < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			conn_close(c);
		return;
	}
	if (r == 0) {                    /* the client closed (or half-closed) */
		conn_close(c);
		return;
	}
	idle = c->state == CONN_READ_HEAD && holds_no_request(c);
	c->in_len += (size_t)r;
	if (idle && !holds_no_request(c)) {  /* a request begins */
		c->started_us = monotonic_us();
		c->deadline = seconds_from_now(cfg.header_timeout_s);
	}
	conn_process(c);
	if (c->state == CONN_READ_BODY)  /* (what arrived counts: after processing) */
		c->deadline = body_deadline(c);
	if (has_pending_output(c))
		conn_write(c);
}

/* A connection whose deadline passed. */
static void conn_timeout(struct conn *c)
{
	switch (c->state) {
	case CONN_READ_HEAD:
		if (holds_no_request(c)) {
			conn_close(c);           /* idle keep-alive: just close */
			return;
		}
		fail_and_close(c, 408, "timed out reading the request head");
		break;
	case CONN_READ_BODY:
		if (min_body_rate > 0 && now_ms >= body_rate_deadline(c)) {
			char msg[96];
			snprintf(msg, sizeof msg, "request body slower than %ld bytes a second",
				min_body_rate);
			fail_and_close(c, 408, msg);
		} else
			fail_and_close(c, 408, "timed out reading the request body");
		break;
	case CONN_IN_MODEL:              /* only a queued request has a deadline */
		model_abandon(c);
		log_line("503 no model worker became free within %d s", cfg.timeout_s);
		respond_error_with(c, 503, "server busy: no model worker became free in time",
			"Retry-After: 1\r\n");
		break;
	case CONN_WRITE:                 /* a client that did not take its answer */
		/* With a reset: a plain close would leave the kernel sending what
		 * it holds of the answer (megabytes) at the client's pace. */
		log_line("client did not take its answer within %d s: connection reset",
			cfg.body_timeout_s);
		reset_at_close(c);
		conn_close(c);
		return;
	default:                         /* linger over */
		conn_close(c);
		return;
	}
	conn_write(c);
}

/* ======================================================================== */
/* 18. Accepting connections                                                */
/* ======================================================================== */

/* Closing a socket with unread input sends a reset in place of the end of
 * the stream (RFC 1122 4.2.2.13), which can reach the client before it has
 * read our last response, or destroy it (RFC 9112 9.6). So this reads what
 * has already come (a request sent at once often has), without waiting for
 * more, and then closes. */
static void close_reading_what_came(int fd)
{
	char sink[4096];
	int reads = 0;
	while (reads++ < 16 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0)
		continue;
	close(fd);
}

/* Sends a 503 saying there are too many connections, without waiting;
 * returns whether it all went. */
static int send_too_many(int fd)
{
	static const char body[] = "{\"error\": \"server busy: too many connections\"}\n";
	char msg[320];
	int n = snprintf(msg, sizeof msg, "HTTP/1.1 503 Service Unavailable\r\nDate: %s\r\n"
		"Content-Type: application/json\r\nContent-Length: %zu\r\nRetry-After: %d\r\n"
		"Connection: close\r\n\r\n%s", http_date, sizeof body - 1, RETRY_AFTER_S, body);
	return send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) == n;
}

/* Sends a 503 on a connection we cannot keep, without waiting, and closes it. */
static void refuse(int fd)
{
	if (send_too_many(fd))
		close_reading_what_came(fd);
	else
		close(fd);
	refused_unlogged++;
	if (now_ms - refused_logged_ms >= 1000) {
		log_line("503 refused %ld connection(s): the table is full and every client in it is busy",
			refused_unlogged);
		refused_logged_ms = now_ms;
		refused_unlogged = 0;
	}
}

/* How useful a client is to keep when the table is full, lowest first:
 * one that was answered and only lingers, then one idle between requests
 * (or connected and silent), then one sending a head or body; one with a
 * request in a worker or an answer being written is never displaced. */
enum keep_rank { KEEP_LINGERING, KEEP_IDLE, KEEP_SENDING, KEEP_ALWAYS };

static enum keep_rank keep_rank_of(const struct conn *c)
{
	if (c->state == CONN_LINGER)
		return KEEP_LINGERING;
	if (c->state == CONN_READ_HEAD && holds_no_request(c))
		return KEEP_IDLE;
	if (c->state == CONN_READ_HEAD || c->state == CONN_READ_BODY)
		return KEEP_SENDING;
	return KEEP_ALWAYS;
}

/* Whether a is less useful than b, of the same rank: the one idle longest
 * (its idle deadline is the nearest; then the one that began waiting
 * first), or the one sending slowest (fewest bytes a second since its
 * request began). */
static int less_useful(const struct conn *a, const struct conn *b, enum keep_rank rank)
{
	int64_t now_us = now_ms * 1000 + 1000;   /* (now_ms is rounded down) */
	if (rank != KEEP_SENDING)
		return a->deadline < b->deadline ||
		       (a->deadline == b->deadline && a->started_us < b->started_us);
	return (double)a->in_len / (double)(now_us - a->started_us) <
	       (double)b->in_len / (double)(now_us - b->started_us);
}

/* The client a newcomer displaces when the table is full; NULL if all are
 * busy with a worker or an answer. A scan of the table: it runs only when
 * the table is full, once per newcomer. */
static struct conn *least_useful_client(void)
{
	struct conn *best = NULL;
	enum keep_rank best_rank = KEEP_ALWAYS;
	int fd;
	for (fd = 0; fd <= max_conn_fd; fd++) {
		struct conn *c = conns[fd];
		enum keep_rank rank;
		if (!c)
			continue;
		rank = keep_rank_of(c);
		if (rank < best_rank || (rank == best_rank && rank != KEEP_ALWAYS && less_useful(c, best, rank))) {
			best = c;
			best_rank = rank;
		}
	}
	return best_rank == KEEP_ALWAYS ? NULL : best;
}

/* Says how many clients were displaced, at most once a second: at once
 * for the first, and on the loop's next turn a second later for the rest. */
static void log_displaced(void)
{
	if (displaced_unlogged == 0 || now_ms - displaced_logged_ms < 1000)
		return;
	log_line("connection table full: %ld client(s) displaced by new ones (the lingering and "
		"idle first, then the slowest senders)", displaced_unlogged);
	displaced_logged_ms = now_ms;
	displaced_unlogged = 0;
}

/* Closes a client to make room: an idle or lingering one just closes (a
 * server may close an idle connection at any time, RFC 9112 9.6, and
 * clients retry); one sending a request gets the 503 of a full table. */
static void displace(struct conn *c)
{
	char sink[4096];
	int reads = 0;
	if (keep_rank_of(c) == KEEP_SENDING && send_too_many(c->fd))
		while (reads++ < 16 && recv(c->fd, sink, sizeof sink, MSG_DONTWAIT) > 0)
			continue;           /* (unread input would turn the close into a reset) */
	conn_close(c);
	displaced_unlogged++;
	log_displaced();
}

/* A newcomer whose descriptor is past client_fd_limit takes the place of
 * the least useful client, under that client's number (dup2), so select()
 * can watch it and the numbers above stay free for workers. Returns the
 * number, or -1 when nobody could be displaced (the newcomer is refused). */
static int make_room(int fd)
{
	struct conn *victim = least_useful_client();
	int place;
	if (!victim) {
		refuse(fd);
		return -1;
	}
	place = victim->fd;
	displace(victim);
	if (dup2(fd, place) != place) {
		close(fd);
		return -1;
	}
	close(fd);
	return place;
}

/* Descriptors below FD_SETSIZE (and the file limit) are shared out at
 * start: every worker's two pipe ends, and room to open two new pipes for a
 * respawn, are kept above client_fd_limit; clients get the numbers below
 * it. So a full table never stops a worker from being replaced. */
static void client_limit_for_workers(void)
{
	struct rlimit rl;
	long top = FD_SETSIZE;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)top)
		top = (long)rl.rlim_cur;
	client_fd_limit = (int)(top - (long)cfg.workers * FDS_PER_WORKER - FDS_FOR_RESPAWN -
		(cfg.multi_model ? LOADS_AT_ONCE + 1 : 0));  /* a pipe per loader; one being opened */
}

static void accept_clients(void)
{
	int i;
	for (i = 0; i < ACCEPTS_PER_TURN; i++) {
		int fd = accept(listen_fd, NULL, NULL), one = 1;
		struct conn *c;
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				/* Out of descriptors: the pending connection would keep the
				 * listener readable and spin the loop. Free the spare, take
				 * the connection, refuse it, and take the spare back. */
				if (reserve_fd >= 0) {
					close(reserve_fd);
					reserve_fd = -1;
					fd = accept(listen_fd, NULL, NULL);
					if (fd >= 0)
						refuse(fd);
					reserve_fd = dup(listen_fd);
				}
			}
			return;
		}
		/* Past the clients' numbers (select() watches below FD_SETSIZE;
		 * the numbers above the limit are the workers'): displace one. */
		if (fd >= client_fd_limit && (fd = make_room(fd)) < 0)
			continue;
		if (set_nonblocking(fd) != 0) {
			refuse(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (!(c = conn_new(fd)))
			refuse(fd);
		else
			c->started_us = monotonic_us();  /* idle since: see less_useful */
	}
}

/* ======================================================================== */
/* 19. Signals: handlers only write a byte to the self-pipe; the loop acts. */
/* ======================================================================== */

static void on_signal(int sig)
{
	int saved = errno;
	char b = (char)sig;
	ssize_t r;
	if (sig == SIGTERM || sig == SIGINT)
		stop_signals++;
	r = write(signal_pipe[1], &b, 1);
	(void)r;
	errno = saved;
}

static void install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	/* Signals whose default is to end the process, which an init (docker
	 * run --init, tini) or a supervisor may pass on: logged and ignored, so
	 * only SIGTERM and SIGINT stop the server, and always with a drain. */
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);       /* a client gone mid-write is an EPIPE, not death */
}

/* Reaps every exited child (we are PID 1 in the image: nobody else will). */
static void reap_children(void)
{
	int st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		int i, loader = mm_child_reaped(pid);
		for (i = 0; i < cfg.workers; i++) {
			if (workers[i].pid != pid || pid <= 0)
				continue;
			workers[i].pid = -pid;   /* reaped: never signal this pid again */
			if (workers[i].conn)
				worker_fail(&workers[i], 500, "the model worker crashed during the request");
			else {
				worker_forget(&workers[i]);
				worker_spawn(i);
			}
		}
		if (WIFSIGNALED(st) && !draining)
			log_line("%s %ld ended by signal %d", loader ? "model loader" : "worker", (long)pid,
				WTERMSIG(st));
	}
	if (cfg.multi_model && mm_waiting_head)
		mm_start_loads();           /* a killed loader's slot may be free now */
}

static void begin_drain(void)
{
	int fd;
	if (draining)
		return;
	draining = 1;
	log_line("SIGTERM: draining in-flight requests, then exiting");
	if (cfg.multi_model)
		mm_drain();
	if (listen_fd >= 0) {
		close(listen_fd);
		listen_fd = -1;
	}
	if (reserve_fd >= 0) {          /* a dup of the listener: it would keep it open */
		close(reserve_fd);
		reserve_fd = -1;
	}
	for (fd = 0; fd <= max_conn_fd; fd++) {
		struct conn *c = conns[fd];
		if (c && c->state == CONN_READ_HEAD && holds_no_request(c))
			conn_close(c);           /* idle keep-alive connections */
	}
}

static void handle_signals(void)
{
	char buf[64];
	ssize_t n, i;
	while ((n = read(signal_pipe[0], buf, sizeof buf)) > 0)
		for (i = 0; i < n; i++)
			if (buf[i] == SIGHUP || buf[i] == SIGUSR1 || buf[i] == SIGUSR2 || buf[i] == SIGALRM)
				log_line("signal %d ignored (only SIGTERM and SIGINT stop the server)", buf[i]);
	reap_children();
	if (stop_signals > 0)
		begin_drain();
}

/* ======================================================================== */
/* 20. The loop                                                             */
/* ======================================================================== */

static void watch(int fd, fd_set *set, int *maxfd)
{
	FD_SET(fd, set);
	if (fd > *maxfd)
		*maxfd = fd;
}

static int64_t earlier(int64_t a, int64_t b)
{
	return (a == 0 || (b != 0 && b < a)) ? b : a;
}

/* Builds the descriptor sets from each connection's and worker's state,
 * and returns the nearest deadline (0 if none). */
static int64_t build_sets(fd_set *rd, fd_set *wr, int *maxfd)
{
	int64_t next = 0;
	int fd, i;
	FD_ZERO(rd);
	FD_ZERO(wr);
	*maxfd = -1;
	watch(signal_pipe[0], rd, maxfd);
	if (listen_fd >= 0)
		watch(listen_fd, rd, maxfd);
	if (log_descriptor(&log_err) >= 0)     /* log lines waiting for their reader */
		watch(log_descriptor(&log_err), wr, maxfd);
	if (log_descriptor(&log_out) >= 0)
		watch(log_descriptor(&log_out), wr, maxfd);
	for (i = 0; i < cfg.workers; i++) {
		struct worker *w = &workers[i];
		if (w->pid <= 0)
			continue;
		watch(w->from_worker, rd, maxfd);   /* replies, and EOF when it dies */
		if (sending(w))
			watch(w->to_worker, wr, maxfd);
		if (w->conn)
			next = earlier(next, w->deadline);
	}
	for (fd = 0; fd <= max_conn_fd; fd++) {
		struct conn *c = conns[fd];
		if (!c)
			continue;
		if (c->state == CONN_READ_HEAD || c->state == CONN_READ_BODY || c->state == CONN_LINGER)
			watch(fd, rd, maxfd);
		if (has_pending_output(c))
			watch(fd, wr, maxfd);
		next = earlier(next, c->deadline);
		next = earlier(next, c->release_at);
	}
	if (cfg.multi_model)
		mm_watch(rd, maxfd, &next);
	return next;
}

static void check_deadlines(void)
{
	int fd, i;
	for (i = 0; i < cfg.workers; i++) {
		struct worker *w = &workers[i];
		if (w->pid > 0 && w->conn && now_ms >= w->deadline) {
			char msg[96];
			if (w->conn->streaming)
				snprintf(msg, sizeof msg, "the model's streamed answer did not end within %d s",
					cfg.stream_timeout_s);
			else
				snprintf(msg, sizeof msg, "the model did not answer within %d s", cfg.timeout_s);
			worker_fail(w, 504, msg);
		}
		if (w->pid > 0 && !w->conn)
			release_idle_region(w);
	}
	for (fd = 0; fd <= max_conn_fd; fd++) {
		struct conn *c = conns[fd];
		if (c && c->release_at && now_ms >= c->release_at)
			conn_release_buffer(c);
		if (c && c->deadline && now_ms >= c->deadline)
			conn_timeout(c);
	}
	if (cfg.multi_model)
		mm_check();
}

/* Writes a stream's waiting log lines if select() saw its reader ready. */
static void flush_log_if_ready(struct log_stream *s, fd_set *wr)
{
	int fd = log_descriptor(s);
	if (fd >= 0 && FD_ISSET(fd, wr))
		log_flush(s);
}

static void handle_events(fd_set *rd, fd_set *wr)
{
	int fd, i;
	flush_log_if_ready(&log_err, wr);
	flush_log_if_ready(&log_out, wr);
	if (listen_fd >= 0 && FD_ISSET(listen_fd, rd))
		accept_clients();
	for (i = 0; i < cfg.workers; i++) {
		struct worker *w = &workers[i];
		if (w->pid > 0 && FD_ISSET(w->to_worker, wr) && sending(w))
			worker_send(w);
		if (w->pid > 0 && FD_ISSET(w->from_worker, rd))
			worker_receive(w);
	}
	for (fd = 0; fd <= max_conn_fd; fd++) {
		if (conns[fd] && FD_ISSET(fd, wr) && has_pending_output(conns[fd]))
			if (conn_write(conns[fd]) != 0)
				continue;
		if (conns[fd] && FD_ISSET(fd, rd))
			conn_read(conns[fd]);
	}
	if (cfg.multi_model)
		mm_events(rd);
	/* Signals last: a request that arrived with SIGTERM is read before the
	 * drain closes idle connections, and a worker respawned by SIGCHLD gets
	 * descriptors this pass's sets know nothing of. */
	if (FD_ISSET(signal_pipe[0], rd))
		handle_signals();
}

static void event_loop(void)
{
	log_start();
	client_limit_for_workers();
	for (;;) {
		fd_set rd, wr;
		int maxfd, n;
		int64_t next;
		struct timeval tv;
		now_ms = monotonic_us() / 1000;
		update_http_date();
		if (draining) {
			if (max_conn_fd < 0 || stop_signals > 1 || now_ms >= drain_deadline)
				return;
		}
		next = build_sets(&rd, &wr, &maxfd);
		/* Wake at least once a second: the Date header and worker respawns. */
		if (next == 0 || next > now_ms + 1000)
			next = now_ms + 1000;
		if (draining && next > drain_deadline)
			next = drain_deadline;
		tv.tv_sec = (time_t)((next - now_ms) / 1000);
		tv.tv_usec = (suseconds_t)(((next - now_ms) % 1000) * 1000);
		if (next < now_ms)
			tv.tv_sec = 0, tv.tv_usec = 0;
		n = wait_for_events(maxfd, &rd, &wr, &tv);
		if (n < 0 && errno != EINTR) {
			log_line("select: %s", strerror(errno));
			return;
		}
		now_ms = monotonic_us() / 1000;
		update_http_date();
		if (n > 0)
			handle_events(&rd, &wr);
		if (draining && drain_deadline == 0)
			drain_deadline = now_ms + (int64_t)DRAIN_LIMIT_S * 1000;
		check_deadlines();
		check_waiting_clients();
		log_displaced();            /* (the rest of a second's count) */
		/* Draining, a worker lost to a client gone is still replaced while
		 * requests wait for one (worker_fail replaces its own at once). */
		if (!draining || queue.head)
			respawn_missing_workers();
	}
}

static void close_all_connections(void)
{
	int fd;
	for (fd = 0; fd <= max_conn_fd; fd++)
		if (conns[fd])
			conn_close(conns[fd]);
}

/* ======================================================================== */
/* 21. Speed-ups: each is optional (the server is correct without it) and   */
/*     earns its place by a measured figure (docs/performance.md,           */
/*     "Speed-ups", and the bench/ script named with each)                  */
/* ======================================================================== */

/* ---- SCHED_BATCH for workers ----
 * Why: a worker woken with a request must not preempt the loop, which
 * answers /ping and accepts connections (REQ-26: /ping within 2 s; REQ-18:
 * accept within 250 ms); a loop preempted after each hand-off also serves
 * fewer requests: on two cores small invocations gain about a quarter (bash
 * bench/run.sh). Model work is CPU-bound and never waits on a person, which
 * is what SCHED_BATCH (sched(7)) is for: the worker keeps its full share of
 * the CPU, only wake-up preemption changes. Failure (a seccomp profile that
 * forbids it) changes nothing else. pthread_setschedparam, not
 * sched_setscheduler: musl's sched_setscheduler always fails (ENOSYS), and
 * the worker is a single thread either way. */
#ifdef __linux__
static void worker_mark_as_batch(void)
{
	struct sched_param param;
	memset(&param, 0, sizeof param);
	(void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &param);
}
#endif

/* ---- Keeping large buffers while they are used ----
 * Why: a batch transform sends large bodies back to back, and with musl's
 * malloc (the static build, the image) every large block freed is a munmap,
 * and the next one an mmap and a page fault per 4 KiB: a 1 MB batch ran
 * 15% slower in the loop and 40% slower in the worker without this (bash
 * bench/run.sh). A buffer grown past IN_BUF_KEEP is kept while requests stay
 * that large and given back once unused for IN_BUF_IDLE_RELEASE_MS. In the
 * loop it stays charged to --max-buffered-mb, and goes back at once if that
 * runs short. */
static void keep_buffer_a_while(struct conn *c)
{
	c->release_at = now_ms + IN_BUF_IDLE_RELEASE_MS;
}

/* Gives back a large input buffer kept after a request, if the connection
 * is between requests (what may have arrived of the next head is kept). */
static void conn_release_buffer(struct conn *c)
{
	c->release_at = 0;
	if (c->state == CONN_READ_HEAD && c->in_cap > IN_BUF_KEEP && c->in_len <= IN_BUF_INITIAL)
		conn_resize(c, IN_BUF_INITIAL);
}

/* The budget ran short: first take back every kept buffer of an idle
 * connection. Returns whether anything was released. */
static int release_idle_buffers(void)
{
	size_t before = buffered_bytes;
	int fd;
	for (fd = 0; fd <= max_conn_fd; fd++)
		if (conns[fd] && conns[fd]->release_at)
			conn_release_buffer(conns[fd]);
	return buffered_bytes < before;
}

/* A worker's shared region, the same way: if its last request used more
 * than IN_BUF_KEEP of it and the worker stays idle for
 * IN_BUF_IDLE_RELEASE_MS, the pages go back to the kernel (MADV_REMOVE
 * frees shared pages, for the worker too; MADV_DONTNEED would only unmap
 * them here). The loop does it, not the worker: only the loop knows that no
 * body is being copied in (a worker that timed its own wait freed a body
 * the loop was copying, and the model read zeros). Where it is refused,
 * the pages stay, as a buffer would. */
static void release_idle_region(struct worker *w)
{
	if (w->region_used <= IN_BUF_KEEP)
		return;
	if (w->region_release_at == 0) {
		w->region_release_at = now_ms + IN_BUF_IDLE_RELEASE_MS;
		return;
	}
	if (now_ms < w->region_release_at)
		return;
#ifdef MADV_REMOVE
	(void)madvise(w->region, region_size(), MADV_REMOVE);
#endif
	w->region_used = 0;
	w->region_release_at = 0;
}

/* Whether a request starts to arrive (or the pipe closes) within ms. The
 * worker waits on this one descriptor with poll, not select: the loop may
 * hold so many connections when it forks a worker that the pipe's number is
 * past FD_SETSIZE. */
static int request_within(int fd, int ms)
{
	struct pollfd p;
	int n;
	p.fd = fd;
	p.events = POLLIN;
	while ((n = poll(&p, 1, ms)) < 0 && errno == EINTR)
		;
	return n != 0;
}

/* ---- Waiting briefly for quick answers ----
 * Why: one-record invocations run about a tenth faster (bash bench/ab.sh);
 * see wait_for_events. */
static void note_answer_time(struct worker *w)
{
	w->quick = monotonic_us() - w->handed_us < QUICK_ANSWER_US;
}

/* Fills in the reply pipes of the workers running a request, if every one
 * of them answered its last request quickly and was given this one less than
 * QUICK_ANSWER_US ago; returns how many (0: no quick answer is due). */
static int quick_answers_due(struct pollfd *replies)
{
	int64_t now_us = monotonic_us();
	int i, n = 0;
	for (i = 0; i < cfg.workers; i++) {
		const struct worker *w = &workers[i];
		if (w->pid <= 0 || !w->conn)
			continue;
		if (!w->quick || now_us - w->handed_us >= QUICK_ANSWER_US)
			return 0;
		replies[n].fd = w->from_worker;
		replies[n++].events = POLLIN;
	}
	return n;
}

/* select() on the sets until the time in tv, after a short wait for quick
 * answers. A model that answers in microseconds (the echo plug-in, the
 * default model or XGBoost on one record) is often done sooner than the loop
 * could fall asleep in select() and be woken by the reply, which costs the
 * loop more than the answer did. So while such answers are due, the loop
 * gives its CPU away (sched_yield), often to the very worker it just handed
 * a request, and looks at the workers' reply pipes alone, until one has a
 * reply or QUICK_ANSWER_US have passed since a request was handed out.
 * Yielding to a worker delays the loop until that worker blocks, which is
 * why only workers whose last answers were quick count: yielding to a model
 * that computes for milliseconds would hold /ping up for as long. */
static int wait_for_events(int maxfd, fd_set *rd, fd_set *wr, struct timeval *tv)
{
	struct pollfd replies[MAX_WORKERS];
	int n;
	while ((n = quick_answers_due(replies)) > 0) {
		sched_yield();
		if (poll(replies, (nfds_t)n, 0) != 0)
			break;
	}
	return select(maxfd + 1, rd, wr, NULL, tv);
}

/* ======================================================================== */
/* 22. Options, start-up and main                                           */
/* ======================================================================== */

START_ONLY static void usage(FILE *f)
{
	fprintf(f,
		"usage: smserve [serve] [options]\n"
		"  --port N             listen port (env SAGEMAKER_BIND_TO_PORT; default 8080)\n"
		"  --model-dir DIR      model directory (default /opt/ml/model)\n"
		"  --workers N          model worker processes (env SAGEMAKER_MODEL_SERVER_WORKERS;\n"
		"                       default: the CPUs it may run on)\n"
		"  --timeout S          invocation timeout in seconds (env SAGEMAKER_MODEL_SERVER_TIMEOUT\n"
		"                       or ..._TIMEOUT_SECONDS; default 60, in batch 600)\n"
		"  --max-body-mb N      request body limit in MiB (env SAGEMAKER_MAX_PAYLOAD_IN_MB; default 6)\n"
		"  --max-response-mb N  model answer limit in MiB (default 0: none; answers stream)\n"
		"  --stream-timeout S   how long a streamed answer may run (default 480)\n"
		"  --max-buffered-mb N  request bodies and unread answers in memory, MiB (default 256)\n"
		"  --queue N            requests waiting for a worker before 503 (default 1024)\n"
		"  --idle-timeout S     keep-alive idle timeout (default 75)\n"
		"  --header-timeout S   time allowed for a request head (default 30)\n"
		"  --body-timeout S     longest pause in a body read; time to take an answer (default 60)\n"
		"  --min-body-rate N    bytes/s a body must average after its first --body-timeout s\n"
		"                       (default 1024; 0: no minimum)\n"
		"  --no-access-log      no line per request (env SMSERVE_ACCESS_LOG=off)\n"
		"  --multi-model        start with no model; load them with POST /models\n"
		"                       (env SAGEMAKER_MULTI_MODEL=true)\n"
		"  --max-models N       multi-model: models loaded at once (default 10000)\n"
		"  --max-model-mb N     multi-model: the most one model may occupy (default 256)\n"
		"  --model-budget-mb N  multi-model: what all models may occupy (env\n"
		"                       SAGEMAKER_MODEL_BUDGET_MB; default: the container's memory\n"
		"                       limit, else what is available, less a tenth, at least 256)\n"
		"  --load-timeout S     multi-model: how long one model may take to load (default 120)\n"
		"  --healthcheck        GET /ping on the local port; exit 0 if 200, else 1\n"
		"  --help, --version\n"
		"Options that take a value accept it as --port 8080 or --port=8080.\n"
		"Environment: SAGEMAKER_BATCH=true|false (batch transform: timeout 600 s),\n"
		"  SAGEMAKER_CONTAINER_LOG_LEVEL=10..50 or DEBUG|INFO|WARNING|ERROR|CRITICAL\n"
		"  (above INFO: no access log).\n");
}

/* The CPUs this process may run on: in a container given some of the host's
 * CPUs (docker --cpuset-cpus, Kubernetes' static CPU manager), those, as
 * nproc(1) counts them, not every CPU online. */
static long usable_cpus(void)
{
#ifdef __linux__
	/* 8192 bits: the kernel refuses a mask shorter than the CPUs it was
	 * built for (NR_CPUS), which is 8192 at the most on x86-64. */
	unsigned long mask[8192 / (8 * sizeof(unsigned long))] = { 0 };
	void *mask_arg = mask;          /* cpu_set_t * where _GNU_SOURCE is defined */
	long n = 0;
	size_t i;
	if (sched_getaffinity(0, sizeof mask, mask_arg) != 0)
		return 1;
	for (i = 0; i < sizeof mask / sizeof mask[0]; i++)
		for (; mask[i]; mask[i] &= mask[i] - 1)  /* clears the lowest set bit */
			n++;
	return n;
#else
	return sysconf(_SC_NPROCESSORS_ONLN);
#endif
}

/* A bad flag or setting exits 2 with a message naming it; under
 * --healthcheck, 1: a health check's answer is 0 or 1 (docker reserves 2). */
static int bad_setting_exit = 2;

/* Parses a decimal integer in [lo, hi] or exits naming the setting. */
static long parse_number(const char *what, const char *s, long lo, long hi)
{
	long v = 0;
	const char *p = s;
	if (!s || !*s)
		goto bad;
	for (; *p; p++) {
		if (*p < '0' || *p > '9' || v > (LONG_MAX - 9) / 10)
			goto bad;
		v = v * 10 + (*p - '0');
	}
	if (v < lo || v > hi)
		goto bad;
	return v;
bad:
	fprintf(stderr, "smserve: invalid value '%s' for %s (expected a whole number from %ld to %ld)\n",
		s ? s : "", what, lo, hi);
	exit(bad_setting_exit);
}

/* A SageMaker switch: "true" or "false" in any case (the platform sets
 * "true"), or 1 or 0; anything else exits 2 naming the setting. */
static int parse_boolean(const char *what, const char *s)
{
	if (!strcasecmp(s, "true") || !strcmp(s, "1"))
		return 1;
	if (!strcasecmp(s, "false") || !strcmp(s, "0"))
		return 0;
	fprintf(stderr, "smserve: invalid value '%s' for %s (expected true or false)\n", s, what);
	exit(bad_setting_exit);
}

/* SAGEMAKER_CONTAINER_LOG_LEVEL holds a Python logging level, as the AWS
 * toolkits read it: a number (20) or a name (INFO, any case). Anything else
 * exits 2, as other bad settings do. */
#define LOG_LEVEL_INFO 20
static long parse_log_level(const char *s)
{
	static const struct {
		const char *name;
		long level;
	} names[] = { { "NOTSET", 0 }, { "DEBUG", 10 }, { "INFO", LOG_LEVEL_INFO }, { "WARNING", 30 },
		      { "WARN", 30 }, { "ERROR", 40 }, { "CRITICAL", 50 }, { "FATAL", 50 } };
	size_t i;
	for (i = 0; i < sizeof names / sizeof names[0]; i++)
		if (!strcasecmp(s, names[i].name))
			return names[i].level;
	for (i = 0; s[i] >= '0' && s[i] <= '9' && i < 4; i++)
		continue;
	if (i > 0 && s[i] == '\0')
		return strtol(s, NULL, 10);
	fprintf(stderr, "smserve: invalid value '%s' for SAGEMAKER_CONTAINER_LOG_LEVEL (expected a "
		"logging level: a whole number such as 20 or 30, or DEBUG, INFO, WARNING, ERROR or "
		"CRITICAL)\n", s);
	exit(bad_setting_exit);
}

static void read_environment(void)
{
	const char *v;
	if ((v = getenv("SAGEMAKER_BIND_TO_PORT")) && *v)
		cfg.port = (int)parse_number("SAGEMAKER_BIND_TO_PORT", v, 1, 65535);
	if ((v = getenv("SAGEMAKER_MODEL_SERVER_WORKERS")) && *v)
		cfg.workers = (int)parse_number("SAGEMAKER_MODEL_SERVER_WORKERS", v, 1, MAX_WORKERS);
	if ((v = getenv("SAGEMAKER_BATCH")) && *v)  /* "true" in a batch transform (REQ-40) */
		cfg.batch = parse_boolean("SAGEMAKER_BATCH", v);
	if (cfg.batch)
		cfg.timeout_s = BATCH_TIMEOUT_S;
	if ((v = getenv("SAGEMAKER_MODEL_SERVER_TIMEOUT")) && *v)
		cfg.timeout_s = (int)parse_number("SAGEMAKER_MODEL_SERVER_TIMEOUT", v, 1, 86400);
	/* The name the AWS toolkit (MMS) and the LMI containers read. MMS reads
	 * the one above as minutes, smserve as seconds; this one is seconds for
	 * everyone, so it wins when both are set. */
	if ((v = getenv("SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS")) && *v)
		cfg.timeout_s = (int)parse_number("SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS", v, 1, 86400);
	if ((v = getenv("SAGEMAKER_MAX_PAYLOAD_IN_MB")) && *v) {
		/* 0 means "arbitrarily large, sent chunked" (REQ-50): the memory
		 * budget is then the only limit. */
		long mb = parse_number("SAGEMAKER_MAX_PAYLOAD_IN_MB", v, 0, 65536);
		cfg.max_body = mb ? (size_t)mb * MIB : 0;
	}
	/* The body limit AWS's framework containers read, in bytes (Autopilot
	 * sets 20971520): it raises the server's limit, never lowers it; a plug-in
	 * that answers as those containers do refuses what is over it itself. */
	if ((v = getenv("MAX_CONTENT_LENGTH")) && *v) {
		size_t bytes = (size_t)parse_number("MAX_CONTENT_LENGTH", v, 1, 1073741824);
		if (cfg.max_body != 0 && bytes > cfg.max_body)
			cfg.max_body = bytes;
	}
	if ((v = getenv("SAGEMAKER_MULTI_MODEL")) && *v)  /* CreateModel Mode=MultiModel (REQ-57) */
		cfg.multi_model = parse_boolean("SAGEMAKER_MULTI_MODEL", v);
	if ((v = getenv("SAGEMAKER_MODEL_BUDGET_MB")) && *v)
		cfg.model_budget = (size_t)parse_number("SAGEMAKER_MODEL_BUDGET_MB", v, 1, 1L << 26) * MIB;
	if ((v = getenv("SMSERVE_ACCESS_LOG")) && (!strcmp(v, "off") || !strcmp(v, "0")))
		cfg.access_log = 0;
	/* The AWS toolkits' level: above INFO, the line per request (an INFO
	 * line) goes. */
	if ((v = getenv("SAGEMAKER_CONTAINER_LOG_LEVEL")) && *v && parse_log_level(v) > LOG_LEVEL_INFO)
		cfg.access_log = 0;
}

/* Whether an option takes a value. */
static int takes_value(const char *name)
{
	static const char *const with_value[] = { "--port", "--model-dir", "--workers", "--timeout",
		"--max-body-mb", "--max-response-mb", "--max-buffered-mb", "--queue", "--idle-timeout",
		"--header-timeout", "--body-timeout", "--stream-timeout",
		"--min-body-rate", "--max-models", "--max-model-mb", "--model-budget-mb", "--load-timeout" };
	size_t i;
	for (i = 0; i < sizeof with_value / sizeof with_value[0]; i++)
		if (!strcmp(name, with_value[i]))
			return 1;
	return 0;
}

/* Whether an option is a known flag (one that takes no value). */
static int is_flag(const char *name)
{
	return !strcmp(name, "--no-access-log") || !strcmp(name, "--healthcheck") ||
	       !strcmp(name, "--multi-model") ||
	       !strcmp(name, "--help") || !strcmp(name, "--version");
}

/* Reads the option at argv[*i] into name, and returns its value: after an
 * '=' (--port=8080) or the next argument (--port 8080); NULL for an option
 * that takes none. Exits 2 when a value is missing or not wanted. */
static const char *next_option(int argc, char **argv, int *i, char *name, size_t size)
{
	const char *arg = argv[*i], *eq = strchr(arg, '=');
	size_t len = eq && !strncmp(arg, "--", 2) ? (size_t)(eq - arg) : strlen(arg);
	snprintf(name, size, "%.*s", (int)(len < size ? len : size - 1), arg);
	if (len >= size)
		name[0] = '\0';             /* too long to be an option: unknown */
	if (!takes_value(name)) {
		if (len < strlen(arg) && is_flag(name)) {
			fprintf(stderr, "smserve: %s takes no value\n", name);
			exit(bad_setting_exit);
		}
		return NULL;
	}
	if (len + 1 < strlen(arg))
		return arg + len + 1;
	if (len < strlen(arg)) {
		fprintf(stderr, "smserve: %s needs a value\n", name);
		exit(bad_setting_exit);
	}
	if (*i + 1 >= argc) {
		fprintf(stderr, "smserve: %s needs a value\n", name);
		exit(bad_setting_exit);
	}
	return argv[++*i];
}

static int parse_options(int argc, char **argv)
{
	int i = 1, healthcheck = 0;
	size_t max_buffered_mb = 0;
	if (i < argc && !strcmp(argv[i], "serve"))
		i++;
	else if (i < argc && !strcmp(argv[i], "train")) {
		fprintf(stderr, "smserve: this image serves models and cannot train; "
			"SageMaker ran it with 'train'\n");
		exit(bad_setting_exit);
	}
	for (; i < argc; i++) {
		char a[32];
		const char *v = next_option(argc, argv, &i, a, sizeof a);
		if (!strcmp(a, "--port"))
			cfg.port = (int)parse_number("--port", v, 1, 65535);
		else if (!strcmp(a, "--model-dir"))
			cfg.model_dir = v;
		else if (!strcmp(a, "--workers"))
			cfg.workers = (int)parse_number("--workers", v, 1, MAX_WORKERS);
		else if (!strcmp(a, "--timeout"))
			cfg.timeout_s = (int)parse_number("--timeout", v, 1, 86400);
		else if (!strcmp(a, "--max-body-mb"))
			cfg.max_body = (size_t)parse_number("--max-body-mb", v, 1, 65536) * MIB;
		else if (!strcmp(a, "--max-response-mb"))
			cfg.max_response = (size_t)parse_number("--max-response-mb", v, 0, 65536) * MIB;
		else if (!strcmp(a, "--stream-timeout"))
			cfg.stream_timeout_s = (int)parse_number("--stream-timeout", v, 1, 86400);
		else if (!strcmp(a, "--max-buffered-mb"))
			max_buffered_mb = (size_t)parse_number("--max-buffered-mb", v, 1, 1048576);
		else if (!strcmp(a, "--queue"))
			cfg.queue_max = (int)parse_number("--queue", v, 0, 1000000);
		else if (!strcmp(a, "--idle-timeout"))
			cfg.idle_timeout_s = (int)parse_number("--idle-timeout", v, 1, 86400);
		else if (!strcmp(a, "--header-timeout"))
			cfg.header_timeout_s = (int)parse_number("--header-timeout", v, 1, 86400);
		else if (!strcmp(a, "--body-timeout"))
			cfg.body_timeout_s = (int)parse_number("--body-timeout", v, 1, 86400);
		else if (!strcmp(a, "--min-body-rate"))
			min_body_rate = parse_number("--min-body-rate", v, 0, 1L << 30);
		else if (!strcmp(a, "--no-access-log"))
			cfg.access_log = 0;
		else if (!strcmp(a, "--multi-model"))
			cfg.multi_model = 1;
		else if (!strcmp(a, "--max-models"))
			cfg.max_models = (int)parse_number("--max-models", v, 1, 1000000);
		else if (!strcmp(a, "--max-model-mb"))
			cfg.max_model_bytes = (size_t)parse_number("--max-model-mb", v, 1, 1L << 20) * MIB;
		else if (!strcmp(a, "--model-budget-mb"))
			cfg.model_budget = (size_t)parse_number("--model-budget-mb", v, 1, 1L << 26) * MIB;
		else if (!strcmp(a, "--load-timeout"))
			cfg.load_timeout_s = (int)parse_number("--load-timeout", v, 1, 86400);
		else if (!strcmp(a, "--healthcheck"))
			healthcheck = 1;
		else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(a, "--version")) {
			printf("smserve %s (model API %d, plug-in %s)\n", SMSERVE_VERSION,
				SMSERVE_MODEL_API_VERSION, model_plugin_name);
			exit(0);
		} else {
			fprintf(stderr, "smserve: unknown argument '%s'\n", argv[i]);
			usage(stderr);
			exit(bad_setting_exit);
		}
	}
	if (max_buffered_mb)
		cfg.max_buffered = max_buffered_mb * MIB;
	if (cfg.max_body == 0)
		cfg.max_body = cfg.max_buffered;
	/* One largest body must always fit, with its head and chunk framing
	 * (conn_make_room's limits). */
	if (cfg.max_buffered < cfg.max_body + MAX_HEAD_BYTES + IN_BUF_KEEP)
		cfg.max_buffered = cfg.max_body + MAX_HEAD_BYTES + IN_BUF_KEEP;
	/* Every extent's addresses are reserved at once: 64 TiB is half of what
	 * x86-64 gives a process (10,000 models of 256 MiB take 2.4 TiB). */
	if (cfg.multi_model && (uint64_t)cfg.max_models * cfg.max_model_bytes > ((uint64_t)64 << 40)) {
		fprintf(stderr, "smserve: --max-models times --max-model-mb passes 64 TiB of addresses\n");
		exit(bad_setting_exit);
	}
	if (cfg.workers == 0) {
		long n = usable_cpus();
		cfg.workers = n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : (int)n;
	}
	return healthcheck;
}

/* --healthcheck says why it failed, on stderr: an orchestrator shows it
 * (docker inspect keeps a health check's output). Returns 1. */
START_ONLY static int healthcheck_failed(const char *what, const char *detail)
{
	fprintf(stderr, "smserve: healthcheck: %s on 127.0.0.1:%d: %s\n", what, cfg.port, detail);
	return 1;
}

/* --healthcheck: the image has no shell and no curl, so the binary checks
 * itself for orchestrators other than SageMaker (ECS, Kubernetes, docker):
 * GET /ping on the local port; exit 0 on a 200, else 1 with the reason. */
START_ONLY static int healthcheck(void)
{
	struct sockaddr_in a;
	struct timeval tv = { 2, 0 };
	char reply[64];
	static const char ping[] = "GET /ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
	ssize_t n;
	int saved, fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return healthcheck_failed("no socket", strerror(errno));
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)cfg.port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		saved = errno;
		close(fd);
		return healthcheck_failed("cannot connect", strerror(saved));
	}
	if (write(fd, ping, sizeof ping - 1) != (ssize_t)(sizeof ping - 1)) {
		saved = errno;
		close(fd);
		return healthcheck_failed("cannot send GET /ping", strerror(saved));
	}
	n = read(fd, reply, sizeof reply - 1);
	saved = errno;
	close(fd);
	if (n < 0)
		return healthcheck_failed("no answer to GET /ping", saved == EAGAIN ||
			saved == EWOULDBLOCK ? "none within 2 s" : strerror(saved));
	reply[n] = '\0';
	if (strncmp(reply, "HTTP/1.1 200 ", 13) == 0)
		return 0;
	reply[strcspn(reply, "\r\n")] = '\0';   /* the status line */
	return healthcheck_failed("GET /ping was not answered 200", n ? reply : "the connection closed");
}

static int open_listener(void)
{
	struct sockaddr_in a;
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)cfg.port);
	a.sin_addr.s_addr = htonl(INADDR_ANY);     /* SageMaker connects from outside */
	if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, SOMAXCONN) != 0 ||
	    set_nonblocking(fd) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	char err[1024] = "";
	int exit_code = 0;
	int i;
	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--healthcheck"))
			bad_setting_exit = 1;
	read_environment();
	if (parse_options(argc, argv))  /* flags win over the environment */
		return healthcheck();
	setvbuf(stdout, NULL, _IOLBF, 0);   /* one log line at a time (tty or not) */

#ifndef __linux__
	if (cfg.multi_model) {
		fprintf(stderr, "smserve: multi-model mode needs Linux (memfd_create, fallocate)\n");
		return 2;
	}
#endif
	/* A plug-in that answers differently behind a multi-model endpoint (as
	 * AWS's XGBoost container does) reads the mode where SageMaker puts it,
	 * also when --multi-model set it. */
	if (cfg.multi_model)
		setenv("SAGEMAKER_MULTI_MODEL", "true", 1);
	if (cfg.multi_model && mm_start() != 0) {
		fprintf(stderr, "smserve: cannot reserve memory for multi-model mode: %s\n", strerror(errno));
		return 1;
	}
	if (!cfg.multi_model)
		the_model = model_load(cfg.model_dir, err, sizeof err);
	if (!the_model && !cfg.multi_model) {
		fprintf(stderr, "smserve: cannot load the model from %s: %s\n", cfg.model_dir,
			err[0] ? err : "unknown error");
		return 1;
	}
	if (pipe(signal_pipe) != 0 || set_nonblocking(signal_pipe[0]) != 0 ||
	    set_nonblocking(signal_pipe[1]) != 0) {
		fprintf(stderr, "smserve: pipe: %s\n", strerror(errno));
		return 1;
	}
	install_signals();
	listen_fd = open_listener();
	if (listen_fd < 0) {
		fprintf(stderr, "smserve: cannot listen on port %d: %s\n", cfg.port, strerror(errno));
		return 1;
	}
	reserve_fd = dup(listen_fd);
	loop_pid = getpid();
	now_ms = monotonic_us() / 1000;
	update_http_date();
	if (start_workers() != 0) {
		fprintf(stderr, "smserve: cannot start model workers: %s\n", strerror(errno));
		return 1;
	}
	log_line("smserve %s (plug-in %s) listening on 0.0.0.0:%d model_dir=%s workers=%d "
		"timeout=%ds batch=%s stream_timeout=%ds max_body=%zu max_response=%zu queue=%d "
		"idle_timeout=%ds multi_model=%s",
		SMSERVE_VERSION, model_plugin_name, cfg.port,
		cfg.multi_model ? "-" : cfg.model_dir, /* multi-model: POST /models names each */
		cfg.workers, cfg.timeout_s,
		cfg.batch ? "on" : "off", cfg.stream_timeout_s, cfg.max_body, cfg.max_response,
		cfg.queue_max, cfg.idle_timeout_s, cfg.multi_model ? "on" : "off");
	if (cfg.multi_model)
		log_line("multi-model: max_models=%d max_model_mb=%zu model_budget_mb=%zu "
			"load_timeout=%ds", cfg.max_models, cfg.max_model_bytes / MIB,
			cfg.model_budget / MIB, cfg.load_timeout_s);

	event_loop();

	if (stop_signals > 1) {
		log_line("second signal: stopping now without draining");
		exit_code = 1;
	} else if (max_conn_fd >= 0) {
		log_line("drain limit of %d s reached: closing remaining connections", DRAIN_LIMIT_S);
	}
	close_all_connections();
	stop_workers();
	mm_stop();
	close_listener_and_signals();
	if (the_model)
		model_unload(the_model);
	log_line("stopped");
	return exit_code;
}
