/*
 * lib/recordio.h - application/x-recordio-protobuf, read and written.
 *
 * What SageMaker's built-in algorithms take and give: a sequence of RecordIO
 * records, each holding one protobuf message `Record` (SageMaker's
 * record.proto, package aialgs.data). The layout, as read here:
 *
 *   RecordIO record   u32 magic 0xced7230a, little endian
 *                     u32 word: low 29 bits the payload length, top 3 bits
 *                         the continuation flag (0: a whole record; 1, 2, 3:
 *                         first, middle, last part of a split one)
 *                     payload, then zero bytes up to a multiple of 4
 *
 *   Record            1 features  map<string, Value>   (repeated entry)
 *                     2 label     map<string, Value>
 *                     3 uid, 4 metadata, 5 configuration: strings, skipped
 *   map entry         1 key string, 2 value Value
 *   Value (a oneof)   2 Float32Tensor, 3 Float64Tensor, 7 Int32Tensor,
 *                     9 Bytes (kept as SMLIB_RIO_BYTES, not decoded)
 *   *Tensor           1 values (packed float, double or int32 varints)
 *                     2 keys   (packed uint64 varints; present: sparse)
 *                     3 shape  (packed uint64 varints)
 *
 * Reading is strict: a malformed or overlong varint, a length past the end of
 * its message, a known field with the wrong wire type, a group, a bad magic,
 * a truncated record, a split record, values that do not fill whole numbers,
 * an int32 out of range, keys not matching the values or outside the shape,
 * a dense tensor whose shape disagrees with its values: each is an error
 * whose message names the byte offset in the body and the record (counted
 * from 1). Unknown fields are skipped, as protobuf requires. A map key given
 * twice means its last entry, as in protobuf. Where this is stricter than
 * protobuf (repeated fields must be packed and given once; a Value holds one
 * tensor), no known encoder writes otherwise. The last record may omit its
 * padding (SageMaker's Python reader accepts that); padding bytes are not
 * checked (MXNet does not check them either).
 *
 * The reader never allocates: a record and its tensors point into the body,
 * and values are read through an iterator (int32 values are varints, so a
 * tensor is walked, not indexed).
 *
 *   struct smlib_rio_reader r;
 *   struct smlib_rio_record rec;
 *   smlib_rio_reader_init(&r, body, len, SMLIB_RIO_NEED_VALUES);
 *   while ((rc = smlib_rio_next(&r, &rec, err, sizeof err)) > 0) {
 *       struct smlib_rio_iter it;       // rec.values: the 'values' feature
 *       smlib_rio_iter_init(&it, &rec.values);
 *       while (smlib_rio_iter_next(&it, &key, &value)) ...  // key: column
 *   }
 *   // rc == 0: end of body; rc < 0: err says what and where
 *
 * Writing: smlib_rio_write() puts one framed record holding named float32
 * tensors (labels, such as `score` and `predicted_label`, and optionally
 * features) into a caller's buffer, snprintf-style: it returns the size the
 * record needs and writes only if that fits. The pieces it is made of
 * (smlib_rio_record_size, smlib_rio_put_record, smlib_rio_put_frame_head,
 * smlib_rio_put_padding) let a caller frame several Records in one RecordIO
 * record, as AWS's XGBoost container does. Fields come in field-number
 * order and map entries in the caller's order, which is what Python's
 * protobuf writes for the same message, byte for byte.
 *
 * Libc only, everything static, names prefixed smlib_rio_ (SMLIB_RIO_).
 */
#ifndef SMSERVE_RECORDIO_H
#define SMSERVE_RECORDIO_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "attributes.h"

#define SMLIB_RIO_MAGIC 0xced7230aU
#define SMLIB_RIO_HEAD 8                   /* magic and length word */
#define SMLIB_RIO_MAX_LENGTH 0x1fffffffU   /* 29 bits of length */
#define SMLIB_RIO_MAX_RANK 8               /* dimensions kept of a shape; more is an error */
#define SMLIB_RIO_VARINT_MAX 10            /* bytes of the longest uint64 varint */

/* Tensor types, as the Value oneof gives them. */
enum smlib_rio_type {
	SMLIB_RIO_NONE = 0,     /* the Value holds nothing */
	SMLIB_RIO_FLOAT32,
	SMLIB_RIO_FLOAT64,
	SMLIB_RIO_INT32,
	SMLIB_RIO_BYTES         /* a Bytes value: not decoded */
};

/* Protobuf wire types (the low 3 bits of a tag). */
enum { SMLIB_PB_VARINT = 0, SMLIB_PB_I64 = 1, SMLIB_PB_LEN = 2, SMLIB_PB_I32 = 5 };

