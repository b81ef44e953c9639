/*
 * examples/echo/model.c - the echo plug-in: the seed's Flask example in C.
 *
 * What it does. POST /invocations answers with the JSON document
 *
 *     {"prediction": "a", "text": "<the request body>"}
 *
 * byte for byte what the AWS sample Flask app (tests/peers/web_app_serve.py)
 * sends, which is Python's json.dumps({"prediction": "a", "text": s}) where
 * s = body.decode("utf8"). tests/echo_diff.sh runs both servers on the same
 * generated inputs and compares the bodies with cmp.
 *
 * Why it exists. It is the smallest complete plug-in: it needs no model
 * files, so it is what the test suite serves, and it shows the three things
 * every plug-in does: validate the input (400 on bad bytes), build the
 * answer, and write it through model_response_* without holding it all in
 * memory.
 *
 * Matching Python exactly means copying two of its defaults:
 *
 *   1. bytes.decode("utf8") is strict. It rejects what the Unicode standard
 *      calls ill-formed (Unicode 15, table 3-7): stray continuation bytes,
 *      overlong forms (C0, C1, E0 80..9F, F0 80..8F), UTF-16 surrogates
 *      encoded as UTF-8 (ED A0..BF), code points above U+10FFFF (F4 90..,
 *      F5..FF) and sequences cut short. It accepts everything else,
 *      including noncharacters such as U+FFFE and a leading BOM, which it
 *      keeps. Where Flask would answer 500 (an uncaught UnicodeDecodeError)
 *      we answer 400, naming the byte offset and Python's own reason.
 *
 *   2. json.dumps escapes with ensure_ascii=True, so the output is pure
 *      ASCII: `"` and `\` get a backslash; \b \f \n \r \t use their short
 *      escapes; every other byte below 0x20, DEL (0x7f) and every non-ASCII
 *      code point becomes \uXXXX with lowercase hex; code points above the
 *      BMP become a UTF-16 surrogate pair (U+1F600 -> \ud83d\ude00). `/` is
 *      left alone. The separators are ", " and ": ".
 *
 * One deliberate difference: Flask labels a str return value
 * "text/html; charset=utf-8"; we send "application/json", which is what the
 * body is. Clients compare bodies, and SageMaker passes Content-Type through.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../../model.h"

/* ---- the model handle -------------------------------------------------- */

/* The echo has no state, but the API wants a non-NULL handle. A static
 * object cannot fail to allocate and needs no freeing. (C11 forbids an
 * empty struct, hence the unused member.) */
struct model {
	int unused;
};

static model echo_model;

/* The directory is ignored: the echo needs no files, and SageMaker may
 * start a container without /opt/ml/model at all. */
const char model_plugin_name[] = "echo 1.0";

model *model_load(const char *dir, char *err, size_t err_size)
{
	(void)dir;
	if (err_size > 0)
		err[0] = '\0';
	return &echo_model;
}

void model_unload(model *m)
{
	(void)m; /* nothing was allocated */
}

/* ---- UTF-8 validation -------------------------------------------------- */

/*
 * Well-formed UTF-8 (Unicode table 3-7). The lead byte fixes the length and
 * the allowed range of the SECOND byte; every later byte is 80..BF. The
 * narrowed second-byte ranges are what exclude overlongs, surrogates and
 * code points past U+10FFFF:
 *
 *   lead     second   then          code points
 *   00..7F   -        -             U+0000..U+007F
 *   C2..DF   80..BF   -             U+0080..U+07FF
 *   E0       A0..BF   80..BF        U+0800..U+0FFF      (E0 80..9F: overlong)
 *   E1..EC   80..BF   80..BF        U+1000..U+CFFF
 *   ED       80..9F   80..BF        U+D000..U+D7FF      (ED A0..BF: surrogates)
 *   EE..EF   80..BF   80..BF        U+E000..U+FFFF
 *   F0       90..BF   80..BF x 2    U+10000..U+3FFFF    (F0 80..8F: overlong)
 *   F1..F3   80..BF   80..BF x 2    U+40000..U+FFFFF
 *   F4       80..8F   80..BF x 2    U+100000..U+10FFFF  (F4 90..BF: too big)
 *   80..C1, F5..FF: never a lead byte
 */
