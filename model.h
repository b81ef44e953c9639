/*
 * model.h - the whole plug-in API between smserve and a model.
 *
 * A plug-in is one C file that defines the name and the three functions at
 * the bottom of this header; `make MODEL=path/to/model.c` links it into the
 * server. It uses only libc, and talks to the server only through what is
 * declared here.
 *
 * Where each function runs:
 *
 *   model_load    once, in the main process, before any worker is forked.
 *                 Everything it allocates is shared copy-on-write by every
 *                 worker, so a model of 1 GB costs 1 GB, not 1 GB per worker.
 *   model_invoke  in a worker process, one request at a time. A worker never
 *                 runs two invocations at once, so the handle needs no locks.
 *                 A crash here costs only this request (a 500); the server
 *                 replaces the worker. A call that runs past the invocation
 *                 timeout is killed the same way.
 *   model_unload  once, in the main process, at shutdown.
 *
 * What model_invoke may keep: anything reachable from its handle. Writes to
 * the handle stay in that worker (copy-on-write) and vanish when the worker
 * is replaced, so use them only as caches. Memory it allocates per request
 * should be freed before it returns: a worker serves requests for hours.
 * Better still, allocate a request's work arrays in model_load and reuse
 * them: musl's malloc (the static build) unmaps a large block when it is
 * freed, so one allocated per request faults its pages in every time.
 *
 * How to answer:
 *   200 with a body   model_response_type(out, "application/json");
 *                     model_response_write(out, bytes, len);   (status 200
 *                     is the default)
 *   400 bad input     model_response_error(out, 400, "record 3: expected 4 features");
 *   415 content type  model_response_error(out, 415, "unsupported Content-Type ...");
 *   406 accept        model_response_error(out, 406, "cannot produce ...; supported: ...");
 *   500 a bug/state   model_response_error(out, 500, "...");
 * model_response_error replaces anything written so far with the JSON body
 * {"error": "<message>"} if nothing has been sent yet (after a flush, the
 * status is gone: the server ends the answer abnormally and logs the
 * message); keep messages short (SageMaker hands the body to
 * the caller, cut at 2048 characters) and free of internals.
 */
#ifndef SMSERVE_MODEL_H
#define SMSERVE_MODEL_H

#include <stddef.h>

#define SMSERVE_MODEL_API_VERSION 3

/* The plug-in's own state, defined by the plug-in (struct model { ... }). */
typedef struct model model;

/* One request header passed through to the plug-in (name as the client sent it). */
typedef struct model_header {
	const char *name;
	const char *value;
} model_header;

/* One /invocations request. Strings are NUL-terminated and never NULL: a
 * header the client did not send is "". The body is not NUL-terminated. */
typedef struct model_request {
	const char *content_type;      /* Content-Type, as sent */
	const char *accept;            /* Accept, as sent ("" or "*\/\*": no preference);
	                                * several Accept lines arrive joined by ", " */
	const char *custom_attributes; /* X-Amzn-SageMaker-Custom-Attributes */
	const model_header *headers;   /* every X-Amzn-SageMaker-* request header */
	size_t header_count;
	const unsigned char *body;
	size_t body_len;
} model_request;

/* The response under construction; owned by the server. */
typedef struct model_response model_response;

/* Sets the status (200 unless set; 200-599 are valid, 204 must have no body).
 * Returns 0, or -1 for a status out of range. */
int model_response_status(model_response *out, int status);

/* Sets Content-Type (printable ASCII, at most 255 bytes). Returns 0 or -1. */
int model_response_type(model_response *out, const char *content_type);

/* Sets X-Amzn-SageMaker-Custom-Attributes (visible ASCII and spaces, at most
 * 1024 bytes, returned to the caller verbatim). Returns 0 or -1. */
int model_response_custom_attributes(model_response *out, const char *value);

/* Appends bytes to the body. Returns 0, or -1 when the body would pass the
 * server's response limit (the server then answers 500; stop writing). */
int model_response_write(model_response *out, const void *data, size_t len);

/* Sends what has been written so far to the client now, without waiting for
 * the rest (a token of a generated text, a batch's first records). From the
 * first piece sent, the status, Content-Type and custom attributes are fixed
 * and the answer goes out in pieces (chunked, for HTTP/1.1). The server also
 * sends pieces by itself when an answer outgrows one piece (1 MiB), so
 * answers of any size keep the worker's memory flat. Returns 0, or -1 when
 * the answer can no longer be sent (stop writing). (Added in model API 3.) */
int model_response_flush(model_response *out);

/* Replaces the whole response with status and {"error": "<message>"}
 * (message escaped as JSON, cut to fit 2 KB). Returns 0 or -1. */
int model_response_error(model_response *out, int status, const char *message);

/* ---- what a plug-in defines ---------------------------------------------- */

/* The plug-in's name and version, one short line ("linear-learner 1.0"):
 * `smserve --version` and the start-up log line show it, so an operator can
 * tell which plug-in a binary carries. (Added in model API 2.) */
extern const char model_plugin_name[];

/* Loads the model from dir (SageMaker unpacks model.tar.gz into /opt/ml/model).
 * On failure returns NULL and writes a message naming the file and the reason
 * into err (err_size bytes, always NUL-terminated); the server then exits
 * non-zero so SageMaker replaces the instance. */
model *model_load(const char *dir, char *err, size_t err_size);

/* Answers one request through out. Runs in a worker process. */
void model_invoke(model *m, const model_request *req, model_response *out);

/* Frees everything model_load allocated. */
void model_unload(model *m);

#endif
