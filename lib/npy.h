/*
 * lib/npy.h - application/x-npy, read and written.
 *
 * What numpy.save writes and the SageMaker inference toolkit and the SDK's
 * NumpySerializer send:
 *
 *   "\x93NUMPY", major, minor         versions 1.0, 2.0, 3.0
 *   header length                     u16 (1.0) or u32 (2.0, 3.0), little endian
 *   header                            a Python dict literal, padded with spaces
 *                                     and ended by '\n':
 *       {'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }
 *   data                              the values, C order, no gap
 *
 * Read: little-endian (or one-byte) dtypes f4 f8 i1 i2 i4 i8 u1 u2 u4 u8
 * b1; C order only; 1-D (one record of shape[0] values) or 2-D (a record a
 * row). The header is parsed strictly: the three keys, each once, in any
 * order, strings in ' or ", True/False, a tuple of decimal integers (one
 * element needs its comma, as in Python), an optional trailing comma,
 * spaces, tabs and newlines between tokens, nothing else. The data must be
 * exactly as long as the shape says (sizes checked for overflow). Errors
 * name the byte offset: "npy: WHAT at byte N". No allocation: the array
 * points into the body.
 *
 *   struct smlib_npy a;
 *   if (smlib_npy_read(&a, body, len, err, sizeof err) != 0) -> 400 with err
 *   for (r = 0; r < a.rows; r++) for (c = 0; c < a.cols; c++)
 *       x = smlib_npy_value(&a, r, c);
 *
 * Written: smlib_npy_write() puts a 1-D or 2-D float32 or float64 array
 * into a caller's buffer, snprintf-style (returns the size needed, writes if
 * it fits), byte for byte as numpy.save writes it (version 1.0, header
 * padded so the data starts at a multiple of 64 bytes).
 *
 * Libc only, everything static, names prefixed smlib_npy_ (SMLIB_NPY_).
 */
#ifndef SMSERVE_NPY_H
#define SMSERVE_NPY_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "attributes.h"

#define SMLIB_NPY_MAGIC "\x93NUMPY"
#define SMLIB_NPY_MAGIC_LEN 6
#define SMLIB_NPY_ALIGN 64          /* numpy.save pads the header to this */
#define SMLIB_NPY_GROWTH_DIGITS 21  /* numpy.save leaves room for this many digits in shape[0] */
#define SMLIB_NPY_HEADER_CAP 256    /* longest header smlib_npy_write makes, with room */

enum smlib_npy_type {
	SMLIB_NPY_F4, SMLIB_NPY_F8,
	SMLIB_NPY_I1, SMLIB_NPY_I2, SMLIB_NPY_I4, SMLIB_NPY_I8,
	SMLIB_NPY_U1, SMLIB_NPY_U2, SMLIB_NPY_U4, SMLIB_NPY_U8,
	SMLIB_NPY_B1
};

/* descr without its byte-order character, and the item size. */
static SMLIB_UNUSED const struct {
	const char *code;
	size_t size;
} SMLIB_NPY_TYPES[] = {
	[SMLIB_NPY_F4] = {"f4", 4}, [SMLIB_NPY_F8] = {"f8", 8},
	[SMLIB_NPY_I1] = {"i1", 1}, [SMLIB_NPY_I2] = {"i2", 2},
	[SMLIB_NPY_I4] = {"i4", 4}, [SMLIB_NPY_I8] = {"i8", 8},
	[SMLIB_NPY_U1] = {"u1", 1}, [SMLIB_NPY_U2] = {"u2", 2},
	[SMLIB_NPY_U4] = {"u4", 4}, [SMLIB_NPY_U8] = {"u8", 8},
	[SMLIB_NPY_B1] = {"b1", 1},
};
#define SMLIB_NPY_N_TYPES (sizeof SMLIB_NPY_TYPES / sizeof SMLIB_NPY_TYPES[0])

struct smlib_npy {
	enum smlib_npy_type type;
	size_t item_size;
	int major, minor;               /* format version */
	size_t rank;                    /* 1 or 2 */
	size_t shape[2];
	size_t rows, cols;              /* 1-D: 1 row of shape[0] */
	const unsigned char *data;      /* rows * cols * item_size bytes */
	size_t data_offset;             /* of data in the body */
};

/* ======================================================================== */
/* Reading the header                                                       */
/* ======================================================================== */