typedef struct utf8_lead {
	size_t len;                 /* bytes in the sequence; 0: not a lead byte */
	unsigned char lo, hi;       /* allowed range of the second byte */
} utf8_lead;

static utf8_lead lead_info(unsigned char b)
{
	if (b < 0x80) return (utf8_lead){1, 0, 0};
	if (b < 0xC2) return (utf8_lead){0, 0, 0};
	if (b < 0xE0) return (utf8_lead){2, 0x80, 0xBF};
	if (b == 0xE0) return (utf8_lead){3, 0xA0, 0xBF};
	if (b == 0xED) return (utf8_lead){3, 0x80, 0x9F};
	if (b < 0xF0) return (utf8_lead){3, 0x80, 0xBF};
	if (b == 0xF0) return (utf8_lead){4, 0x90, 0xBF};
	if (b < 0xF4) return (utf8_lead){4, 0x80, 0xBF};
	if (b == 0xF4) return (utf8_lead){4, 0x80, 0x8F};
	return (utf8_lead){0, 0, 0};
}

/* Checks that s[0..len) is well-formed UTF-8. Returns NULL if it is;
 * otherwise sets *bad to the offset of the first byte of the first
 * ill-formed sequence and returns Python's name for the fault, so the 400
 * says what `bytes.decode` would have said. */
static const char *utf8_check(const unsigned char *s, size_t len, size_t *bad)
{
	size_t i = 0;

	while (i < len) {
		utf8_lead l = lead_info(s[i]);
		size_t k;

		*bad = i;
		if (l.len == 0)
			return "invalid start byte";
		for (k = 1; k < l.len; k++) {
			unsigned char lo = k == 1 ? l.lo : 0x80;
			unsigned char hi = k == 1 ? l.hi : 0xBF;

			if (i + k >= len)
				return "unexpected end of data";
			if (s[i + k] < lo || s[i + k] > hi)
				return "invalid continuation byte";
		}
		i += l.len;
	}
	return NULL;
}

/* Decodes one code point of already-validated UTF-8 at s[*i] and advances
 * *i past it. Validation ran first, so no checks are needed here. */
static uint32_t utf8_next(const unsigned char *s, size_t *i)
{
	unsigned char b = s[*i];
	uint32_t cp;
	int n, k;

	if (b < 0x80) {
		*i += 1;
		return b;
	}
	if (b < 0xE0) { n = 2; cp = b & 0x1Fu; }
	else if (b < 0xF0) { n = 3; cp = b & 0x0Fu; }
	else { n = 4; cp = b & 0x07u; }
	for (k = 1; k < n; k++)
		cp = (cp << 6) | (s[*i + (size_t)k] & 0x3Fu);
	*i += (size_t)n;
	return cp;
}

/* ---- JSON escaping into a chunk buffer --------------------------------- */

/*
 * The output is built in a fixed buffer on the stack and handed to the
 * server a chunk at a time: one model_response_write per 16 KB instead of
 * one per byte, and no allocation sized by the input. The longest thing one
 * code point turns into is a surrogate pair, 12 bytes ("\ud83d\ude00"), so
 * the buffer is flushed whenever fewer than that are free.
 */
#define CHUNK_SIZE 16384
#define MAX_ESCAPE 12

typedef struct out_buf {
	model_response *out;
	size_t used;
	int failed;                 /* a write was refused: stop writing */
	char data[CHUNK_SIZE];
} out_buf;

/* Hands the buffered bytes to the server. After a refusal (the response
 * limit) every later flush is a no-op: the server answers 500 anyway. */
