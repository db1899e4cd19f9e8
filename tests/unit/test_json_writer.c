/* Unit tests for json_writer.c: the commas it places between members and
 * elements at every nesting level, empty containers, every value kind
 * (byte-exact), and the two misuses it reports through buf.failed: closing
 * more than was opened, and nesting beyond JW_MAX_DEPTH. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "json_writer.h"

static struct buf b;
static struct jw w;

static void start(void)
{
	buf_free(&b);
	jw_init(&w, &b);
}

#define CHECK_DOC(want) do { CHECK(!b.failed); CHECK_STR(b.data, b.len, want); } while (0)

static void test_empty(void)
{
	start();
	jw_object(&w, NULL);
	jw_close(&w);
	CHECK_DOC("{}");
	CHECK(w.depth == 0);

	start();
	jw_array(&w, NULL);
	jw_close(&w);
	CHECK_DOC("[]");

	start();
	jw_object(&w, NULL);
	jw_object(&w, "o");
	jw_close(&w);
	jw_array(&w, "a");
	jw_close(&w);
	jw_array(&w, "b");
	jw_array(&w, NULL);
	jw_close(&w);
	jw_object(&w, NULL);
	jw_close(&w);
	jw_close(&w);
	jw_close(&w);
	CHECK_DOC("{\"o\":{},\"a\":[],\"b\":[[],{}]}");
	CHECK(w.depth == 0);
}

/* The shape /api/list writes: objects in an array in an object, then a
 * sibling object; the comma state of each level survives the inner ones. */
static void test_nesting(void)
{
	start();
	jw_object(&w, NULL);
	jw_array(&w, "entities");
	for (int i = 0; i < 3; i++) {
		char name[16];
		snprintf(name, sizeof name, "e%d", i);
		jw_object(&w, NULL);
		jw_cstr(&w, "entityName", name);
		jw_u64(&w, "n", (uint64_t)i);
		jw_close(&w);
	}
	jw_close(&w);
	jw_object(&w, "shardInfo");
	jw_u64(&w, "shardId", 2);
	jw_u64(&w, "totalShards", 3);
	jw_close(&w);
	jw_close(&w);
	CHECK_DOC("{\"entities\":[{\"entityName\":\"e0\",\"n\":0},{\"entityName\":\"e1\",\"n\":1},"
		  "{\"entityName\":\"e2\",\"n\":2}],\"shardInfo\":{\"shardId\":2,\"totalShards\":3}}");

	/* Arrays of arrays, and a member after a closed container at each depth. */
	start();
	jw_array(&w, NULL);
	jw_u64(&w, NULL, 1);
	jw_array(&w, NULL);
	jw_u64(&w, NULL, 2);
	jw_array(&w, NULL);
	jw_close(&w);
	jw_u64(&w, NULL, 3);
	jw_close(&w);
	jw_u64(&w, NULL, 4);
	jw_object(&w, NULL);
	jw_object(&w, "x");
	jw_array(&w, "y");
	jw_u64(&w, NULL, 5);
	jw_close(&w);
	jw_u64(&w, "z", 6);
	jw_close(&w);
	jw_u64(&w, "after", 7);
	jw_close(&w);
	jw_close(&w);
	CHECK_DOC("[1,[2,[],3],4,{\"x\":{\"y\":[5],\"z\":6},\"after\":7}]");

	/* A new container at a depth used before starts without a member: the
	 * comma state of a closed container does not leak into the next. */
	start();
	jw_array(&w, NULL);
	jw_object(&w, NULL);
	jw_u64(&w, "a", 1);
	jw_close(&w);
	jw_object(&w, NULL);
	jw_u64(&w, "b", 2);
	jw_close(&w);
	jw_array(&w, NULL);
	jw_u64(&w, NULL, 3);
	jw_close(&w);
	jw_close(&w);
	CHECK_DOC("[{\"a\":1},{\"b\":2},[3]]");

	/* An array inside an object inside an array: ']' and '}' closed right. */
	start();
	jw_array(&w, NULL);
	jw_object(&w, NULL);
	jw_array(&w, "v");
	jw_close(&w);
	jw_close(&w);
	jw_close(&w);
	CHECK_DOC("[{\"v\":[]}]");
}