/* The header being parsed; offsets in messages count from body. */
struct smlib_npy_scan {
	const unsigned char *p, *end, *body;
	char *err;
	size_t err_size;
};

static SMLIB_UNUSED int smlib_npy_fail(struct smlib_npy_scan *s, const unsigned char *at,
				       const char *fmt, ...) SMLIB_PRINTF_LIKE(3, 4);
/* Writes "npy: WHAT at byte N" into the error buffer; returns -1. */
static SMLIB_UNUSED int smlib_npy_fail(struct smlib_npy_scan *s, const unsigned char *at,
				       const char *fmt, ...)
{
	char what[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	if (s->err && s->err_size > 0)
		snprintf(s->err, s->err_size, "npy: %s at byte %zu", what, (size_t)(at - s->body));
	return -1;
}

/* Whitespace between tokens: what numpy writes (spaces, the final newline)
 * and what a Python literal allows besides. */
static SMLIB_UNUSED void smlib_npy_ws(struct smlib_npy_scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

/* Expects the character c (after whitespace). */
static SMLIB_UNUSED int smlib_npy_expect(struct smlib_npy_scan *s, int c, const char *what)
{
	smlib_npy_ws(s);
	if (s->p < s->end && *s->p == c) {
		s->p++;
		return 0;
	}
	if (s->p == s->end)
		return smlib_npy_fail(s, s->p, "header ends where %s was expected", what);
	return smlib_npy_fail(s, s->p, "expected %s in the header", what);
}

/* A quoted string ('...' or "...", no escapes: none of the values read here
 * has one): [*a, *b) is its text. */
static SMLIB_UNUSED int smlib_npy_string(struct smlib_npy_scan *s, const unsigned char **a,
					 const unsigned char **b)
{
	unsigned char quote;
	const unsigned char *start;
	smlib_npy_ws(s);
	start = *a = *b = s->p;
	if (s->p == s->end || (*s->p != '\'' && *s->p != '"'))
		return smlib_npy_fail(s, s->p, "expected a quoted string in the header");
	quote = *s->p++;
	*a = s->p;
	while (s->p < s->end && *s->p != quote) {
		if (*s->p == '\\' || *s->p < 0x20 || *s->p >= 0x7f)
			return smlib_npy_fail(s, s->p, "unexpected character in a header string");
		s->p++;
	}
	if (s->p == s->end)
		return smlib_npy_fail(s, start, "unterminated string in the header");
	*b = s->p++;
	return 0;
}

static SMLIB_UNUSED int smlib_npy_is(const unsigned char *a, const unsigned char *b, const char *lit)
{
	return (size_t)(b - a) == strlen(lit) && memcmp(a, lit, (size_t)(b - a)) == 0;
}

/* descr: '<f8', '|u1', ...; big-endian and other dtypes are errors. */
static SMLIB_UNUSED int smlib_npy_descr(struct smlib_npy_scan *s, struct smlib_npy *a)
{
	const unsigned char *at, *x, *y;
	size_t i;
	smlib_npy_ws(s);
	at = s->p;
	if (s->p < s->end && (*s->p == '[' || *s->p == '{'))
		return smlib_npy_fail(s, at, "structured dtypes are not supported");
	if (smlib_npy_string(s, &x, &y) != 0)
		return -1;
	for (i = 0; y - x == 3 && i < SMLIB_NPY_N_TYPES; i++) {
		if (memcmp(x + 1, SMLIB_NPY_TYPES[i].code, 2) != 0)
			continue;
		/* '<' little endian; '|' "not applicable", which numpy writes for
		 * one-byte types, and which '<' also means for them. */
		if (x[0] == '<' || (x[0] == '|' && SMLIB_NPY_TYPES[i].size == 1)) {
			a->type = (enum smlib_npy_type)i;
			a->item_size = SMLIB_NPY_TYPES[i].size;
			return 0;
		}
		if (x[0] == '>')
			return smlib_npy_fail(s, at, "big-endian dtype '%.3s' is not supported", (const char *)x);
		break;
	}
	return smlib_npy_fail(s, at, "dtype '%.*s' is not supported (little-endian f4, f8, i1-i8, u1-u8, b1 are)",
			      (int)(y - x > 16 ? 16 : y - x), (const char *)x);
}

static SMLIB_UNUSED int smlib_npy_fortran(struct smlib_npy_scan *s)
{
	const unsigned char *at;
	smlib_npy_ws(s);
	at = s->p;
	if ((size_t)(s->end - s->p) >= 5 && memcmp(s->p, "False", 5) == 0) {
		s->p += 5;
		return 0;
	}
	if ((size_t)(s->end - s->p) >= 4 && memcmp(s->p, "True", 4) == 0)
		return smlib_npy_fail(s, at, "fortran_order True is not supported (C order only)");
	return smlib_npy_fail(s, at, "expected False for fortran_order");
}

/* A dimension: decimal digits, no leading zero (as Python 3 reads them). */
static SMLIB_UNUSED int smlib_npy_dim(struct smlib_npy_scan *s, size_t *d)
{
	const unsigned char *at = s->p;
	size_t v = 0;
	if (s->p == s->end || *s->p < '0' || *s->p > '9')
		return smlib_npy_fail(s, at, "expected a dimension in the shape");
	if (*s->p == '0' && s->p + 1 < s->end && s->p[1] >= '0' && s->p[1] <= '9')
		return smlib_npy_fail(s, at, "dimension with a leading zero");
	while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
		unsigned digit = (unsigned)(*s->p - '0');
		if (v > (SIZE_MAX - digit) / 10)
			return smlib_npy_fail(s, at, "dimension too large");
		v = v * 10 + digit;
		s->p++;
	}
	*d = v;
	return 0;
}

/* shape: (), (n,), (r, c) or (r, c,); more than 2 dimensions is an error. */
static SMLIB_UNUSED int smlib_npy_shape(struct smlib_npy_scan *s, struct smlib_npy *a)
{
	const unsigned char *open;
	size_t rank = 0, d = 0;
	int comma = 0;
	smlib_npy_ws(s);
	open = s->p;
	if (smlib_npy_expect(s, '(', "'('") != 0)
		return -1;
	for (;;) {
		smlib_npy_ws(s);
		if (s->p < s->end && *s->p == ')')
			break;
		if (rank > 0 && !comma)
			return smlib_npy_fail(s, s->p, "expected ',' or ')' in the shape");
		if (smlib_npy_dim(s, &d) != 0)
			return -1;
		if (rank == 2)
			return smlib_npy_fail(s, open, "arrays of more than 2 dimensions are not supported");
		a->shape[rank++] = d;
		smlib_npy_ws(s);
		comma = s->p < s->end && *s->p == ',';
		if (comma)
			s->p++;
	}
	if (rank == 1 && !comma)
		return smlib_npy_fail(s, open, "a shape of one dimension needs its comma: (n,)");
	if (rank == 0)
		return smlib_npy_fail(s, open, "0-dimensional arrays are not supported");
	s->p++;                 /* ')' */
	a->rank = rank;
	return 0;
}

/* The dict literal [s->p, s->end): the three keys once each, any order. */
static SMLIB_UNUSED int smlib_npy_dict(struct smlib_npy_scan *s, struct smlib_npy *a)
{
	static const char *const keys[] = {"descr", "fortran_order", "shape"};
	int seen[3] = {0, 0, 0}, k;
	if (smlib_npy_expect(s, '{', "'{'") != 0)
		return -1;
	for (;;) {
		const unsigned char *at, *x, *y;
		int rc;
		smlib_npy_ws(s);
		if (s->p == s->end)
			return smlib_npy_fail(s, s->p, "header ends where '}' was expected");
		if (*s->p == '}')
			break;
		at = s->p;
		if (smlib_npy_string(s, &x, &y) != 0)
			return -1;
		for (k = 0; k < 3 && !smlib_npy_is(x, y, keys[k]); k++)
			;
		if (k == 3)
			return smlib_npy_fail(s, at, "unexpected key '%.*s' in the header",
					      (int)(y - x > 16 ? 16 : y - x), (const char *)x);
		if (seen[k]++)
			return smlib_npy_fail(s, at, "key '%s' given twice", keys[k]);
		if (smlib_npy_expect(s, ':', "':'") != 0)
			return -1;
		rc = k == 0 ? smlib_npy_descr(s, a) : k == 1 ? smlib_npy_fortran(s) : smlib_npy_shape(s, a);
		if (rc != 0)
			return -1;
		smlib_npy_ws(s);
		if (s->p < s->end && *s->p == ',')
			s->p++;
		else if (s->p < s->end && *s->p != '}')
			return smlib_npy_fail(s, s->p, "expected ',' or '}' in the header");
	}
	s->p++;                 /* '}' */
	for (k = 0; k < 3; k++)
		if (!seen[k])
			return smlib_npy_fail(s, s->p, "header has no '%s'", keys[k]);
	smlib_npy_ws(s);
	if (s->p != s->end)
		return smlib_npy_fail(s, s->p, "unexpected bytes after the header's dict");
	return 0;
}

static SMLIB_UNUSED uint64_t smlib_npy_le(const unsigned char *p, size_t n)
{
	uint64_t v = 0;
	while (n-- > 0)
		v = v << 8 | p[n];
	return v;
}

/* Reads body[0, len) into a. 0, or -1 with a message in err. */
static SMLIB_UNUSED int smlib_npy_read(struct smlib_npy *a, const void *body, size_t len, char *err,
				       size_t err_size)
{
	const unsigned char *b = body;
	struct smlib_npy_scan s = {b, b + len, b, err, err_size};
	size_t prefix, header_len, count, need;
	memset(a, 0, sizeof *a);
	if (len < SMLIB_NPY_MAGIC_LEN || memcmp(b, SMLIB_NPY_MAGIC, SMLIB_NPY_MAGIC_LEN) != 0)
		return smlib_npy_fail(&s, b, "not an NPY file (no \\x93NUMPY magic)");
	if (len < SMLIB_NPY_MAGIC_LEN + 2)
		return smlib_npy_fail(&s, b + len, "truncated version");
	a->major = b[6];
	a->minor = b[7];
	if ((a->major != 1 && a->major != 2 && a->major != 3) || a->minor != 0)
		return smlib_npy_fail(&s, b + 6, "NPY version %d.%d is not supported (1.0, 2.0, 3.0 are)",
				      a->major, a->minor);
	prefix = a->major == 1 ? 10 : 12;
	if (len < prefix)
		return smlib_npy_fail(&s, b + len, "truncated header length");
	header_len = (size_t)smlib_npy_le(b + 8, prefix - 8);
	if (header_len > len - prefix)
		return smlib_npy_fail(&s, b + 8, "header length %zu runs past the end (%zu bytes follow)",
				      header_len, len - prefix);
	s.p = b + prefix;
	s.end = s.p + header_len;
	if (smlib_npy_dict(&s, a) != 0)
		return -1;
	a->rows = a->rank == 1 ? 1 : a->shape[0];
	a->cols = a->rank == 1 ? a->shape[0] : a->shape[1];
	/* Rows of no values would be records without features, as many as the
	 * header says, at no cost to the sender: refused. */
	if (a->rank == 2 && a->cols == 0 && a->rows > 0)
		return smlib_npy_fail(&s, b + prefix, "shape (%zu, 0) has rows without values", a->rows);
	a->data_offset = prefix + header_len;
	a->data = b + a->data_offset;
	if (a->cols != 0 && a->rows > SIZE_MAX / a->cols / a->item_size)
		return smlib_npy_fail(&s, b + prefix, "shape (%zu, %zu) too large", a->rows, a->cols);
	count = a->rows * a->cols;
	need = count * a->item_size;
	if (len - a->data_offset < need)
		return smlib_npy_fail(&s, a->data, "truncated data: the shape needs %zu bytes, %zu follow",
				      need, len - a->data_offset);
	if (len - a->data_offset > need)
		return smlib_npy_fail(&s, a->data + need, "%zu bytes after the data",
				      len - a->data_offset - need);
	return 0;
}

/* The value at (row, col), as a double (int64 and uint64 rounded). */
static SMLIB_UNUSED double smlib_npy_value(const struct smlib_npy *a, size_t row, size_t col)
{
	const unsigned char *p = a->data + (row * a->cols + col) * a->item_size;
	uint64_t bits = smlib_npy_le(p, a->item_size);
	/* Sign-extends an n-byte two's complement value without overflow. */
	uint64_t sign = (uint64_t)1 << (8 * a->item_size - 1);
	switch (a->type) {
	case SMLIB_NPY_F4: {
		uint32_t b32 = (uint32_t)bits;
		float f;
		memcpy(&f, &b32, sizeof f);
		return f;
	}
	case SMLIB_NPY_F8: {
		double d;
		memcpy(&d, &bits, sizeof d);
		return d;
	}
	case SMLIB_NPY_I1: case SMLIB_NPY_I2: case SMLIB_NPY_I4: case SMLIB_NPY_I8:
		if (bits & sign)
			return -(double)((~bits & (sign - 1)) + 1);
		return (double)bits;
	case SMLIB_NPY_B1:
		return bits != 0;
	default:
		return (double)bits;
	}
}

/* ======================================================================== */
/* Writing                                                                  */
/* ======================================================================== */

static SMLIB_UNUSED unsigned char *smlib_npy_put_le(unsigned char *p, uint64_t v, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++, v >>= 8)
		p[i] = (unsigned char)v;
	return p + n;
}