/* Record fields. */
enum { SMLIB_RIO_FEATURES = 1, SMLIB_RIO_LABEL = 2 };

/* smlib_rio_reader_init flags. */
#define SMLIB_RIO_NEED_VALUES 1  /* every record must have a 'values' feature */

/* One tensor, pointing into the body; checked when its record was read. */
struct smlib_rio_tensor {
	enum smlib_rio_type type;
	const unsigned char *values, *values_end;  /* the packed values */
	size_t n_values;
	const unsigned char *keys, *keys_end;      /* packed keys; keys == NULL: dense */
	size_t rank;                               /* 0: no shape given */
	uint64_t shape[SMLIB_RIO_MAX_RANK];
	uint64_t size;                             /* product of shape (rank > 0) */
	size_t offset;                             /* of the tensor in the body */
};

struct smlib_rio_record {
	size_t index;                   /* 1 for the first record */
	size_t offset;                  /* of its RecordIO magic in the body */
	const unsigned char *payload;   /* the Record message */
	size_t payload_len;
	int has_values;                 /* it has a 'values' feature: */
	struct smlib_rio_tensor values; /* its tensor (the last one, if given twice) */
	size_t n_features, n_labels;    /* map entries, repeated keys counted each time */
};

struct smlib_rio_reader {
	const unsigned char *body;
	size_t len, at;                 /* next record starts at body[at] */
	size_t index;                   /* records read */
	int flags;
};

/* ======================================================================== */
/* Protobuf wire reading                                                    */
/* ======================================================================== */

/* A message being read: [p, end), inside body (offsets in messages count
 * from body), with the error buffer and the record for messages. */
struct smlib_pb {
	const unsigned char *p, *end, *body;
	size_t record;
	char *err;
	size_t err_size;
};

static SMLIB_UNUSED int smlib_pb_fail(struct smlib_pb *pb, const unsigned char *at, const char *fmt,
				      ...) SMLIB_PRINTF_LIKE(3, 4);
/* Writes "recordio-protobuf: WHAT at byte N (record R)" into the error
 * buffer; returns -1 for the caller to pass on. */