static void test_values(void)
{
	start();
	jw_object(&w, NULL);
	jw_u64(&w, "zero", 0);
	jw_u64(&w, "max", UINT64_MAX);
	jw_u64(&w, "ten", 10);
	jw_u64_str(&w, "s0", 0);
	jw_u64_str(&w, "smax", UINT64_MAX);
	jw_str(&w, "esc", "a\"b\\c/\n\r\t\b\f", 11);
	jw_str(&w, "ctl", "\x00\x01\x1f\x7f", 4);
	jw_str(&w, "part", "abcdef", 3);
	jw_str(&w, "empty", "", 0);
	jw_cstr(&w, "c", "h\xc3\xa9llo");
	jw_cstr(&w, "cq", "say \"hi\"");
	jw_null(&w, "n");
	jw_bool(&w, "t", 1);
	jw_bool(&w, "f", 0);
	jw_bool(&w, "t2", 42);
	jw_raw(&w, "raw", "{\"k\":[1,2]}", 11);
	struct buf *v = jw_value(&w, "hand");
	CHECK(v == &b);
	buf_puts(v, "123.5");
	jw_u64(&w, "last", 1);
	jw_close(&w);
	CHECK_DOC("{\"zero\":0,\"max\":18446744073709551615,\"ten\":10,"
		  "\"s0\":\"0\",\"smax\":\"18446744073709551615\","
		  "\"esc\":\"a\\\"b\\\\c/\\n\\r\\t\\b\\f\","
		  "\"ctl\":\"\\u0000\\u0001\\u001f\x7f\","
		  "\"part\":\"abc\",\"empty\":\"\","
		  "\"c\":\"h\xc3\xa9llo\",\"cq\":\"say \\\"hi\\\"\","
		  "\"n\":null,\"t\":true,\"f\":false,\"t2\":true,"
		  "\"raw\":{\"k\":[1,2]},\"hand\":123.5,\"last\":1}");

	/* The same kinds as array elements (no keys). */
	start();
	jw_array(&w, NULL);
	jw_u64(&w, NULL, 0);
	jw_u64(&w, NULL, UINT64_MAX);
	jw_u64_str(&w, NULL, 7);
	jw_str(&w, NULL, "x\ty", 3);
	jw_cstr(&w, NULL, "");
	jw_null(&w, NULL);
	jw_bool(&w, NULL, 0);
	jw_bool(&w, NULL, 1);
	jw_raw(&w, NULL, "[]", 2);
	buf_putc(jw_value(&w, NULL), '9');
	jw_close(&w);
	CHECK_DOC("[0,18446744073709551615,\"7\",\"x\\ty\",\"\",null,false,true,[],9]");

	/* Every byte below 0x20 is escaped, whatever the kind of string call. */
	for (int c = 0; c < 0x20; c++) {
		char in[3] = { 'a', (char)c, 'b' };
		char want[16];
		start();
		jw_str(&w, NULL, in, 3);
		if (c == '\n')
			snprintf(want, sizeof want, "\"a\\nb\"");
		else if (c == '\t')
			snprintf(want, sizeof want, "\"a\\tb\"");
		else if (c == '\r')
			snprintf(want, sizeof want, "\"a\\rb\"");
		else if (c == '\b')
			snprintf(want, sizeof want, "\"a\\bb\"");
		else if (c == '\f')
			snprintf(want, sizeof want, "\"a\\fb\"");
		else
			snprintf(want, sizeof want, "\"a\\u%04xb\"", c);
		if (b.len != strlen(want) || memcmp(b.data, want, b.len) != 0) {
			fprintf(stderr, "byte 0x%02x: got %.*s, expected %s\n", c, (int)b.len, b.data, want);
			CHECK(0);
		} else {
			CHECK(1);
		}
	}

	/* Scalars at the top level: one value, no separators. */
	start();
	jw_u64(&w, NULL, 5);
	CHECK_DOC("5");
	start();
	jw_null(&w, NULL);
	CHECK_DOC("null");
	CHECK(w.depth == 0);
}

static void test_misuse(void)
{
	/* Closing with nothing open. */
	start();
	jw_close(&w);
	CHECK(b.failed);
	CHECK(w.depth == 0);

	/* Closing once more than was opened, after a complete document. */
	start();
	jw_object(&w, NULL);
	jw_u64(&w, "a", 1);
	jw_close(&w);
	CHECK(!b.failed);
	jw_close(&w);
	CHECK(b.failed);
	CHECK(w.depth == 0);
	/* A failed buffer takes nothing more. */
	size_t len = b.len;
	jw_object(&w, NULL);
	jw_cstr(&w, "k", "v");
	jw_close(&w);
	CHECK(b.len == len);

	/* JW_MAX_DEPTH levels fit; the next one fails. UBSan would flag a
	 * shift by 32 or more, ASan a write past the struct. */
	start();
	for (int i = 0; i < JW_MAX_DEPTH; i++)
		jw_array(&w, NULL);
	CHECK(!b.failed);
	CHECK(w.depth == JW_MAX_DEPTH);
	jw_u64(&w, NULL, 1);
	jw_u64(&w, NULL, 2);
	for (int i = 0; i < JW_MAX_DEPTH; i++)
		jw_close(&w);
	CHECK(w.depth == 0);
	char want[2 * JW_MAX_DEPTH + 8];
	memset(want, '[', JW_MAX_DEPTH);
	memcpy(want + JW_MAX_DEPTH, "1,2", 3);
	memset(want + JW_MAX_DEPTH + 3, ']', JW_MAX_DEPTH);
	want[2 * JW_MAX_DEPTH + 3] = '\0';
	CHECK_DOC(want);

	start();
	for (int i = 0; i < JW_MAX_DEPTH; i++)
		jw_object(&w, i ? "k" : NULL);
	CHECK(!b.failed);
	jw_object(&w, "deeper");
	CHECK(b.failed);
	CHECK(w.depth <= JW_MAX_DEPTH);
	/* Going on regardless neither writes nor walks past the last level. */
	for (int i = 0; i < 100; i++) {
		jw_array(&w, "more");
		jw_u64(&w, "v", 1);
	}
	CHECK(w.depth <= JW_MAX_DEPTH);
	for (int i = 0; i < 200; i++)
		jw_close(&w);
	CHECK(w.depth == 0);
	CHECK(b.failed);
}

int main(void)
{
	buf_init(&b);
	test_empty();
	test_nesting();
	test_values();
	test_misuse();
	buf_free(&b);
	return check_summary("json_writer");
}