/* The header numpy.save writes for a C-order array of this type (F4 or F8)
 * and shape (rank 1: (shape[0],); rank 2: (shape[0], shape[1])), magic and
 * padding included, into out (SMLIB_NPY_HEADER_CAP bytes); returns its
 * length, a multiple of SMLIB_NPY_ALIGN. */
static SMLIB_UNUSED size_t smlib_npy_header(unsigned char out[SMLIB_NPY_HEADER_CAP],
					    enum smlib_npy_type type, size_t rank, const size_t *shape)
{
	char dict[SMLIB_NPY_HEADER_CAP], first[24];
	int n, first_len;
	size_t text, pad;
	first_len = snprintf(first, sizeof first, "%zu", shape[0]);
	if (rank == 1)
		n = snprintf(dict, sizeof dict, "{'descr': '<%s', 'fortran_order': False, 'shape': (%zu,), }",
			     SMLIB_NPY_TYPES[type].code, shape[0]);
	else
		n = snprintf(dict, sizeof dict, "{'descr': '<%s', 'fortran_order': False, 'shape': (%zu, %zu), }",
			     SMLIB_NPY_TYPES[type].code, shape[0], shape[1]);
	/* Room for shape[0] to grow in place, as numpy.save leaves it. */
	text = (size_t)n + (size_t)(SMLIB_NPY_GROWTH_DIGITS - first_len);
	/* Then spaces and '\n' up to the next multiple of 64 (a whole 64
	 * when already there, as numpy.save pads). */
	pad = SMLIB_NPY_ALIGN - (SMLIB_NPY_MAGIC_LEN + 4 + text + 1) % SMLIB_NPY_ALIGN;
	memcpy(out, SMLIB_NPY_MAGIC, SMLIB_NPY_MAGIC_LEN);
	out[6] = 1;
	out[7] = 0;
	smlib_npy_put_le(out + 8, text + pad + 1, 2);
	memcpy(out + 10, dict, (size_t)n);
	memset(out + 10 + n, ' ', text - (size_t)n + pad);
	out[10 + text + pad] = '\n';
	return 10 + text + pad + 1;
}