static SMLIB_UNUSED int smlib_pb_fail(struct smlib_pb *pb, const unsigned char *at, const char *fmt, ...)
{
	char what[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	if (pb->err && pb->err_size > 0)
		snprintf(pb->err, pb->err_size, "recordio-protobuf: %s at byte %zu (record %zu)", what,
			 (size_t)(at - pb->body), pb->record);
	return -1;
}

/* Reads a base-128 varint at *pp (before end) into *v and moves *pp past
 * it. -1 for one running past end, longer than 10 bytes, or over 64 bits. */
static SMLIB_UNUSED int smlib_pb_varint_at(const unsigned char **pp, const unsigned char *end,
					   uint64_t *v)
{
	const unsigned char *p = *pp;
	uint64_t value = 0;
	unsigned shift;
	*v = 0;
	for (shift = 0; shift < 7 * SMLIB_RIO_VARINT_MAX; shift += 7) {
		if (p == end)
			return -1;
		/* The 10th byte holds bit 63 only. */
		if (shift == 63 && (*p & 0xfe))
			return -1;
		value |= (uint64_t)(*p & 0x7f) << shift;
		if (!(*p++ & 0x80)) {
			*pp = p;
			*v = value;
			return 0;
		}
	}
	return -1;
}

static SMLIB_UNUSED int smlib_pb_varint(struct smlib_pb *pb, uint64_t *v)
{
	const unsigned char *start = pb->p;
	if (smlib_pb_varint_at(&pb->p, pb->end, v) == 0)
		return 0;
	return smlib_pb_fail(pb, start, "malformed varint");
}

/* Reads a tag: field number and wire type. Groups (3, 4), the wire types
 * 6 and 7 and field number 0 are errors. */
static SMLIB_UNUSED int smlib_pb_tag(struct smlib_pb *pb, uint32_t *field, int *wire)
{
	const unsigned char *start = pb->p;
	uint64_t tag = 0;
	*field = 0;
	*wire = 0;
	if (smlib_pb_varint(pb, &tag) != 0)
		return -1;
	*wire = (int)(tag & 7);
	if (tag >> 3 == 0 || tag >> 3 > 0x1fffffff)
		return smlib_pb_fail(pb, start, "field number %llu out of range",
				     (unsigned long long)(tag >> 3));
	*field = (uint32_t)(tag >> 3);
	if (*wire != SMLIB_PB_VARINT && *wire != SMLIB_PB_I64 && *wire != SMLIB_PB_LEN &&
	    *wire != SMLIB_PB_I32)
		return smlib_pb_fail(pb, start, "field %u has wire type %d (groups are not supported)",
				     (unsigned)*field, *wire);
	return 0;
}

/* Reads the length of a length-delimited field and gives its bytes as
 * [*start, *stop); the length must stay inside the enclosing message. */
static SMLIB_UNUSED int smlib_pb_bytes(struct smlib_pb *pb, const unsigned char **start,
				       const unsigned char **stop)
{
	const unsigned char *at = pb->p;
	uint64_t n = 0;
	*start = *stop = pb->p;
	if (smlib_pb_varint(pb, &n) != 0)
		return -1;
	if (n > (uint64_t)(pb->end - pb->p))
		return smlib_pb_fail(pb, at, "length %llu runs past the end of its message (%zu bytes left)",
				     (unsigned long long)n, (size_t)(pb->end - pb->p));
	*start = pb->p;
	pb->p += n;
	*stop = pb->p;
	return 0;
}

/* Skips the value of an unknown field of the given wire type. */
static SMLIB_UNUSED int smlib_pb_skip(struct smlib_pb *pb, int wire)
{
	const unsigned char *start = pb->p, *a, *b;
	uint64_t v;
	size_t width = wire == SMLIB_PB_I64 ? 8 : 4;
	if (wire == SMLIB_PB_VARINT)
		return smlib_pb_varint(pb, &v);
	if (wire == SMLIB_PB_LEN)
		return smlib_pb_bytes(pb, &a, &b);
	if ((size_t)(pb->end - pb->p) < width)
		return smlib_pb_fail(pb, start, "%zu-byte value runs past the end of its message", width);
	pb->p += width;
	return 0;
}

/* A known field must come with the wire type of its declaration. */
static SMLIB_UNUSED int smlib_pb_expect(struct smlib_pb *pb, const unsigned char *tag_at,
					const char *name, int wire, int expected)
{
	if (wire == expected)
		return 0;
	return smlib_pb_fail(pb, tag_at, "field %s has wire type %d, expected %d", name, wire, expected);
}

/* A nested message [start, stop) read with the same body and error buffer. */
static SMLIB_UNUSED struct smlib_pb smlib_pb_sub(const struct smlib_pb *pb, const unsigned char *start,
						 const unsigned char *stop)
{
	struct smlib_pb sub = *pb;
	sub.p = start;
	sub.end = stop;
	return sub;
}

/* ======================================================================== */
/* Tensors                                                                  */
/* ======================================================================== */

/* Counts the varints of a packed field [p, end): -1 if one is malformed. If
 * int32s, each must be an int32 (as protobuf writes them: sign-extended to 64
 * bits). */
static SMLIB_UNUSED int smlib_rio_count_varints(struct smlib_pb *pb, const unsigned char *p,
						const unsigned char *end, int int32s, size_t *count)
{
	uint64_t v;
	size_t n = 0;
	while (p < end) {
		const unsigned char *at = p;
		if (smlib_pb_varint_at(&p, end, &v) != 0)
			return smlib_pb_fail(pb, at, "malformed varint");
		if (int32s && v > UINT64_C(0x7fffffff) && v < UINT64_C(0xffffffff80000000))
			return smlib_pb_fail(pb, at, "int32 value out of range");
		n++;
	}
	*count = n;
	return 0;
}

/* Reads the packed shape into t: at most SMLIB_RIO_MAX_RANK dimensions,
 * their product (t->size) at most 2^63. */
static SMLIB_UNUSED int smlib_rio_shape(struct smlib_pb *pb, struct smlib_rio_tensor *t,
					const unsigned char *p, const unsigned char *end)
{
	uint64_t d;
	t->size = 1;
	while (p < end) {
		const unsigned char *at = p;
		if (smlib_pb_varint_at(&p, end, &d) != 0)
			return smlib_pb_fail(pb, at, "malformed varint");
		if (t->rank == SMLIB_RIO_MAX_RANK)
			return smlib_pb_fail(pb, at, "shape has more than %d dimensions", SMLIB_RIO_MAX_RANK);
		if (d != 0 && t->size > (UINT64_C(1) << 63) / d)
			return smlib_pb_fail(pb, at, "shape's size overflows");
		t->size *= d;
		t->shape[t->rank++] = d;
	}
	return 0;
}

/* What a tensor's values, keys and shape must agree on. */
static SMLIB_UNUSED int smlib_rio_tensor_check(struct smlib_pb *pb, struct smlib_rio_tensor *t,
					       const unsigned char *at)
{
	size_t n_keys = 0;
	const unsigned char *p;
	uint64_t k = 0;
	if (t->type == SMLIB_RIO_INT32) {
		if (smlib_rio_count_varints(pb, t->values, t->values_end, 1, &t->n_values) != 0)
			return -1;
	} else if (t->values) {
		size_t width = t->type == SMLIB_RIO_FLOAT32 ? 4 : 8;
		size_t n = (size_t)(t->values_end - t->values);
		if (n % width != 0)
			return smlib_pb_fail(pb, t->values, "%zu bytes of values are not whole %zu-byte numbers",
					     n, width);
		t->n_values = n / width;
	}
	if (t->keys) {
		if (smlib_rio_count_varints(pb, t->keys, t->keys_end, 0, &n_keys) != 0)
			return -1;
		if (n_keys != t->n_values)
			return smlib_pb_fail(pb, at, "sparse tensor has %zu keys for %zu values", n_keys,
					     t->n_values);
		for (p = t->keys; t->rank > 0 && p < t->keys_end;) {
			const unsigned char *kat = p;
			(void)smlib_pb_varint_at(&p, t->keys_end, &k);
			if (k >= t->size)
				return smlib_pb_fail(pb, kat, "key %llu outside the shape's %llu values",
						     (unsigned long long)k, (unsigned long long)t->size);
		}
	} else if (t->rank > 0 && t->size != t->n_values) {
		return smlib_pb_fail(pb, at, "dense tensor has %zu values, its shape %llu",
				     t->n_values, (unsigned long long)t->size);
	}
	return 0;
}

/* Reads a Float32Tensor, Float64Tensor or Int32Tensor message [pb->p, end). */
static SMLIB_UNUSED int smlib_rio_tensor_read(struct smlib_pb *pb, enum smlib_rio_type type,
					      struct smlib_rio_tensor *t)
{
	const unsigned char *at = pb->p, *tag_at, *a, *b;
	static const char *const names[] = {"", "values", "keys", "shape"};
	int seen[4] = {0, 0, 0, 0};
	uint32_t field;
	int wire;
	memset(t, 0, sizeof *t);
	t->type = type;
	t->offset = (size_t)(at - pb->body);
	while (pb->p < pb->end) {
		tag_at = pb->p;
		if (smlib_pb_tag(pb, &field, &wire) != 0)
			return -1;
		if (field > 3) {
			if (smlib_pb_skip(pb, wire) != 0)
				return -1;
			continue;
		}
		if (smlib_pb_expect(pb, tag_at, names[field], wire, SMLIB_PB_LEN) != 0 ||
		    smlib_pb_bytes(pb, &a, &b) != 0)
			return -1;
		if (seen[field]++)
			return smlib_pb_fail(pb, tag_at, "tensor field %s given twice", names[field]);
		if (field == 1) {
			t->values = a;
			t->values_end = b;
		} else if (field == 2) {
			t->keys = a;
			t->keys_end = b;
		} else if (smlib_rio_shape(pb, t, a, b) != 0) {
			return -1;
		}
	}
	/* Keys given as an empty packed field are no keys, as protobuf reads them. */
	if (t->keys == t->keys_end)
		t->keys = t->keys_end = NULL;
	return smlib_rio_tensor_check(pb, t, at);
}

/* Reads a Value message: one tensor, or Bytes, or nothing. */
static SMLIB_UNUSED int smlib_rio_value_read(struct smlib_pb *pb, struct smlib_rio_tensor *t)
{
	const unsigned char *tag_at, *a, *b;
	uint32_t field;
	int wire, held = 0;
	memset(t, 0, sizeof *t);
	t->offset = (size_t)(pb->p - pb->body);
	while (pb->p < pb->end) {
		enum smlib_rio_type type;
		struct smlib_pb sub;
		tag_at = pb->p;
		if (smlib_pb_tag(pb, &field, &wire) != 0)
			return -1;
		type = field == 2 ? SMLIB_RIO_FLOAT32 : field == 3 ? SMLIB_RIO_FLOAT64
			: field == 7 ? SMLIB_RIO_INT32 : field == 9 ? SMLIB_RIO_BYTES : SMLIB_RIO_NONE;
		if (type == SMLIB_RIO_NONE) {
			if (smlib_pb_skip(pb, wire) != 0)
				return -1;
			continue;
		}
		if (smlib_pb_expect(pb, tag_at, "of Value", wire, SMLIB_PB_LEN) != 0 ||
		    smlib_pb_bytes(pb, &a, &b) != 0)
			return -1;
		if (held++)
			return smlib_pb_fail(pb, tag_at, "Value holds a second tensor");
		if (type == SMLIB_RIO_BYTES) {
			t->type = type;
			t->values = a;
			t->values_end = b;
			continue;
		}
		sub = smlib_pb_sub(pb, a, b);
		if (smlib_rio_tensor_read(&sub, type, t) != 0)
			return -1;
	}
	return 0;
}

/* Reads a map entry [pb->p, pb->end): its key and Value. */
static SMLIB_UNUSED int smlib_rio_entry_read(struct smlib_pb *pb, const char **key, size_t *key_len,
					     struct smlib_rio_tensor *t)
{
	const unsigned char *tag_at, *a, *b;
	uint32_t field;
	int wire;
	*key = "";
	*key_len = 0;
	memset(t, 0, sizeof *t);
	t->offset = (size_t)(pb->p - pb->body);
	while (pb->p < pb->end) {
		struct smlib_pb sub;
		tag_at = pb->p;
		if (smlib_pb_tag(pb, &field, &wire) != 0)
			return -1;
		if (field > 2) {
			if (smlib_pb_skip(pb, wire) != 0)
				return -1;
			continue;
		}
		if (smlib_pb_expect(pb, tag_at, field == 1 ? "key" : "value", wire, SMLIB_PB_LEN) != 0 ||
		    smlib_pb_bytes(pb, &a, &b) != 0)
			return -1;
		if (field == 1) {
			*key = (const char *)a;
			*key_len = (size_t)(b - a);
			continue;
		}
		sub = smlib_pb_sub(pb, a, b);
		if (smlib_rio_value_read(&sub, t) != 0)
			return -1;
	}
	return 0;
}

/* ======================================================================== */
/* Records                                                                  */
/* ======================================================================== */

/* Walks the Record message in pb, checking every entry; calls back nothing,
 * but remembers the 'values' feature and counts entries in rec. */
static SMLIB_UNUSED int smlib_rio_record_read(struct smlib_pb *pb, struct smlib_rio_record *rec)
{
	const unsigned char *tag_at, *a, *b;
	uint32_t field;
	int wire;
	while (pb->p < pb->end) {
		struct smlib_pb sub;
		struct smlib_rio_tensor t;
		const char *key;
		size_t key_len;
		tag_at = pb->p;
		if (smlib_pb_tag(pb, &field, &wire) != 0)
			return -1;
		if (field > 5) {
			if (smlib_pb_skip(pb, wire) != 0)
				return -1;
			continue;
		}
		if (smlib_pb_expect(pb, tag_at, field == 1 ? "features" : field == 2 ? "label"
				    : field == 3 ? "uid" : field == 4 ? "metadata" : "configuration",
				    wire, SMLIB_PB_LEN) != 0 || smlib_pb_bytes(pb, &a, &b) != 0)
			return -1;
		if (field > 2)
			continue;       /* uid, metadata, configuration */
		sub = smlib_pb_sub(pb, a, b);
		if (smlib_rio_entry_read(&sub, &key, &key_len, &t) != 0)
			return -1;
		if (field == SMLIB_RIO_LABEL) {
			rec->n_labels++;
			continue;
		}
		rec->n_features++;
		if (key_len == 6 && memcmp(key, "values", 6) == 0) {
			rec->has_values = 1;
			rec->values = t;
		}
	}
	return 0;
}

/* Starts reading body[0, len). flags: 0 or SMLIB_RIO_NEED_VALUES. */
static SMLIB_UNUSED void smlib_rio_reader_init(struct smlib_rio_reader *r, const void *body, size_t len,
					       int flags)
{
	r->body = body;
	r->len = len;
	r->at = 0;
	r->index = 0;
	r->flags = flags;
}

static SMLIB_UNUSED uint32_t smlib_rio_u32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Reads the next record into rec: 1, or 0 at the end of the body, or -1
 * with a message in err ("recordio-protobuf: ... at byte N (record R)").
 * After -1, the reader stays at the bad record. */
static SMLIB_UNUSED int smlib_rio_next(struct smlib_rio_reader *r, struct smlib_rio_record *rec,
				       char *err, size_t err_size)
{
	const unsigned char *head;
	size_t left = r->len - r->at, length, pad;
	uint32_t magic, word;
	struct smlib_pb pb;
	memset(rec, 0, sizeof *rec);
	if (left == 0)                  /* (an empty body may have no address at all) */
		return 0;
	head = r->body + r->at;
	pb = (struct smlib_pb){head, head, r->body, r->index + 1, err, err_size};
	if (left < SMLIB_RIO_HEAD)
		return smlib_pb_fail(&pb, head, "truncated RecordIO header (%zu of %d bytes)", left,
				     SMLIB_RIO_HEAD);
	magic = smlib_rio_u32(head);
	if (magic != SMLIB_RIO_MAGIC)
		return smlib_pb_fail(&pb, head, "bad RecordIO magic 0x%08lx (expected 0x%08lx)",
				     (unsigned long)magic, (unsigned long)SMLIB_RIO_MAGIC);
	word = smlib_rio_u32(head + 4);
	if (word >> 29)
		return smlib_pb_fail(&pb, head + 4, "split RecordIO record (continuation flag %lu) not supported",
				     (unsigned long)(word >> 29));
	length = word & SMLIB_RIO_MAX_LENGTH;
	if (length > left - SMLIB_RIO_HEAD)
		return smlib_pb_fail(&pb, head + 4, "truncated record: length %zu, %zu bytes follow", length,
				     left - SMLIB_RIO_HEAD);
	rec->index = r->index + 1;
	rec->offset = r->at;
	rec->payload = head + SMLIB_RIO_HEAD;
	rec->payload_len = length;
	pb.p = rec->payload;
	pb.end = rec->payload + length;
	if (smlib_rio_record_read(&pb, rec) != 0)
		return -1;
	if ((r->flags & SMLIB_RIO_NEED_VALUES) && !rec->has_values)
		return smlib_pb_fail(&pb, head, "Record has no 'values' feature");
	if (rec->has_values && rec->values.type != SMLIB_RIO_FLOAT32 &&
	    rec->values.type != SMLIB_RIO_FLOAT64 && rec->values.type != SMLIB_RIO_INT32)
		return smlib_pb_fail(&pb, r->body + rec->values.offset, "'values' feature holds no tensor");
	pad = (4 - length % 4) % 4;
	left -= SMLIB_RIO_HEAD + length;
	/* The last record may omit its padding. */
	r->at += SMLIB_RIO_HEAD + length + (pad < left ? pad : left);
	r->index++;
	return 1;
}

/* The next entry of the record's features (which = SMLIB_RIO_FEATURES) or
 * labels (SMLIB_RIO_LABEL) from where pb stands: 1 with its key and tensor,
 * or 0 at the end. The record was checked when read, so 0 is only the end. */
static SMLIB_UNUSED int smlib_rio_next_entry(struct smlib_pb *pb, int which, const char **key,
					     size_t *key_len, struct smlib_rio_tensor *t)
{
	while (pb->p < pb->end) {
		const unsigned char *a, *b;
		uint32_t field;
		int wire;
		struct smlib_pb sub;
		if (smlib_pb_tag(pb, &field, &wire) != 0)
			return 0;
		if (wire != SMLIB_PB_LEN) {
			if (smlib_pb_skip(pb, wire) != 0)
				return 0;
			continue;
		}
		if (smlib_pb_bytes(pb, &a, &b) != 0)
			return 0;
		if ((int)field != which)
			continue;
		sub = smlib_pb_sub(pb, a, b);
		return smlib_rio_entry_read(&sub, key, key_len, t) == 0;
	}
	return 0;
}

/* Finds the entry named name (NUL-terminated) of the record's features
 * (which = SMLIB_RIO_FEATURES) or labels (SMLIB_RIO_LABEL); the last one
 * if repeated. 1 and *t set, or 0. */
static SMLIB_UNUSED int smlib_rio_find(const struct smlib_rio_record *rec, int which, const char *name,
				       struct smlib_rio_tensor *t)
{
	struct smlib_pb pb = {rec->payload, rec->payload + rec->payload_len, rec->payload, 0, NULL, 0};
	struct smlib_rio_tensor here;
	size_t name_len = strlen(name), key_len;
	const char *key;
	int found = 0;
	while (smlib_rio_next_entry(&pb, which, &key, &key_len, &here))
		if (key_len == name_len && memcmp(key, name, name_len) == 0) {
			*t = here;
			found = 1;
		}
	return found;
}

/* Gives entry number i (from 0, as written, repeats included) of the
 * record's features or labels: its key [*key, *key + *key_len) and tensor.
 * 1, or 0 past the last one. */
static SMLIB_UNUSED int smlib_rio_entry(const struct smlib_rio_record *rec, int which, size_t i,
					const char **key, size_t *key_len, struct smlib_rio_tensor *t)
{
	struct smlib_pb pb = {rec->payload, rec->payload + rec->payload_len, rec->payload, 0, NULL, 0};
	while (smlib_rio_next_entry(&pb, which, key, key_len, t))
		if (i-- == 0)
			return 1;
	return 0;
}

/* ======================================================================== */
/* Tensor values                                                            */
/* ======================================================================== */

/* Walks a tensor's (key, value) pairs: for a dense one the key is the
 * position. The tensor was checked when read, so this cannot fail. */
struct smlib_rio_iter {
	enum smlib_rio_type type;
	const unsigned char *v, *v_end, *k, *k_end;
	uint64_t position;
};

static SMLIB_UNUSED void smlib_rio_iter_init(struct smlib_rio_iter *it, const struct smlib_rio_tensor *t)
{
	it->type = t->type;
	it->v = t->values;
	it->v_end = t->values_end;
	it->k = t->keys;
	it->k_end = t->keys_end;
	it->position = 0;
	if (t->type != SMLIB_RIO_FLOAT32 && t->type != SMLIB_RIO_FLOAT64 && t->type != SMLIB_RIO_INT32)
		it->v = it->v_end = NULL;       /* Bytes or nothing: no values */
}

static SMLIB_UNUSED uint64_t smlib_rio_u64(const unsigned char *p)
{
	return (uint64_t)smlib_rio_u32(p) | (uint64_t)smlib_rio_u32(p + 4) << 32;
}

/* The next pair: 1 with *key and *value set, or 0 at the end. Float64 and
 * int32 values are converted to double exactly; float32 too. */
static SMLIB_UNUSED int smlib_rio_iter_next(struct smlib_rio_iter *it, uint64_t *key, double *value)
{
	uint64_t bits = 0;
	if (it->v == NULL || it->v >= it->v_end)
		return 0;
	if (it->type == SMLIB_RIO_FLOAT32) {
		uint32_t b32 = smlib_rio_u32(it->v);
		float f;
		memcpy(&f, &b32, sizeof f);
		*value = f;
		it->v += 4;
	} else if (it->type == SMLIB_RIO_FLOAT64) {
		bits = smlib_rio_u64(it->v);
		memcpy(value, &bits, sizeof *value);
		it->v += 8;
	} else {
		(void)smlib_pb_varint_at(&it->v, it->v_end, &bits);
		/* int32 is sign-extended to 64 bits; take the low 32 as signed. */
		*value = bits & 0x80000000U ? -(double)(int64_t)((~bits & 0x7fffffffU) + 1)
			: (double)(bits & 0x7fffffffU);
	}
	if (it->k)
		(void)smlib_pb_varint_at(&it->k, it->k_end, key);
	else
		*key = it->position;
	it->position++;
	return 1;
}

/* ======================================================================== */
/* Writing                                                                  */
/* ======================================================================== */

/* One named float32 tensor to write, as a features or label map entry. */
struct smlib_rio_out {
	const char *name;           /* the map key, NUL-terminated (NULL: "") */
	const float *values;        /* n_values values */
	size_t n_values;
	const uint64_t *keys;       /* NULL: dense; else n_values keys (sparse) */
	const uint64_t *shape;      /* rank dimensions, or NULL with rank 0 */
	size_t rank;
};

static SMLIB_UNUSED size_t smlib_pb_varint_size(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static SMLIB_UNUSED unsigned char *smlib_pb_put_varint(unsigned char *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	*p++ = (unsigned char)v;
	return p;
}

/* A length-delimited field's size: tag, length and n bytes. */
static SMLIB_UNUSED size_t smlib_pb_field_size(size_t n) { return 1 + smlib_pb_varint_size(n) + n; }

static SMLIB_UNUSED size_t smlib_pb_varints_size(const uint64_t *v, size_t n)
{
	size_t i, size = 0;
	for (i = 0; i < n; i++)
		size += smlib_pb_varint_size(v[i]);
	return size;
}

/* Sizes of a Float32Tensor, of the Value holding it and of the map entry. */
static SMLIB_UNUSED size_t smlib_rio_tensor_size(const struct smlib_rio_out *o)
{
	size_t size = 0;
	if (o->n_values > 0)
		size += smlib_pb_field_size(4 * o->n_values);
	if (o->keys && o->n_values > 0)
		size += smlib_pb_field_size(smlib_pb_varints_size(o->keys, o->n_values));
	if (o->rank > 0)
		size += smlib_pb_field_size(smlib_pb_varints_size(o->shape, o->rank));
	return size;
}

static SMLIB_UNUSED size_t smlib_rio_name_len(const struct smlib_rio_out *o)
{
	return o->name ? strlen(o->name) : 0;
}

static SMLIB_UNUSED size_t smlib_rio_entry_size(const struct smlib_rio_out *o)
{
	size_t value = smlib_pb_field_size(smlib_rio_tensor_size(o));
	return smlib_pb_field_size(smlib_rio_name_len(o)) + smlib_pb_field_size(value);
}

/* The size of the Record message holding these entries (not framed). */
static SMLIB_UNUSED size_t smlib_rio_record_size(const struct smlib_rio_out *features, size_t n_features,
						 const struct smlib_rio_out *labels, size_t n_labels)
{
	size_t i, size = 0;
	for (i = 0; i < n_features; i++)
		size += smlib_pb_field_size(smlib_rio_entry_size(&features[i]));
	for (i = 0; i < n_labels; i++)
		size += smlib_pb_field_size(smlib_rio_entry_size(&labels[i]));
	return size;
}

static SMLIB_UNUSED unsigned char *smlib_pb_put_head(unsigned char *p, unsigned field, size_t n)
{
	*p++ = (unsigned char)(field << 3 | SMLIB_PB_LEN);
	return smlib_pb_put_varint(p, n);
}

static SMLIB_UNUSED unsigned char *smlib_rio_put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
	return p + 4;
}

static SMLIB_UNUSED unsigned char *smlib_pb_put_varints(unsigned char *p, unsigned field,
						       const uint64_t *v, size_t n)
{
	size_t i;
	p = smlib_pb_put_head(p, field, smlib_pb_varints_size(v, n));
	for (i = 0; i < n; i++)
		p = smlib_pb_put_varint(p, v[i]);
	return p;
}

/* Writes a map entry of the given Record field (1 features, 2 label). */
static SMLIB_UNUSED unsigned char *smlib_rio_put_entry(unsigned char *p, unsigned field,
						      const struct smlib_rio_out *o)
{
	size_t i, key_len = smlib_rio_name_len(o), tensor = smlib_rio_tensor_size(o);
	p = smlib_pb_put_head(p, field, smlib_rio_entry_size(o));
	p = smlib_pb_put_head(p, 1, key_len);
	if (key_len > 0)
		memcpy(p, o->name, key_len);
	p += key_len;
	p = smlib_pb_put_head(p, 2, smlib_pb_field_size(tensor));
	p = smlib_pb_put_head(p, 2, tensor);           /* Value.float32_tensor */
	if (o->n_values > 0) {
		p = smlib_pb_put_head(p, 1, 4 * o->n_values);
		for (i = 0; i < o->n_values; i++) {
			uint32_t bits;
			memcpy(&bits, &o->values[i], sizeof bits);
			p = smlib_rio_put_u32(p, bits);
		}
	}
	if (o->keys && o->n_values > 0)
		p = smlib_pb_put_varints(p, 2, o->keys, o->n_values);
	if (o->rank > 0)
		p = smlib_pb_put_varints(p, 3, o->shape, o->rank);
	return p;
}

/* Writes the Record message (smlib_rio_record_size bytes) at out; returns
 * the end of what it wrote. */
static SMLIB_UNUSED unsigned char *smlib_rio_put_record(unsigned char *out,
						       const struct smlib_rio_out *features, size_t n_features,
						       const struct smlib_rio_out *labels, size_t n_labels)
{
	size_t i;
	for (i = 0; i < n_features; i++)
		out = smlib_rio_put_entry(out, SMLIB_RIO_FEATURES, &features[i]);
	for (i = 0; i < n_labels; i++)
		out = smlib_rio_put_entry(out, SMLIB_RIO_LABEL, &labels[i]);
	return out;
}

/* The RecordIO head (8 bytes) of a payload of payload_len bytes, which must
 * be at most SMLIB_RIO_MAX_LENGTH. */
static SMLIB_UNUSED unsigned char *smlib_rio_put_frame_head(unsigned char *out, size_t payload_len)
{
	out = smlib_rio_put_u32(out, SMLIB_RIO_MAGIC);
	return smlib_rio_put_u32(out, (uint32_t)payload_len);
}

/* The zero bytes (0 to 3) that end a payload of payload_len bytes. */
static SMLIB_UNUSED unsigned char *smlib_rio_put_padding(unsigned char *out, size_t payload_len)
{
	size_t pad = (4 - payload_len % 4) % 4;
	memset(out, 0, pad);
	return out + pad;
}

/* A framed record's size: head, payload and padding. */
static SMLIB_UNUSED size_t smlib_rio_frame_size(size_t payload_len)
{
	return SMLIB_RIO_HEAD + payload_len + (4 - payload_len % 4) % 4;
}

/* Writes one RecordIO record holding one Record with these features and
 * labels into out[0, cap), if it fits. Returns its size either way (as
 * snprintf does: call with cap 0 to learn it), or 0 if the payload would
 * pass RecordIO's 29-bit length. */
static SMLIB_UNUSED size_t smlib_rio_write(unsigned char *out, size_t cap,
					  const struct smlib_rio_out *features, size_t n_features,
					  const struct smlib_rio_out *labels, size_t n_labels)
{
	size_t payload = smlib_rio_record_size(features, n_features, labels, n_labels);
	size_t size = smlib_rio_frame_size(payload);
	if (payload > SMLIB_RIO_MAX_LENGTH)
		return 0;
	if (out != NULL && size <= cap) {
		unsigned char *p = smlib_rio_put_frame_head(out, payload);
		p = smlib_rio_put_record(p, features, n_features, labels, n_labels);
		(void)smlib_rio_put_padding(p, payload);
	}
	return size;
}

#endif /* SMSERVE_RECORDIO_H */
