#include "http_status.h"

#include "http_parse.h"

#define STR_(x) #x
#define STR(x) STR_(x)

const struct http_status http_statuses[HTTP_STATUS_COUNT] = {
	{ 200, "OK", "" },
	{ 100, "Continue", "" },
	{ 201, "Created", "" },
	{ 204, "No Content", "" },
	{ 400, "Bad Request", "malformed HTTP request" },
	{ 401, "Unauthorized", "" },
	{ 403, "Forbidden", "" },
	{ 404, "Not Found", "" },
	{ 405, "Method Not Allowed", "" },
	{ 408, "Request Timeout",
	  "request head not received within " STR(HTTP_HEAD_TIMEOUT_S) " s" },
	{ 409, "Conflict", "" },
	{ 411, "Length Required",
	  "chunked or other transfer-coded request bodies are not accepted; send Content-Length" },
	{ 413, "Content Too Large", "request body larger than " STR(HTTP_MAX_BODY_KIB) " KiB" },
	{ 414, "URI Too Long", "request target longer than " STR(HTTP_MAX_URI_KIB) " KiB" },
	{ 417, "Expectation Failed", "" },
	{ 431, "Request Header Fields Too Large",
	  "request line and headers larger than " STR(HTTP_MAX_HEAD_KIB) " KiB, or more than "
	  STR(HTTP_MAX_HEADERS) " headers" },
	{ 500, "Internal Server Error", "" },
	{ 501, "Not Implemented", "method not implemented" },
	{ 503, "Service Unavailable", "" },
	{ 505, "HTTP Version Not Supported", "only HTTP/1.0 and HTTP/1.1 are supported" },
};

int http_status_slot(int code)
{
	for (int i = 0; i < HTTP_STATUS_COUNT; i++)
		if (http_statuses[i].code == code)
			return i;
	return -1;
}

const char *http_reason(int code)
{
	int i = http_status_slot(code);
	return i < 0 ? "Unknown" : http_statuses[i].reason;
}