static void flush(out_buf *b)
{
	if (!b->failed && b->used > 0 &&
	    model_response_write(b->out, b->data, b->used) != 0)
		b->failed = 1;
	b->used = 0;
}

/* Makes room for at least n more bytes. */
static void reserve(out_buf *b, size_t n)
{
	if (CHUNK_SIZE - b->used < n)
		flush(b);
}

static void put_str(out_buf *b, const char *s)
{
	size_t n = strlen(s);

	reserve(b, n);
	memcpy(b->data + b->used, s, n);
	b->used += n;
}

/* Appends \uXXXX with lowercase hex, as Python's json module writes it. */
static void put_u16(out_buf *b, unsigned v)
{
	static const char hex[] = "0123456789abcdef";
	char *p = b->data + b->used;

	p[0] = '\\';
	p[1] = 'u';
	p[2] = hex[(v >> 12) & 0xF];
	p[3] = hex[(v >> 8) & 0xF];
	p[4] = hex[(v >> 4) & 0xF];
	p[5] = hex[v & 0xF];
	b->used += 6;
}

/* Appends one code point the way json.dumps(ensure_ascii=True) does. */
static void put_escaped(out_buf *b, uint32_t cp)
{
	static const char short_escape[0x20] = {
		['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't',
	};
	char *p;

	reserve(b, MAX_ESCAPE);
	p = b->data + b->used;
	if (cp == '"' || cp == '\\') {
		p[0] = '\\';
		p[1] = (char)cp;
		b->used += 2;
	} else if (cp < 0x20 && short_escape[cp]) {
		p[0] = '\\';
		p[1] = short_escape[cp];
		b->used += 2;
	} else if (cp >= 0x20 && cp < 0x7F) {
		p[0] = (char)cp;        /* printable ASCII, '/' included */
		b->used += 1;
	} else if (cp < 0x10000) {
		put_u16(b, cp);         /* other controls, DEL, the rest of the BMP */
	} else {
		cp -= 0x10000;          /* astral: a UTF-16 surrogate pair */
		put_u16(b, 0xD800 + (cp >> 10));
		put_u16(b, 0xDC00 + (cp & 0x3FF));
	}
}

/* ---- the request ------------------------------------------------------- */

/* Answers 400 if the body is not UTF-8 and returns 1; returns 0 if it is.
 * The message names the offset and byte where Python's decoder stops, and
 * its reason, e.g. "... at byte offset 5 (0xed): invalid continuation byte". */
static int reject_invalid_utf8(const model_request *req, model_response *out)
{
	size_t bad;
	const char *fault = utf8_check(req->body, req->body_len, &bad);
	char msg[128];

	if (!fault)
		return 0;
	snprintf(msg, sizeof msg,
	         "request body is not valid UTF-8 at byte offset %zu (0x%02x): %s",
	         bad, (unsigned)req->body[bad], fault);
	model_response_error(out, 400, msg);
	return 1;
}

/* Writes {"prediction": "a", "text": "<body escaped>"} in 16 KB chunks. */
static void write_echo(const model_request *req, model_response *out)
{
	out_buf b;              /* 16 KB on the stack; nothing to free */
	size_t i = 0;

	b.out = out;
	b.used = 0;
	b.failed = 0;
	model_response_type(out, "application/json");
	put_str(&b, "{\"prediction\": \"a\", \"text\": \"");
	while (i < req->body_len && !b.failed)
		put_escaped(&b, utf8_next(req->body, &i));
	put_str(&b, "\"}");
	flush(&b);
}

/* Like the Flask app, the echo accepts any Content-Type and Accept: all it
 * needs is a body of UTF-8 text. Validating the whole body before writing
 * anything means a bad byte near the end costs no wasted output. */
void model_invoke(model *m, const model_request *req, model_response *out)
{
	(void)m;
	if (!reject_invalid_utf8(req, out))
		write_echo(req, out);
}