/* Writes a C-order float32 (type SMLIB_NPY_F4, values rounded to float) or
 * float64 (SMLIB_NPY_F8) array of rank 1 or 2 and this shape, holding
 * values (shape[0] or shape[0] * shape[1] of them, row after row), as
 * numpy.save does, into out[0, cap) if it fits. Returns the size it needs
 * either way (snprintf-like: cap 0 to ask), or 0 if the size overflows. */
static SMLIB_UNUSED size_t smlib_npy_write(unsigned char *out, size_t cap, enum smlib_npy_type type,
					   size_t rank, const size_t *shape, const double *values)
{
	unsigned char head[SMLIB_NPY_HEADER_CAP];
	size_t head_len = smlib_npy_header(head, type, rank, shape);
	size_t count = shape[0], item = SMLIB_NPY_TYPES[type].size, i;
	if (rank == 2) {
		if (shape[1] != 0 && count > SIZE_MAX / shape[1])
			return 0;
		count *= shape[1];
	}
	if (count > (SIZE_MAX - head_len) / item)
		return 0;
	if (out == NULL || head_len + count * item > cap)
		return head_len + count * item;
	memcpy(out, head, head_len);
	out += head_len;
	for (i = 0; i < count; i++) {
		uint64_t bits;
		if (type == SMLIB_NPY_F4) {
			float f = (float)values[i];
			uint32_t b32;
			memcpy(&b32, &f, sizeof b32);
			bits = b32;
		} else {
			memcpy(&bits, &values[i], sizeof bits);
		}
		out = smlib_npy_put_le(out, bits, item);
	}
	return head_len + count * item;
}

#endif /* SMSERVE_NPY_H */
