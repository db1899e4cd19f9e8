#include "gate.h"

#include <string.h>

#include "log.h"

static char reason[GATE_REASON_MAX];

const char *gate_problem(void)
{
	return reason[0] ? reason : NULL;
}

int gate_set(const char *r)
{
	if (!r)
		r = "";
	if (strncmp(r, reason, sizeof reason - 1) == 0)
		return 0;
	if (r[0])
		log_warn("msg=\"not handing out IDs\" reason=\"%.*s\"", (int)sizeof reason - 1, r);
	else
		log_info("msg=\"handing out IDs\"");
	size_t n = strnlen(r, sizeof reason - 1);
	memcpy(reason, r, n);
	reason[n] = '\0';
	return 1;
}
